"""A guard against silent drift of the numbers in REPRODUCTION.md.

Reruns one short, seeded configuration of each tutorial (Super Attention,
seed 0, on TensorFlow: IMDB's full budget, which takes a minute and a half,
the others' `--quick` run) and compares what it measures with
`reproduction/fingerprints.json`, the losses to 6 decimals. A change to
a shared layer, the training harness or a dataset's preparation moves these
numbers; the check then names the tables to regenerate. A deliberate numeric
change regenerates those tables and the fingerprints (`--update`) in the same
commit.

    python reproduction/fingerprint.py --data-dir ../shared/data            # check
    python reproduction/fingerprint.py --data-dir ../shared/data --update   # rewrite the fingerprints

It takes about 8 minutes on 2 cores. Seeded training on one machine gives
the same digits whatever else runs (checked under load), but not whatever
number of threads TensorFlow uses: its kernels split their sums by thread
(CIFAR-10's quick run, test loss 2.635390 with one intra-op thread, 2.635389
with two), so the runs here fix it at `THREADS`, whatever cores the caller
has. Another kind of CPU may round differently (TensorFlow picks its kernels
by the widest vector instructions the processor has: on an AVX2-only machine
CIFAR-10's quick run gave 2.635390 against the AVX-512 fingerprint's
2.635389, while MNIST's and the translation's gave theirs), so the
fingerprints are those of the kind of machine the tables are made on,
recorded beside them ("machine"); on another kind a difference is reported
as one the check cannot judge (exit status 3), not as drift.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINGERPRINTS = os.path.join(ROOT, "reproduction", "fingerprints.json")
VARIANT = "super"
# TensorFlow's intra-op threads in every run (its default is one per core).
THREADS = 2
# tutorial: (REPRODUCTION.md section it guards, {measure: decimals}, run
# arguments). The losses carry more digits than the tables print: a quick
# run learns little, and its accuracy may not move when the numerics do (the
# quick IMDB run's did not, for a 0.1% change of the attention scale).
TUTORIALS = {
    "sentiment_imdb.py": ("IMDB sentiment", {"test_loss": 6, "test_accuracy": 4}, ["--seeds", "1"]),
    "vit_mnist.py": ("MNIST Vision Transformer", {"test_loss": 6, "test_accuracy": 4}, ["--quick"]),
    "vit_cifar10.py": ("CIFAR-10 Vision Transformer", {"test_loss": 6, "test_accuracy": 4}, ["--quick"]),
    "language_model.py": ("IMDB language model", {"validation_loss": 6, "perplexity": 2}, ["--quick"]),
    "translation_spa_eng.py": ("English-Spanish translation", {"validation_loss": 6, "bleu": 2}, ["--quick"]),
}


def measure(tutorial, data_dir):
    """The rounded measures of the quick run of `tutorial`."""
    _, decimals, arguments = TUTORIALS[tutorial]
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, os.path.join(ROOT, "tutorials", tutorial), *arguments, "--variants", VARIANT,
            "--data-dir", data_dir, "--out", out,
        ]
        environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_NUM_INTRAOP_THREADS=str(THREADS))
        run = subprocess.run(command, env=environment, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"{tutorial} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
        with open(os.path.join(out, "runs", f"{VARIANT}_seed0.json")) as f:
            record = json.load(f)
    return {name: f"{record[name]:.{places}f}" for name, places in decimals.items()}


def machine():
    """The kind of machine, as far as the digits go: architecture and widest
    vector instruction set (what TensorFlow chooses its CPU kernels by)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    widest = next((name for name in ("avx512f", "avx2", "avx") if name in flags), "no avx")
    return f"{platform.machine()}, {widest}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "..", "shared", "data"))
    parser.add_argument("--update", action="store_true", help="rewrite the fingerprints from this run")
    parser.add_argument("--tutorials", default=",".join(TUTORIALS), help="comma-separated subset")
    args = parser.parse_args()
    recorded = {}
    if os.path.exists(FINGERPRINTS):
        with open(FINGERPRINTS) as f:
            recorded = json.load(f)
    made_on, here = recorded.pop("machine", None), machine()
    tutorials = args.tutorials.split(",")
    unknown = [tutorial for tutorial in tutorials if tutorial not in TUTORIALS]
    if unknown:
        parser.error(f"--tutorials: {unknown} not in {list(TUTORIALS)}")
    if args.update and made_on not in (None, here) and set(tutorials) != set(TUTORIALS):
        parser.error(f"--update on a {here!r} machine (the fingerprints are of {made_on!r}) must rewrite all of them")
    drifted = []
    for tutorial in tutorials:
        got = measure(tutorial, args.data_dir)
        want = recorded.get(tutorial)
        print(f"{tutorial}: {got}" + ("" if want in (None, got) else f" (fingerprint {want})"), flush=True)
        if got != want:
            drifted.append(tutorial)
        recorded[tutorial] = got
    if args.update:
        with open(FINGERPRINTS, "w") as f:
            json.dump({"machine": here, **recorded}, f, indent=2)
            f.write("\n")
        print(f"wrote {FINGERPRINTS}")
        return 0
    if drifted and made_on != here:
        print(
            f"CANNOT JUDGE: {', '.join(drifted)} gave other digits, but the fingerprints were made on "
            f"{made_on!r} and this machine is {here!r}, whose TensorFlow kernels may round differently. Check "
            f"on a {made_on!r} machine, or regenerate every REPRODUCTION.md table and the fingerprints here.",
            file=sys.stderr,
        )
        return 3
    for tutorial in drifted:
        print(
            f"DRIFT: {tutorial} no longer gives its fingerprint: the numerics changed. Regenerate the "
            f"REPRODUCTION.md section {TUTORIALS[tutorial][0]!r} (its command is there) and then this "
            "fingerprint (--update), in the same commit.",
            file=sys.stderr,
        )
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())

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
has. Another CPU may still round differently (TensorFlow picks kernels per
instruction set), so the fingerprints are those of the machine the tables
are made on.
"""

import argparse
import json
import os
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
    drifted = []
    for tutorial in args.tutorials.split(","):
        if tutorial not in TUTORIALS:
            parser.error(f"--tutorials: {tutorial!r} is not one of {list(TUTORIALS)}")
        got = measure(tutorial, args.data_dir)
        want = recorded.get(tutorial)
        print(f"{tutorial}: {got}" + ("" if want in (None, got) else f" (fingerprint {want})"), flush=True)
        if got != want:
            drifted.append(tutorial)
        recorded[tutorial] = got
    if args.update:
        with open(FINGERPRINTS, "w") as f:
            json.dump(recorded, f, indent=2)
            f.write("\n")
        print(f"wrote {FINGERPRINTS}")
        return 0
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

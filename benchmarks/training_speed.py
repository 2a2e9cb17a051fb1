"""Which backend trains the generative tutorials' models fastest on this machine.

One training step (`train_on_batch`, Adam, the token cross-entropy, batch 128
of random ids) of the language model and the translator of
`tutorials/language_model.py` / `tutorials/translation_spa_eng.py`, at their
sizes, on TensorFlow (as `fit` runs it on a CPU: a `tf.function` without XLA),
TensorFlow with `jit_compile=True` (XLA), JAX (`jax.jit`, Keras' default) and
PyTorch (eager, Keras' default), the last also with glibc's malloc told to
keep freed memory for reuse (`GLIBC_TUNABLES`, see KEEP_FREED_MEMORY). Each
configuration runs in a process of its own; the processes take turns, round by
round, so that drifting load hits them alike, and each reports the median of
its timed steps. The table gives milliseconds per step and the ratio to
TensorFlow's in the same round.

    python benchmarks/training_speed.py --rounds 2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import harness

# glibc's malloc returns every large freed block to the system (mmap), so the
# next step's tensors of that size fault their pages in afresh; with these
# limits it keeps them in the heap for reuse. PyTorch allocates CPU tensors
# with malloc, TensorFlow and JAX (XLA) mostly through their own allocators.
KEEP_FREED_MEMORY = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=4294967296"
CONFIGS = {  # name: (KERAS_BACKEND, jit_compile, extra environment)
    "tensorflow": ("tensorflow", "auto", {}),
    "tensorflow + XLA": ("tensorflow", True, {}),
    "jax": ("jax", "auto", {}),
    "torch": ("torch", "auto", {}),
    "torch, freed memory kept": ("torch", "auto", {"GLIBC_TUNABLES": KEEP_FREED_MEMORY}),
}
MODELS = ("language_model standard", "language_model super", "translator standard", "translator super")
SMOKE_MODELS = ("language_model super", "translator standard")
BATCH = 128


# The tutorials' sizes (tutorials/language_model.py, tutorials/translation_spa_eng.py), and tiny ones.
SIZES = {
    False: dict(vocabulary=4000, lm_length=64, translator_length=24, embedding_dim=128, intermediate_dim=256),
    True: dict(vocabulary=50, lm_length=8, translator_length=6, embedding_dim=8, intermediate_dim=8),
}


def build(model, variant, size):
    from keras_superattn import models

    widths = dict(embedding_dim=size["embedding_dim"], num_heads=4, intermediate_dim=size["intermediate_dim"])
    if model == "language_model":
        return models.language_model(variant, size["vocabulary"], size["lm_length"], **widths)
    length = size["translator_length"]
    return models.translator(variant, size["vocabulary"], size["vocabulary"], length, length, **widths)


def batch(model, rng, size):
    words, length = size["vocabulary"], size[f"{'lm' if model == 'language_model' else 'translator'}_length"]
    if model == "language_model":
        ids = rng.integers(1, words, size=(BATCH, length + 1)).astype("int32")
        return ids[:, :-1], ids[:, 1:]
    source = rng.integers(1, words, size=(BATCH, length)).astype("int32")
    target = rng.integers(1, words, size=(BATCH, length + 1)).astype("int32")
    return {"source": source, "target": target[:, :-1]}, target[:, 1:]


def worker(jit_compile, steps, warmup, smoke):
    """Median seconds per training step of every model, as JSON on stdout."""
    import keras
    import numpy as np

    from keras_superattn import generation

    rng = np.random.default_rng(0)
    medians = {}
    for name in SMOKE_MODELS if smoke else MODELS:
        keras.utils.set_random_seed(0)
        model = build(*name.split(), SIZES[smoke])
        model.compile(optimizer="adam", loss=generation.token_crossentropy, jit_compile=jit_compile)
        x, y = batch(name.split()[0], rng, SIZES[smoke])
        for _ in range(warmup):
            model.train_on_batch(x, y)
        seconds = []
        for _ in range(steps):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            seconds.append(time.perf_counter() - start)
        medians[name] = statistics.median(seconds)
    print(json.dumps(medians))


def main():
    parser = harness.parser(__doc__, rounds=2)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model and turn")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = harness.parse(parser)
    if args.smoke:  # a round starts a process per configuration: one is enough to check them
        args.rounds, args.steps, args.warmup = 1, 1, 1
    if args.worker:
        worker(json.loads(args.worker), args.steps, args.warmup, args.smoke)
        return
    times = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name, (backend, jit_compile, environment) in CONFIGS.items():
            command = [sys.executable, __file__, "--worker", json.dumps(jit_compile), "--steps", str(args.steps),
                       "--warmup", str(args.warmup), *(["--smoke"] if args.smoke else [])]
            env = dict(os.environ, KERAS_BACKEND=backend, **environment)
            run = subprocess.run(command, env=env, capture_output=True, text=True)
            if run.returncode:
                raise SystemExit(f"{name} failed:\n{run.stderr[-3000:]}")
            times[name].append(json.loads(run.stdout.strip().splitlines()[-1]))
    rows = []
    for model in SMOKE_MODELS if args.smoke else MODELS:
        baseline = [round_[model] for round_ in times["tensorflow"]]
        cells = []
        for name in CONFIGS:
            values = [round_[model] for round_ in times[name]]
            ratios = [v / b for v, b in zip(values, baseline)]
            cells.append(f"{1e3 * statistics.median(values):.0f} ({min(ratios):.2f}-{max(ratios):.2f})")
        rows.append([model, *cells])
    print(harness.table(["model", *(f"{name} ms / step (x TF)" for name in CONFIGS)], rows))
    harness.write(args, times, steps=args.steps, warmup=args.warmup)


if __name__ == "__main__":
    main()

"""What an incremental (cached) decoding step could save: full step vs one position.

Greedy decoding with a static-shape `.tflite` file scores the whole sequence
at every step (`deploy.decode_greedy`). A cached step would compute only the
newest position against stored keys and values (for Super Attention, the
stored inputs that `tril(W_A)` mixes). Its cost is bounded below by the same
model run on a sequence of length 1, which this script times against the
full-length model: the tutorial's translator (target length 16) and a
language model of 48 tokens and 5,000 words (the tutorial's has 32 and
4,000), untrained (latency does not depend on the
weights), every variant, float32 and int8, LiteRT with XNNPACK, 1 thread,
interleaved median.

    KERAS_BACKEND=tensorflow python benchmarks/decoder_step.py
"""

import argparse
import os
import tempfile
import warnings

import keras
import numpy as np

from keras_superattn import deploy
from keras_superattn import layers
from keras_superattn import models
from keras_superattn.training import timing

VARIANTS = tuple(layers.VARIANTS)
MODES = ("float32", "int8")
TASKS = {
    # task: (builder of a model of sequence length l, full length)
    "translator": (lambda variant, l: models.translator(variant, 4000, 4000, 16, l), 16),
    "language model": (lambda variant, l: models.language_model(variant, 5000, l), 48),
}


def samples(model, rng):
    return {x.name: rng.integers(1, 4000, size=(32, *x.shape[1:])).astype("int32") for x in model.inputs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    paths = {}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained: agreement is not the point here
        for task, (build, full) in TASKS.items():
            for variant in VARIANTS:
                for length in (full, 1):
                    keras.utils.set_random_seed(0)
                    model = build(variant, length)
                    data = samples(model, rng)
                    for mode in MODES:
                        path = os.path.join(folder, f"{task}_{variant}_{length}_{mode}.tflite".replace(" ", "_"))
                        deploy.convert(model, path, quantization=mode, representative_data=data, verbose=False)
                        paths[task, variant, length, mode] = path
        runners = {key: deploy.TFLiteModel(path, num_threads=1) for key, path in paths.items()}
        for runner in runners.values():
            for detail in runner.inputs.values():
                runner.interpreter.set_tensor(detail["index"], np.ones(detail["shape"], detail["dtype"]))
        calls = {key: runner.interpreter.invoke for key, runner in runners.items()}
        seconds = timing.interleaved_median_seconds(calls, args.rounds, warmup=5)
    print("| model | variant | " + " | ".join(f"{m}: full step ms / one position ms (ratio)" for m in MODES) + " |")
    print("|---|---|" + "---|" * len(MODES))
    for task, (_, full) in TASKS.items():
        for variant in VARIANTS:
            cells = []
            for mode in MODES:
                whole, one = seconds[task, variant, full, mode], seconds[task, variant, 1, mode]
                cells.append(f"{1e3 * whole:.3f} / {1e3 * one:.3f} ({whole / one:.1f}x)")
            print(f"| {task} (l = {full}) | {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""Latency of .tflite files per variant and mode, 1 thread, interleaved.

The 64-token ViT of the speed issue: 32 x 32 x 3 images, 4 x 4 patches,
d = 128, 4 heads, 4 blocks, FFN 256, untrained (latency does not depend on the
weights; calibration uses random images). Each variant is converted to
float32, int8 and int16x8 with `deploy.convert`; all files are timed in one
interleaved loop (LiteRT, XNNPACK on, 1 thread, median of `--rounds`
invocations), so that machine load hits them alike. Ratios are to the Standard
float32 file of the same run; the XNNPACK column is the number of delegate
partitions (`deploy.inspect`).

    KERAS_BACKEND=tensorflow python benchmarks/edge.py
"""

import os

import harness
import keras
import numpy as np

from keras_superattn import deploy
from keras_superattn import layers
from keras_superattn import models
from keras_superattn.training import timing

VARIANTS = tuple(layers.VARIANTS)
MODES = ("float32", "int8", "int8_xnnpack", "int16x8")


def vit(variant, smoke):
    keras.utils.set_random_seed(0)
    if smoke:
        return models.vit_classifier(variant, (8, 8, 3), patch_size=4, num_classes=10, embedding_dim=8, num_layers=1)
    return models.vit_classifier(
        variant, (32, 32, 3), patch_size=4, num_classes=10, embedding_dim=128, num_heads=4, num_layers=4,
        intermediate_dim=256,
    )


def main():
    args = harness.parse(harness.parser(__doc__, rounds=100))
    side = 8 if args.smoke else 32
    images = np.random.default_rng(0).random((8 if args.smoke else 64, side, side, 3)).astype("float32")
    with harness.scratch() as folder:
        paths = {}
        for variant in VARIANTS:
            model = vit(variant, args.smoke)
            for mode in MODES:
                path = os.path.join(folder, f"{variant}_{mode}.tflite")
                deploy.convert(model, path, quantization=mode, representative_data=images, verbose=False)
                paths[variant, mode] = path
        runners = {key: deploy.TFLiteModel(path, num_threads=1) for key, path in paths.items()}
        for runner in runners.values():
            runner.interpreter.set_tensor(runner.input["index"], runner.quantize(images[:1]))
        calls = {key: runner.interpreter.invoke for key, runner in runners.items()}
        seconds = timing.interleaved_median_seconds(calls, args.rounds, warmup=5)
        partitions = {key: deploy.inspect(path)["xnnpack_partitions"] for key, path in paths.items()}
    base = seconds["standard", "float32"]
    rows = [
        [variant] + [
            f"{1e3 * seconds[variant, m]:.3f} ({seconds[variant, m] / base:.2f}), {partitions[variant, m]}"
            for m in MODES
        ]
        for variant in VARIANTS
    ]
    print(harness.table(["variant", *(f"{m} ms (/ Standard float32), XNNPACK partitions" for m in MODES)], rows))
    harness.write(args, [
        {"variant": v, "mode": m, "ms": 1e3 * seconds[v, m], "xnnpack_partitions": partitions[v, m]}
        for v in VARIANTS for m in MODES
    ])


if __name__ == "__main__":
    main()

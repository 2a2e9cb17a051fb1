"""Which ops kept in float make an int8 file fast on XNNPACK: an ablation.

The 64-token ViT of benchmarks/edge.py (Standard attention, untrained) is
converted to float32, full-integer int8, and int8 with a chosen set of ops
left in float32 (TensorFlow's MLIR quantizer's `denylisted_ops`, patched in
here; `quantization="int8_xnnpack"` is the set of all four). All files are
timed in one interleaved loop (LiteRT, XNNPACK, 1 thread, median); ratios to
the float32 file. This is how `XNNPACK_FLOAT_OPS` was chosen.

    KERAS_BACKEND=tensorflow python benchmarks/int8_float_islands.py
"""

import os
import sys
import tempfile
import warnings

import numpy as np
from tensorflow.lite.python import convert as tflite_convert

from keras_superattn import deploy
from keras_superattn.training import timing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from edge import vit  # noqa: E402

FLOAT_SETS = {
    "float32": None,
    "int8": (),
    "int8, GELU float": ("GELU",),
    "int8, RSQRT float": ("RSQRT",),
    "int8, SOFTMAX + BATCH_MATMUL float": ("SOFTMAX", "BATCH_MATMUL"),
    "int8, all four float (int8_xnnpack)": ("SOFTMAX", "BATCH_MATMUL", "GELU", "RSQRT"),
}


def main():
    quantize = tflite_convert.mlir_quantize
    convert_module = sys.modules["keras_superattn.deploy.convert"]
    images = np.random.default_rng(0).random((64, 32, 32, 3)).astype("float32")
    model = vit("standard")
    paths = {}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained: agreement is not the point here
        convert_module.check_full_integer = lambda tflite_bytes, allowed=(), model=None: None  # islands are the point
        for name, kept in FLOAT_SETS.items():
            tflite_convert.mlir_quantize = lambda data, kept=kept, **kwargs: quantize(
                data, **dict(kwargs, denylisted_ops=list(kept) or None)
            )
            paths[name] = os.path.join(folder, f"{len(paths)}.tflite")
            mode = "float32" if kept is None else "int8"
            deploy.convert(model, paths[name], quantization=mode, representative_data=images, verbose=False)
        runners = {name: deploy.TFLiteModel(path, num_threads=1) for name, path in paths.items()}
        for runner in runners.values():
            runner.interpreter.set_tensor(runner.input["index"], runner.quantize(images[:1]))
        seconds = timing.interleaved_median_seconds(
            {name: runner.interpreter.invoke for name, runner in runners.items()}, rounds=100, warmup=5
        )
        partitions = {name: deploy.inspect(path)["xnnpack_partitions"] for name, path in paths.items()}
    print("| file | ms | / float32 | XNNPACK partitions |\n|---|---|---|---|")
    for name in FLOAT_SETS:
        print(f"| {name} | {1e3 * seconds[name]:.3f} | {seconds[name] / seconds['float32']:.2f} | {partitions[name]} |")


if __name__ == "__main__":
    main()

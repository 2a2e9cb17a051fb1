"""The choices `convert` offers, importable without TensorFlow (the CLI uses them)."""

QUANTIZATIONS = ("int8", "int8_xnnpack", "int16x8", "dynamic", "float16", "float32")
INTEGER_QUANTIZATIONS = ("int8", "int8_xnnpack", "int16x8")  # calibrated on representative data

# The ops that LiteRT's XNNPACK delegate does not take in int8, so that each
# one splits the graph and runs on slow reference kernels (BENCHMARKS.md,
# benchmarks/int8_delegation.py at 3495e53). "int8_xnnpack" keeps them in float32, where
# XNNPACK takes them: everything else stays int8.
XNNPACK_FLOAT_OPS = ("BATCH_MATMUL", "SOFTMAX", "GELU", "RSQRT")
# Calibrated with measured ranges and quantized by TensorFlow's MLIR quantizer.
INT8_QUANTIZATIONS = ("int8", "int8_xnnpack")


def float_ops_kept(quantization):
    """The ops a `quantization` mode leaves in float32 on purpose."""
    return XNNPACK_FLOAT_OPS if quantization == "int8_xnnpack" else ()
IO_DTYPES = ("int8", "uint8")
STATISTICS = ("minmax", "mean_minmax", "tensorflow")

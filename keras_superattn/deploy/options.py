"""The choices `convert` offers, importable without TensorFlow (the CLI uses them)."""

QUANTIZATIONS = ("int8", "int16x8", "dynamic", "float16", "float32")
IO_DTYPES = ("int8", "uint8")
STATISTICS = ("minmax", "mean_minmax", "tensorflow")

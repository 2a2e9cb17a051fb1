"""Keras model -> .tflite: full-integer int8, dynamic-range, float16 or float32."""

import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

from keras_superattn.deploy import flatbuffer

QUANTIZATIONS = ("int8", "dynamic", "float16", "float32")
IO_DTYPES = ("int8", "uint8")


def convert(
    model,
    output_path,
    quantization="int8",
    representative_data=None,
    num_calibration_samples=300,
    io_dtype="int8",
    batch_size=1,
    verbose=True,
):
    """Converts a Keras model to a `.tflite` file of TFLite builtin ops only.

    The graph has static shapes (batch `batch_size`, 1 by default, as mobile
    runtimes and the Edge TPU want). Conversion always runs on TensorFlow: on
    the JAX or PyTorch backend the model is saved to a `.keras` file and
    converted in a TensorFlow subprocess. The file is written only once the
    conversion succeeded and, for `"int8"`, the graph was checked to be 100%
    integer; otherwise nothing is left at `output_path`.

    Args:
        model: a `keras.Model` with one input, or the path of a `.keras` file.
        output_path: where to write the `.tflite` file.
        quantization: `"int8"` (int8 weights and activations and integer
            inputs/outputs), `"dynamic"` (int8 weights), `"float16"` (float16
            weights) or `"float32"`.
        representative_data: array of real input samples `(N, *input_shape)`,
            required for `"int8"`; the first `num_calibration_samples` are
            used to calibrate the activation ranges.
        num_calibration_samples: int. How many samples calibrate.
        io_dtype: `"int8"` or `"uint8"` (Coral) for float inputs and outputs
            of an int8 model; integer inputs such as token ids stay int32.
        batch_size: int. Static batch of the converted graph.
        verbose: bool. Show calibration progress.

    Returns:
        `output_path`.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"Argument `quantization` must be one of {QUANTIZATIONS}. Received: quantization={quantization!r}")
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"Argument `io_dtype` must be one of {IO_DTYPES}. Received: io_dtype={io_dtype!r}")
    if keras.backend.backend() != "tensorflow":
        return _convert_in_tensorflow(
            model, output_path, quantization, representative_data,
            num_calibration_samples, io_dtype, batch_size, verbose,
        )
    if isinstance(model, (str, os.PathLike)):
        model = keras.saving.load_model(model, compile=False)
    if len(model.inputs) != 1:
        raise ValueError(f"convert() handles models with one input. Received a model with {len(model.inputs)} inputs")
    input_shape = (batch_size, *model.inputs[0].shape[1:])
    samples = None
    if quantization == "int8":
        samples = _calibration_samples(representative_data, model.inputs[0], num_calibration_samples)
    tflite_bytes = _convert_tensorflow_model(model, input_shape, quantization, samples, io_dtype, verbose)
    if quantization == "int8":
        check_full_integer(tflite_bytes)
    _write_atomically(output_path, tflite_bytes)
    return output_path


def check_full_integer(tflite_bytes):
    """Raises `ValueError` naming every op of the graph that computes in float."""
    offenders = flatbuffer.float_ops(flatbuffer.operators(flatbuffer.read_model(tflite_bytes)))
    if offenders:
        listed = ", ".join(f"#{op.index} {op.name} {sorted(op.types())}" for op in offenders)
        raise ValueError(
            "The int8 conversion is not fully integer: these ops compute in float: "
            f"{listed}. Use keras_superattn.layers.LayerNormalization instead of "
            "keras.layers.LayerNormalization, and keras.ops rather than custom float code."
        )


def _calibration_samples(data, model_input, count):
    if data is None:
        raise ValueError("Argument `representative_data` is required for quantization='int8'. Received: None")
    data = np.asarray(data)
    if data.ndim == 0 or len(data) == 0:
        raise ValueError(f"Argument `representative_data` must hold at least one sample. Received shape: {data.shape}")
    expected = tuple(model_input.shape[1:])
    if data.shape[1:] != expected:
        raise ValueError(
            f"Argument `representative_data` must have shape (N, {', '.join(map(str, expected))}) "
            f"to match the model input. Received: {data.shape}"
        )
    return data[:count].astype(model_input.dtype)


def _convert_tensorflow_model(model, input_shape, quantization, samples, io_dtype, verbose):
    import tensorflow as tf

    input_dtype = tf.as_dtype(model.inputs[0].dtype)
    signature = [tf.TensorSpec(input_shape, input_dtype, name=model.inputs[0].name)]
    output_names = model.output_names
    with tempfile.TemporaryDirectory() as saved_model:
        # A SavedModel freezes the weights; converting a tf.function of a
        # Keras 3 model directly leaves READ_VARIABLE ops behind. The endpoint
        # returns a dict so that the signature carries the output layers'
        # names, which Android's signature runner shows.
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serving_default",
            lambda x: dict(zip(output_names, keras.tree.flatten(model(x, training=False)))),
            input_signature=signature,
        )
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _representative_dataset(samples, input_shape[0], verbose)
            converter.inference_input_type = getattr(tf, io_dtype)
            converter.inference_output_type = getattr(tf, io_dtype)
        try:
            return converter.convert()
        except Exception as error:  # the converter raises many error types
            raise ValueError(f"The TFLite converter rejected the model ({quantization}): {error}") from error


def _representative_dataset(samples, batch_size, verbose):
    def generate():
        progress = keras.utils.Progbar(len(samples), unit_name="sample") if verbose else None
        for start in range(0, len(samples) - batch_size + 1, batch_size):
            yield [samples[start : start + batch_size]]
            if progress:
                progress.update(start + batch_size)

    return generate


def _write_atomically(path, content):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tflite.part")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _convert_in_tensorflow(model, output_path, quantization, data, count, io_dtype, batch_size, verbose):
    """Runs the conversion in a subprocess with KERAS_BACKEND=tensorflow."""
    with tempfile.TemporaryDirectory() as folder:
        if not isinstance(model, (str, os.PathLike)):
            path = os.path.join(folder, "model.keras")
            model.save(path)
            model = path
        command = [
            sys.executable, "-m", "keras_superattn", "convert", os.fspath(model),
            "--out", os.fspath(output_path), "--quantization", quantization,
            "--io-dtype", io_dtype, "--batch-size", str(batch_size),
            "--num-samples", str(count),
        ]
        if data is not None:
            np.save(os.path.join(folder, "calibration.npy"), np.asarray(data))
            command += ["--calibration", os.path.join(folder, "calibration.npy")]
        run = subprocess.run(
            command, env=dict(os.environ, KERAS_BACKEND="tensorflow"),
            stdout=None if verbose else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        if run.returncode != 0:
            last = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "no error output"
            raise ValueError(f"Conversion in the TensorFlow subprocess failed: {last}")
    return output_path

"""The one TensorFlow converter pipeline behind every file `deploy` writes.

Keras model -> SavedModel (`keras.export.ExportArchive`, traced inside
`layers.export_mode.exporting`) -> `tf.lite.TFLiteConverter` -> for int8:
the converter only calibrates, the ranges are measured again with every
tensor in a buffer of its own (`calibration.py`) and TensorFlow's MLIR
quantizer makes the integer graph. `convert` (one signature) and
`convert_generator` (prefill and decode) both call `to_tflite`.

This module holds every private TensorFlow call of the package, each with
the reason it is needed and what would replace it:

- `converter._experimental_calibrate_only`: stops the converter after
  calibration, so that the wrongly recorded ranges of in-place tensors can
  be replaced before quantizing. A public hook to supply ranges (or a
  calibrator that does not share buffers) would replace it.
- `tensorflow.lite.python.convert.mlir_quantize`: the quantizer the
  converter itself runs after calibration, called here on the recalibrated
  graph with the arguments the converter passes. It would go with the same
  public hook.
"""

import tempfile

import keras

from keras_superattn.deploy import calibration
from keras_superattn.deploy.options import INT8_QUANTIZATIONS
from keras_superattn.deploy.options import INTEGER_QUANTIZATIONS
from keras_superattn.deploy.options import float_ops_kept
from keras_superattn.layers.export_mode import exporting

# The key TFLiteConverter.from_saved_model reads when given no signature keys.
SERVING = "serving_default"


def to_tflite(
    model,
    endpoints,
    quantization,
    calibration_samples=None,
    batch_size=1,
    io_dtype="int8",
    statistic="minmax",
    trained_ranges=False,
    tied=(),
    cache_returns_entries=False,
    verbose=False,
):
    """The `.tflite` bytes of `model`'s `endpoints`, one signature each.

    Args:
        model: the `keras.Model` whose weights the endpoints use.
        endpoints: `{signature key: (function, {input name: (shape, dtype)})}`;
            each function takes a dict of its inputs and returns a dict of
            named outputs. One endpoint should be keyed `SERVING`.
        quantization: a mode of `options.QUANTIZATIONS`.
        calibration_samples: for the integer modes, `{signature key: {input
            name: array (N, ...)}}`, run in batches of `batch_size`.
        batch_size: int. The static batch of the inputs' shapes.
        io_dtype: `"int8"` or `"uint8"`: the int8 modes' float inputs and outputs.
        statistic: how the int8 ranges are measured (`calibration.recalibrate`).
        trained_ranges: the model is quantization-aware: its fake
            quantization gives every range, and nothing is calibrated.
        tied: groups of `(signature key, tensor name)` that get one range.
        cache_returns_entries: trace cached attention calls returning the new
            entries (`layers.export_mode.ExportMode`).
        verbose: show calibration progress.
    """
    import tensorflow as tf

    int8 = quantization in INT8_QUANTIZATIONS and not trained_ranges
    with tempfile.TemporaryDirectory() as saved_model, exporting(cache_returns_entries):
        # A SavedModel freezes the weights; converting a tf.function of a
        # Keras 3 model directly leaves READ_VARIABLE ops behind. Endpoints
        # return dicts so that the signatures carry the outputs' names,
        # which Android's signature runner shows.
        archive = keras.export.ExportArchive()
        archive.track(model)
        for key, (function, inputs) in endpoints.items():
            specs = [tf.TensorSpec(shape, tf.as_dtype(dtype), name=name) for name, (shape, dtype) in inputs.items()]
            archive.add_endpoint(key, _positional(function, list(inputs)), input_signature=specs)
        archive.write_out(saved_model, verbose=False)
        keys = None if list(endpoints) == [SERVING] else list(endpoints)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=keys)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if trained_ranges:
            # The converter takes each tensor's scale from its fake quantization.
            converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype)
        elif quantization in INTEGER_QUANTIZATIONS:
            converter.representative_dataset = _representative_dataset(calibration_samples, batch_size, verbose)
        if int8:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter._experimental_calibrate_only = True
        if quantization == "int16x8":
            # TensorFlow quantizes int16x8 with its older quantizer, whose
            # ranges cannot be replaced; int16's 256x finer steps absorb the
            # wrong ranges (measured: 99.9% agreement on a small ViT).
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            converter.inference_input_type = converter.inference_output_type = tf.int16
        try:
            converted = converter.convert()
        except Exception as error:  # the converter raises many error types
            raise ValueError(f"The TFLite converter rejected the model ({quantization}): {error}") from error
    if not int8:
        return converted
    from tensorflow.lite.python import convert as tflite_convert

    samples = calibration_samples[SERVING] if keys is None else calibration_samples
    calibrated = calibration.recalibrate(converted, samples, batch_size, statistic, tied=tied)
    return tflite_convert.mlir_quantize(
        calibrated, input_data_type=getattr(tf, io_dtype), output_data_type=getattr(tf, io_dtype),
        denylisted_ops=list(float_ops_kept(quantization)) or None,
    )


def _positional(function, names):
    """`function(inputs dict)` as an endpoint taking the inputs in order."""

    def endpoint(*inputs):
        return function(dict(zip(names, inputs)))

    return endpoint


def _representative_dataset(samples, batch_size, verbose):
    """The converter's calibration batches: dicts for a single `SERVING`
    signature, `(signature key, dict)` pairs for several."""
    keyed = list(samples) != [SERVING]

    def generate():
        for key, inputs in samples.items():
            count = len(next(iter(inputs.values())))
            progress = keras.utils.Progbar(count, unit_name="sample") if verbose else None
            for start in range(0, count, batch_size):
                batch = {name: values[start : start + batch_size] for name, values in inputs.items()}
                yield (key, batch) if keyed else batch
                if progress:
                    progress.update(start + batch_size)

    return generate

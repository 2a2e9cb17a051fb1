"""Keras model -> .tflite: int8 (full-integer or for XNNPACK), int16x8, dynamic-range, float16 or float32."""

import os

import keras
import numpy as np

from keras_superattn import quantization as quantization_aware
from keras_superattn._files import atomic_path
from keras_superattn._validation import check_positive_int
from keras_superattn.deploy import bridge
from keras_superattn.deploy.full_integer import check_full_integer
from keras_superattn.deploy.inputs import as_arrays
from keras_superattn.deploy.inputs import as_model_inputs
from keras_superattn.deploy.inputs import check_choice
from keras_superattn.deploy.inputs import check_float_inputs
from keras_superattn.deploy.inputs import model_samples
from keras_superattn.deploy.inputs import output_names
from keras_superattn.deploy.inputs import sample_count
from keras_superattn.deploy.options import INTEGER_QUANTIZATIONS
from keras_superattn.deploy.options import IO_DTYPES
from keras_superattn.deploy.options import QUANTIZATIONS
from keras_superattn.deploy.options import STATISTICS
from keras_superattn.deploy.options import float_ops_kept
from keras_superattn.deploy.results import Conversion
from keras_superattn.deploy.results import near_ties
from keras_superattn.deploy.results import warn_if_disagreeing
from keras_superattn.deploy.runtime import TFLiteModel
from keras_superattn.deploy.runtime import decisions
from keras_superattn.deploy.tensorflow_converter import SERVING
from keras_superattn.deploy.tensorflow_converter import to_tflite


def convert(
    model,
    output_path,
    quantization="int8",
    representative_data=None,
    num_calibration_samples=300,
    io_dtype="int8",
    batch_size=1,
    calibration_statistic="minmax",
    validation_data=None,
    verbose=True,
):
    """Converts a Keras model to a `.tflite` file of TFLite builtin ops only.

    The graph has static shapes (batch `batch_size`, 1 by default, as mobile
    runtimes and the Edge TPU want). Conversion always runs on TensorFlow: on
    the JAX or PyTorch backend the model is saved to a `.keras` file and
    converted in a TensorFlow subprocess. Before anything is written the new
    file is loaded and run with LiteRT and compared with the Keras model on
    `validation_data` (else the calibration samples); a file that cannot run,
    or an int8 graph with an op left in float, is never written.

    int8 activation ranges are measured with every tensor in a buffer of its
    own (see `calibration.py`): TensorFlow's own calibrator records wrong
    ranges for tensors that an op overwrites in place, which costs several
    accuracy points. A quantization-aware model (`quantization.quantize_model`)
    converts to `"int8"` with its trained ranges instead, without calibration
    data; `representative_data`, if given, only serves to check the file.

    Args:
        model: a `keras.Model` (functional or Sequential), or the path of a
            `.keras` file. The file's signature inputs take the names of the
            model's inputs.
        output_path: where to write the `.tflite` file.
        quantization: `"int8"` (int8 weights and activations, integer inputs
            and outputs: the full-integer graph that NPUs and the Edge TPU
            need), `"int8_xnnpack"` (the same, but the few ops that the
            XNNPACK CPU delegate takes only in float (`XNNPACK_FLOAT_OPS`:
            the activation-by-activation BATCH_MATMULs, SOFTMAX, GELU,
            RSQRT) stay float32 between a DEQUANTIZE and a QUANTIZE, where
            XNNPACK takes them: the fast file for phone CPUs, faster than
            float32, BENCHMARKS.md), `"int16x8"` (int16 activations, int8 weights: more
            accurate, slower, not for the Edge TPU; float-input models only),
            `"dynamic"` (int8 weights), `"float16"` (float16 weights) or `"float32"`.
        representative_data: array of real input samples `(N, *input_shape)`,
            or for a model with several inputs a dict of such arrays keyed
            by input name; required for the integer modes. The first
            `num_calibration_samples` calibrate the activation ranges.
        num_calibration_samples: int. How many samples calibrate; a multiple
            of `batch_size`.
        io_dtype: `"int8"` or `"uint8"` (Coral) for float inputs and outputs
            of an int8 model; integer inputs such as token ids stay int32.
            int16x8 files take and return int16.
        batch_size: int. Static batch of the converted graph.
        calibration_statistic: for the int8 modes: `"minmax"` (the min and max
            over all calibration samples), `"mean_minmax"` (the mean over
            calibration batches of each batch's min and max: clips rare
            outliers) or `"tensorflow"` (TensorFlow's recorded ranges, wrong
            for tensors updated in place; for comparison). BENCHMARKS.md
            compares them; `"minmax"` was best or equal on most variants.
        validation_data: optional held-out inputs (array or dict, as
            `representative_data`) to measure the file's
            agreement with the Keras model on; defaults to the calibration
            samples.
        verbose: bool. Show calibration progress and the agreement.

    Returns:
        A `Conversion`: the path and the measured agreement. A warning is
        issued when the agreement is below 97%.
    """
    check_choice("quantization", quantization, QUANTIZATIONS)
    check_choice("io_dtype", io_dtype, IO_DTYPES)
    check_choice("calibration_statistic", calibration_statistic, STATISTICS)
    batch_size = check_positive_int("batch_size", batch_size)
    num_calibration_samples = check_positive_int("num_calibration_samples", num_calibration_samples)
    if keras.backend.backend() != "tensorflow":
        conversion = bridge.run_in_tensorflow(
            f"{__name__}:convert", model, output_path, quantization=quantization,
            representative_data=as_arrays(representative_data), num_calibration_samples=num_calibration_samples,
            io_dtype=io_dtype, batch_size=batch_size, calibration_statistic=calibration_statistic,
            validation_data=as_arrays(validation_data), verbose=verbose,
        )
        warn_if_disagreeing(conversion, stacklevel=3)
        return conversion
    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise FileNotFoundError(f"Argument `model`: no .keras file at {os.fspath(model)!r}")
        model = keras.saving.load_model(model, compile=False)
    if quantization == "int16x8":
        check_float_inputs(model)
    samples = None
    trained_ranges = quantization_aware.is_quantization_aware(model)
    if trained_ranges:
        if quantization != "int8":
            raise ValueError(
                "A quantization-aware model converts to quantization='int8' (its ranges are int8 ranges); "
                f"convert the float model for other modes. Received: quantization={quantization!r}"
            )
        if validation_data is None and representative_data is not None:
            validation_data = representative_data
    elif quantization in INTEGER_QUANTIZATIONS:
        samples = model_samples("representative_data", representative_data, model)
        samples = {name: x[:num_calibration_samples] for name, x in samples.items()}
        count = sample_count(samples)
        if count < batch_size or count % batch_size:
            raise ValueError(
                f"The calibration samples must fill whole batches of batch_size={batch_size}. "
                f"Received: {count} samples (num_calibration_samples={num_calibration_samples})"
            )
    checked = samples
    if validation_data is not None:
        checked = model_samples("validation_data", validation_data, model)
        if sample_count(checked) < batch_size:
            raise ValueError(
                f"Argument `validation_data` must hold at least batch_size={batch_size} samples. "
                f"Received: {sample_count(checked)}"
            )
    tflite_bytes = to_tflite(
        model, {SERVING: _serving_endpoint(model, batch_size)}, quantization,
        calibration_samples=None if samples is None else {SERVING: samples}, batch_size=batch_size,
        io_dtype=io_dtype, statistic=calibration_statistic, trained_ranges=trained_ranges, verbose=verbose,
    )
    if quantization in INTEGER_QUANTIZATIONS:
        check_full_integer(tflite_bytes, allowed=float_ops_kept(quantization), model=model)
    return _write_checked(model, tflite_bytes, output_path, quantization, checked, verbose)


def _serving_endpoint(model, batch_size):
    """The one signature of a converted model: its inputs at batch `batch_size`, its outputs by layer name."""
    names = output_names(model)

    def serve(inputs):
        outputs = model(as_model_inputs(model, inputs), training=False)
        return dict(zip(names, keras.tree.flatten(outputs)))

    return serve, {x.name: ((batch_size, *x.shape[1:]), x.dtype) for x in model.inputs}


def _write_checked(model, tflite_bytes, output_path, quantization, checked, verbose):
    """Writes the file under a temporary name, runs it, compares it with the
    Keras model and only then moves it to `output_path`."""
    with atomic_path(output_path, suffix=".tflite.part") as temporary:
        with open(temporary, "wb") as f:
            f.write(tflite_bytes)
        try:
            written = TFLiteModel(temporary)
            if checked is None:
                checked_inputs = {
                    x.name: np.zeros((written.batch_size, *x.shape[1:]), x.dtype) for x in model.inputs
                }
            else:
                count = sample_count(checked)
                whole = count - count % written.batch_size or written.batch_size
                checked_inputs = {name: x[:whole] for name, x in checked.items()}
            got = written.predict(checked_inputs)
        except Exception as error:
            raise ValueError(f"The converted {quantization} file cannot run with LiteRT: {error}") from error
        conversion = _compare(
            model, checked_inputs, got, _output_step(written), output_path, quantization, checked is not None
        )
    if verbose and conversion.agreement is not None:
        print(
            f"{output_path}: agrees with the Keras model on {100 * conversion.agreement:.2f}% of "
            f"{conversion.num_checked} samples; mean |difference| {conversion.mean_absolute_difference:.4g}"
        )
    return conversion


def _output_step(model):
    """The value of one step of a file's integer output; None for float outputs."""
    scale, _ = model.output["quantization"]
    return float(scale) if np.issubdtype(model.output["dtype"], np.integer) and scale else None


def _compare(model, inputs, got, step, output_path, quantization, measured):
    if not measured:
        return Conversion(os.fspath(output_path), quantization, None, None, 0)
    want = model.predict(as_model_inputs(model, inputs), verbose=0, batch_size=256)
    want = keras.ops.convert_to_numpy(want).reshape(got.shape)
    agreement = float(np.mean(decisions(got) == decisions(want)))
    conversion = Conversion(
        os.fspath(output_path), quantization, agreement, float(np.abs(got - want).mean()), sample_count(inputs),
        near_ties(want, got, step),
    )
    warn_if_disagreeing(conversion)
    return conversion

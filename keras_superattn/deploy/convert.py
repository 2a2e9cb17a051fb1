"""Keras model -> .tflite: int8 (full-integer or for XNNPACK), int16x8, dynamic-range, float16 or float32."""

import dataclasses
import os
import tempfile
import warnings

import keras
import numpy as np

from keras_superattn import quantization as quantization_aware
from keras_superattn._validation import check_positive_int
from keras_superattn.deploy import calibration
from keras_superattn.deploy import flatbuffer
from keras_superattn.deploy.options import INT8_QUANTIZATIONS
from keras_superattn.deploy.options import INTEGER_QUANTIZATIONS
from keras_superattn.deploy.options import IO_DTYPES
from keras_superattn.deploy.options import QUANTIZATIONS
from keras_superattn.deploy.options import STATISTICS
from keras_superattn.deploy.options import float_ops_kept
from keras_superattn.deploy.runtime import TFLiteModel
from keras_superattn.deploy.runtime import decisions
from keras_superattn.layers.base_attention import conversion_forms

# Below this top-1 agreement with the Keras model, `convert` warns.
MIN_AGREEMENT = 0.97


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What `convert` wrote, and how closely the file follows the Keras model.

    Usable wherever a path is (`os.fspath(conversion)`, `str(conversion)`).

    Attributes:
        path: the written `.tflite` file.
        quantization: the quantization mode.
        agreement: share of checked samples on which the file and the Keras
            model take the same decision (argmax, or `p > 0.5` for one
            sigmoid unit; for a sequence output, such as next-token
            logits, the share of positions); None when no samples were
            given to check.
        mean_absolute_difference: mean |file output - Keras output|; None
            when no samples were given.
        num_checked: number of samples compared.
        near_ties: share of the differing decisions on which the Keras
            model scores its own choice and the file's within one step of
            the file's integer output (for one sigmoid unit: scores within
            a step of 0.5): ties at the file's output resolution, which no
            calibration removes. None for a file with float outputs, or
            when no decision differs.
    """

    path: str
    quantization: str
    agreement: float | None
    mean_absolute_difference: float | None
    num_checked: int
    near_ties: float | None = None

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path


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
    _check_choice("quantization", quantization, QUANTIZATIONS)
    _check_choice("io_dtype", io_dtype, IO_DTYPES)
    _check_choice("calibration_statistic", calibration_statistic, STATISTICS)
    batch_size = check_positive_int("batch_size", batch_size)
    num_calibration_samples = check_positive_int("num_calibration_samples", num_calibration_samples)
    if keras.backend.backend() != "tensorflow":
        from keras_superattn.deploy import _worker

        return _worker.convert_in_tensorflow(
            model, output_path, quantization=quantization, representative_data=representative_data,
            num_calibration_samples=num_calibration_samples, io_dtype=io_dtype, batch_size=batch_size,
            calibration_statistic=calibration_statistic, validation_data=validation_data, verbose=verbose,
        )
    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise FileNotFoundError(f"Argument `model`: no .keras file at {os.fspath(model)!r}")
        model = keras.saving.load_model(model, compile=False)
    if quantization == "int16x8":
        _check_float_inputs(model)
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
        samples = _samples("representative_data", representative_data, model)
        samples = {name: x[:num_calibration_samples] for name, x in samples.items()}
        count = _count(samples)
        if count < batch_size or count % batch_size:
            raise ValueError(
                f"The calibration samples must fill whole batches of batch_size={batch_size}. "
                f"Received: {count} samples (num_calibration_samples={num_calibration_samples})"
            )
    checked = samples
    if validation_data is not None:
        checked = _samples("validation_data", validation_data, model)
        if _count(checked) < batch_size:
            raise ValueError(
                f"Argument `validation_data` must hold at least batch_size={batch_size} samples. "
                f"Received: {_count(checked)}"
            )
    tflite_bytes = _convert_tensorflow_model(
        model, batch_size, quantization, samples, io_dtype, calibration_statistic, verbose, trained_ranges
    )
    if quantization in INTEGER_QUANTIZATIONS:
        check_full_integer(tflite_bytes, allowed=float_ops_kept(quantization), model=model)
    return _write_checked(model, tflite_bytes, output_path, quantization, checked, verbose)


def check_full_integer(tflite_bytes, allowed=(), model=None):
    """Raises `ValueError` naming every op of the graph (of every signature)
    that computes in float, apart from the ops named in `allowed` and the
    (de)quantize steps around them.

    With the Keras `model` the file came from, the message also names the
    model's layer behind each such op and, for the layers with a known
    integer-clean replacement, the change to make."""
    graph = flatbuffer.read_model(tflite_bytes)
    offenders = [
        op
        for subgraph in range(len(graph.subgraphs))
        for op in flatbuffer.float_ops(flatbuffer.operators(graph, subgraph))
    ]
    if allowed:
        offenders = [op for op in offenders if op.name not in (*allowed, "QUANTIZE", "DEQUANTIZE")]
    if not offenders:
        return
    layers = {}
    listed = []
    for op in offenders:
        layer = _source_layer(op, model)
        if layer is not None:
            layers[layer.name] = layer
        origin = f" in layer {layer.name!r} ({type(layer).__name__})" if layer is not None else ""
        listed.append(f"#{op.index} {op.name} {sorted(op.types())}{origin}")
    advice = [_REPLACEMENTS[type(layer)] for layer in layers.values() if type(layer) in _REPLACEMENTS] or [
        "Use keras.ops rather than custom float code."
    ]
    raise ValueError(
        f"The integer conversion is not fully integer: these ops compute in float: {', '.join(listed)}. "
        + " ".join(dict.fromkeys(advice))
    )


# Keras layers whose graph has float-only ops in int8, with what to use instead.
_REPLACEMENTS = {
    keras.layers.LayerNormalization: (
        "Use keras_superattn.layers.LayerNormalization instead of keras.layers.LayerNormalization "
        "(same numbers, int8 kernels only)."
    ),
    keras.layers.GlobalAveragePooling1D: (
        "Average a masked sequence with keras_superattn.layers.MaskedAveragePooling() instead of "
        "keras.layers.GlobalAveragePooling1D() (same numbers; Keras' layer casts the mask to float)."
    ),
}


def _source_layer(op, model):
    """The top-level layer of `model` whose TensorFlow name scope produced
    `op`, or None. The traced serving function gives each scope a `_<n>`
    suffix (layer `dense` -> scope `dense_1`), so the name less its suffix is
    tried first."""
    if model is None:
        return None
    layers = {layer.name: layer for layer in model.layers}
    for name in op.output_names:
        for scope in name.split(";")[0].split("/")[:-1]:
            for candidate in (scope.rpartition("_")[0], scope):
                if candidate in layers:
                    return layers[candidate]
    return None


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"Argument `{name}` must be one of {choices}. Received: {name}={value!r}")


def _check_float_inputs(model):
    integer = [f"{i.name!r} ({i.dtype})" for i in model.inputs if not keras.backend.is_float_dtype(i.dtype)]
    if integer:
        raise ValueError(
            "quantization='int16x8' takes models with float inputs (images, features). TensorFlow's int16x8 "
            "quantizer cannot quantize the integer ops of a token model (the embedding's wrap of negative ids, "
            "the padding mask) nor the attention's masking SELECT_V2; convert it to 'int8' or 'int8_xnnpack'. "
            f"Received: a model with integer inputs {', '.join(integer)}"
        )


def _samples(name, data, model):
    """`data` as `{input name: array}` in the model's input dtypes, checked
    sample by sample: an array for a one-input model, else a dict keyed by
    the model's input names."""
    if data is None:
        raise ValueError(f"Argument `{name}` is required for integer quantization. Received: None")
    names = [model_input.name for model_input in model.inputs]
    if not isinstance(data, dict):
        if len(names) != 1:
            raise ValueError(
                f"The model has {len(names)} inputs: pass `{name}` as a dict with the keys {names}. "
                f"Received: a {type(data).__name__}"
            )
        data = {names[0]: data}
    if set(data) != set(names):
        raise ValueError(f"Argument `{name}` must have exactly the keys {names}. Received: {list(data)}")
    arrays = {}
    for model_input in model.inputs:
        array = np.asarray(data[model_input.name])
        label = name if len(names) == 1 else f"{name}[{model_input.name!r}]"
        expected = tuple(model_input.shape[1:])
        if array.ndim == 0 or array.shape[1:] != expected or len(array) == 0:
            raise ValueError(
                f"Argument `{label}` must have shape (N, {', '.join(map(str, expected))}) with N >= 1 "
                f"to match the model input. Received: {array.shape}"
            )
        if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
            finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
            if not finite.all():
                bad = np.flatnonzero(~finite)
                raise ValueError(
                    f"Argument `{label}` must hold finite values only; samples {bad[:10].tolist()}"
                    f"{' ...' if len(bad) > 10 else ''} ({len(bad)} in all) contain NaN or inf."
                )
        arrays[model_input.name] = array.astype(model_input.dtype)
    counts = {key: len(array) for key, array in arrays.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"The inputs of `{name}` must have the same number of samples. Received: {counts}")
    return arrays


def _count(samples):
    return len(next(iter(samples.values())))


def _as_model_inputs(model, arrays):
    """`{input name: array}` as the model takes it: the array of a one-input
    model (Sequential has no named structure), else the dict, which Keras
    matches to the inputs by name whether the model was built from a dict or
    a list."""
    return arrays[model.inputs[0].name] if len(model.inputs) == 1 else arrays


def _output_names(model):
    """The output layers' names, for the signature (Sequential has no `output_names`)."""
    names = getattr(model, "output_names", None)
    return list(names) if names else [model.layers[-1].name]


def _convert_tensorflow_model(
    model, batch_size, quantization, samples, io_dtype, statistic, verbose, trained_ranges=False
):
    import tensorflow as tf

    names = [model_input.name for model_input in model.inputs]
    signature = [
        tf.TensorSpec((batch_size, *model_input.shape[1:]), tf.as_dtype(model_input.dtype), name=model_input.name)
        for model_input in model.inputs
    ]
    output_names = _output_names(model)

    def serve(*inputs):
        outputs = model(_as_model_inputs(model, dict(zip(names, inputs))), training=False)
        return dict(zip(output_names, keras.tree.flatten(outputs)))

    with tempfile.TemporaryDirectory() as saved_model, conversion_forms():
        # A SavedModel freezes the weights; converting a tf.function of a
        # Keras 3 model directly leaves READ_VARIABLE ops behind. The endpoint
        # returns a dict so that the signature carries the output layers'
        # names, which Android's signature runner shows.
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", serve, input_signature=signature)
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if trained_ranges:
            # The converter takes each tensor's scale from its fake quantization.
            converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype)
        elif quantization in INTEGER_QUANTIZATIONS:
            converter.representative_dataset = _representative_dataset(samples, batch_size, verbose)
        if quantization in INT8_QUANTIZATIONS and not trained_ranges:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            # Calibrate only: the recorded ranges are replaced by measured
            # ones before the model is quantized, below.
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
    if quantization not in INT8_QUANTIZATIONS or trained_ranges:
        return converted
    from tensorflow.lite.python import convert as tflite_convert

    calibrated = calibration.recalibrate(converted, samples, batch_size, statistic)
    # The arguments TFLiteConverter itself passes to its MLIR quantizer.
    return tflite_convert.mlir_quantize(
        calibrated, input_data_type=getattr(tf, io_dtype), output_data_type=getattr(tf, io_dtype),
        denylisted_ops=list(float_ops_kept(quantization)) or None,
    )


def _representative_dataset(samples, batch_size, verbose):
    def generate():
        progress = keras.utils.Progbar(_count(samples), unit_name="sample") if verbose else None
        for start in range(0, _count(samples), batch_size):
            yield {name: x[start : start + batch_size] for name, x in samples.items()}
            if progress:
                progress.update(start + batch_size)

    return generate


def _write_checked(model, tflite_bytes, output_path, quantization, checked, verbose):
    """Writes the file under a temporary name, runs it, compares it with the
    Keras model and only then moves it to `output_path`."""
    folder = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tflite.part")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(tflite_bytes)
        os.chmod(temporary, 0o666 & ~_umask())  # as open() would create it
        try:
            written = TFLiteModel(temporary)
            if checked is None:
                checked_inputs = {
                    x.name: np.zeros((written.batch_size, *x.shape[1:]), x.dtype) for x in model.inputs
                }
            else:
                count = _count(checked)
                whole = count - count % written.batch_size or written.batch_size
                checked_inputs = {name: x[:whole] for name, x in checked.items()}
            got = written.predict(checked_inputs)
        except Exception as error:
            raise ValueError(f"The converted {quantization} file cannot run with LiteRT: {error}") from error
        conversion = _compare(
            model, checked_inputs, got, _output_step(written), output_path, quantization, checked is not None
        )
        os.replace(temporary, output_path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
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
    want = model.predict(_as_model_inputs(model, inputs), verbose=0, batch_size=256)
    want = keras.ops.convert_to_numpy(want).reshape(got.shape)
    agreement = float(np.mean(decisions(got) == decisions(want)))
    conversion = Conversion(
        os.fspath(output_path), quantization, agreement, float(np.abs(got - want).mean()), _count(inputs),
        near_ties(want, got, step),
    )
    warn_if_disagreeing(conversion)
    return conversion


def near_ties(want, got, step):
    """Share of the decisions where `got` differs from `want` on which `want`
    scores both choices within `step` of each other (see `Conversion`)."""
    want_decisions, got_decisions = decisions(want), decisions(got)
    differ = want_decisions != got_decisions
    if step is None or not differ.any():
        return None
    if want.shape[-1] == 1:
        margin = np.abs(want[..., 0] - 0.5)
    else:
        scores = np.take_along_axis(want, np.stack([want_decisions, got_decisions], -1), -1)  # (..., 2)
        margin = scores[..., 0] - scores[..., 1]
    return float(np.mean(margin[differ] <= step))


def warn_if_disagreeing(conversion):
    """Warns when a file takes the Keras model's decision on under 97% of samples."""
    if conversion.agreement is None or conversion.agreement >= MIN_AGREEMENT:
        return
    advice = (
        "Calibrate with more, and more typical, samples, or, for a model with float inputs, use "
        "quantization='int16x8'."
    )
    if conversion.near_ties is not None and conversion.near_ties >= 0.5:
        advice = (
            f"{100 * conversion.near_ties:.0f}% of the differing decisions are near ties: the Keras model scores "
            "both choices within one step of the file's integer output, a resolution that more calibration "
            "does not change. " + advice
        )
    warnings.warn(
        f"The {conversion.quantization} file {conversion.path} takes the Keras model's decision on only "
        f"{100 * conversion.agreement:.1f}% of {conversion.num_checked} samples (below "
        f"{100 * MIN_AGREEMENT:.0f}%). {advice}",
        stacklevel=4,
    )


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask

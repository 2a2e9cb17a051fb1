"""Checks and shapes of what `deploy`'s converters are given."""

import keras
import numpy as np


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"Argument `{name}` must be one of {choices}. Received: {name}={value!r}")


def check_float_inputs(model):
    integer = [f"{i.name!r} ({i.dtype})" for i in model.inputs if not keras.backend.is_float_dtype(i.dtype)]
    if integer:
        raise ValueError(
            "quantization='int16x8' takes models with float inputs (images, features). TensorFlow's int16x8 "
            "quantizer cannot quantize the integer ops of a token model (the embedding's wrap of negative ids, "
            "the padding mask) nor the attention's masking SELECT_V2; convert it to 'int8' or 'int8_xnnpack'. "
            f"Received: a model with integer inputs {', '.join(integer)}"
        )


def model_samples(name, data, model):
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


def sample_count(samples):
    return len(next(iter(samples.values())))


def as_model_inputs(model, arrays):
    """`{input name: array}` as the model takes it: the array of a one-input
    model (Sequential has no named structure), else the dict, which Keras
    matches to the inputs by name whether the model was built from a dict or
    a list."""
    return arrays[model.inputs[0].name] if len(model.inputs) == 1 else arrays


def output_names(model):
    """The output layers' names, for the signature (Sequential has no `output_names`)."""
    names = getattr(model, "output_names", None)
    return list(names) if names else [model.layers[-1].name]


def as_arrays(data):
    """Array-like data (or a dict of it) as NumPy arrays, to send to another process."""
    if data is None:
        return None
    if isinstance(data, dict):
        return {name: np.asarray(values) for name, values in data.items()}
    return np.asarray(data)

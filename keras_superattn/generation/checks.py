"""Checks of what generation is given, shared by the Keras and the LiteRT generators.

Each names the argument, what was expected and what was received, so that
bad input never reaches a backend's or a runtime's own error (an embedding
lookup, a GATHER, XNNPACK).
"""

import numbers

import numpy as np
from keras import ops


def token_ids(name, ids, vocabulary_size=None, shape=None):
    """`ids` as an int32 NumPy array, checked: integers in `[0, vocabulary_size)`
    (non-negative when the vocabulary is unknown) and, when given, of `shape`
    (None entries: any size)."""
    array = np.asarray(ops.convert_to_numpy(ids))
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"Argument `{name}` must hold integer token ids. Received: an array of dtype {array.dtype}")
    if shape is not None and (
        array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape))
    ):
        sizes = ["batch" if axis == 0 else "any" if size is None else str(size) for axis, size in enumerate(shape)]
        expected = "(" + ", ".join(sizes) + ")"
        raise ValueError(f"Argument `{name}` must have shape {expected}. Received: {name}.shape={array.shape}")
    outside = (array < 0) | (array >= vocabulary_size if vocabulary_size is not None else False)
    if outside.any():
        bad = array[outside]
        bound = f"[0, {vocabulary_size}), the model's vocabulary" if vocabulary_size is not None else "[0, ...)"
        raise ValueError(
            f"Argument `{name}` must hold ids in {bound}. "
            f"Received: {bad.size} id(s) outside it, e.g. {int(bad.flat[0])}"
        )
    return array.astype(np.int32)


def prompt_and_mask(prompt, padding_mask, sequence_length, vocabulary_size):
    """The checked `(B, T)` prompt and its mask: the given tokens of each row
    must come first (from position 0, without gaps), at least one per row."""
    prompt = token_ids("prompt", prompt, vocabulary_size, (None, sequence_length))
    if padding_mask is None:
        mask = prompt != 0
    else:
        mask = np.asarray(ops.convert_to_numpy(padding_mask))
        if mask.shape != prompt.shape:
            raise ValueError(
                f"Argument `padding_mask` must have the prompt's shape {prompt.shape}. Received: {mask.shape}"
            )
        mask = mask.astype(bool)
    lengths = mask.sum(axis=1)
    if len(prompt) == 0 or lengths.min() < 1:
        raise ValueError(
            "Every row of `prompt` needs at least one token (e.g. the start token) at position 0. "
            f"Received: rows {np.flatnonzero(lengths < 1).tolist()} without one"
        )
    contiguous = mask == (np.arange(mask.shape[1])[None, :] < lengths[:, None])
    if not contiguous.all():
        rows = np.flatnonzero(~contiguous.all(axis=1))
        raise ValueError(
            "Each row's prompt tokens must be contiguous from position 0, padding (id 0) only after them. "
            f"Received: rows {rows[:10].tolist()} with a gap or a leading pad"
        )
    return prompt, mask


def stop_token_ids(ids, vocabulary_size=None):
    """`None`, or a sequence of integer ids (in `[0, vocabulary_size)` when
    that is known), as a tuple."""
    if ids is None:
        return None
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(
            "Argument `stop_token_ids` must be None or a sequence of integer token ids, e.g. [3]. "
            f"Received: {ids!r}"
        )
    ids = list(ids)
    if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids):
        raise TypeError(f"Argument `stop_token_ids` must hold integer token ids. Received: {ids!r}")
    bad = [int(i) for i in ids if i < 0 or (vocabulary_size is not None and i >= vocabulary_size)]
    if bad:
        raise ValueError(
            f"Argument `stop_token_ids` must hold ids in [0, {vocabulary_size or 'vocabulary size'}). "
            f"Received: {bad} outside it"
        )
    return tuple(int(i) for i in ids)


def sampler(value):
    """A sampler: None (greedy) or a callable with keras-hub's sampler interface."""
    if value is not None and not callable(value):
        raise TypeError(
            "Argument `sampler` must be a Sampler, e.g. generation.TopKSampler(5). "
            f"Received: {type(value).__name__}"
        )
    return value

"""Checks and masks of the attention layers' inputs and caches, shared by
`BaseAttention` and the variants that extend its cache."""

from keras import ops


def sequence_length(x, axis=1):
    """The sequence length of `x`: a Python int when static, else a scalar tensor."""
    return x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis]


def check_shapes(num_heads, query_shape, value_shape, key_shape):
    """Validates the input shapes and returns the model width `d`."""
    for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
        if len(shape) != 3:
            raise ValueError(
                f"Argument `{name}` must have rank 3, (batch, sequence, features). "
                f"Received: {name}.shape={tuple(shape)}"
            )
    width = query_shape[-1]
    if width is None or width % num_heads:
        raise ValueError(
            "The last dimension of `query` must be a multiple of `num_heads`. "
            f"Received: query.shape={tuple(query_shape)}, num_heads={num_heads}"
        )
    for name, shape in (("value", value_shape), ("key", key_shape)):
        if shape[-1] != width:
            raise ValueError(
                f"Argument `{name}` must have the same last dimension as `query` "
                f"({width}). Received: {name}.shape={tuple(shape)}"
            )
    if None not in (key_shape[1], value_shape[1]) and key_shape[1] != value_shape[1]:
        raise ValueError(
            "Arguments `key` and `value` must have the same sequence length. "
            f"Received: key.shape={tuple(key_shape)}, value.shape={tuple(value_shape)}"
        )
    return width


def streams_of(cache):
    """The `(B, S, d)` streams of a cache, stacked or a tuple."""
    return list(cache) if isinstance(cache, (tuple, list)) else [cache[:, i] for i in range(cache.shape[1])]


def is_zero(index):
    """Whether a cache index is the Python int 0 (a tensor index may be anything)."""
    return isinstance(index, int) and index == 0


def cache_positions(mask, index, length):
    """Columns `index...index + length` of a `(B, S)` mask of cache positions."""
    return ops.slice(mask, (0, index), (ops.shape(mask)[0], length))


def check_cache(layer, cache, key, return_attention_scores):
    """Validates a cache `layer` is called with, and the arguments a cache rules out."""
    if layer.cache_streams is None:
        raise ValueError(
            f"{type(layer).__name__} states no cache layout: a variant that decodes with a `cache` sets the class "
            "attribute `cache_streams` (2: keys and values; 1: keys that are also the values). Received a `cache`"
        )
    width = layer.num_heads * layer.head_dim
    if isinstance(cache, (tuple, list)):
        shapes = tuple(tuple(stream.shape) for stream in cache)
        if len(cache) != layer.cache_streams or not all(_fits(shape, (None, None, width)) for shape in shapes):
            raise ValueError(
                f"Argument `cache` of {type(layer).__name__}, as a tuple, must hold cache_streams="
                f"{layer.cache_streams} tensors of shape (batch, length, {width}). Received shapes: {shapes}"
            )
    elif len(cache.shape) != 4 or not _fits(tuple(cache.shape), (None, layer.cache_streams, None, width)):
        raise ValueError(
            f"Argument `cache` of {type(layer).__name__} must have shape (batch, cache_streams, length, d) = "
            f"{(None, layer.cache_streams, None, width)} (None: any size). Received: cache.shape={tuple(cache.shape)}"
        )
    if key is not None:
        raise ValueError("With a `cache`, keys and values come from one input: `key` must be None. Received a `key`")
    if return_attention_scores:
        raise ValueError("`return_attention_scores=True` is not supported with a `cache`.")


def check_masks(query, source_length, query_mask, value_mask, key_mask, attention_mask):
    """Validates the masks against the query and the `source_length` keys
    (a Python int or None when unknown)."""
    batch, length = query.shape[0], query.shape[1]
    source_length = source_length if isinstance(source_length, int) else None
    for name, mask, shape in (
        ("query_mask", query_mask, (batch, length)),
        ("value_mask", value_mask, (batch, source_length)),
        ("key_mask", key_mask, (batch, source_length)),
    ):
        if mask is not None and not _fits(tuple(mask.shape), shape):
            raise ValueError(
                f"Argument `{name}` must have shape {shape} (None: any size). "
                f"Received: {name}.shape={tuple(mask.shape)}"
            )
    if attention_mask is None:
        return
    received = tuple(attention_mask.shape)
    # As in MultiHeadAttention, a mask shared by the batch may omit it or be 1.
    shared = received[:1] in ((1,), (None,)) or len(received) == 2
    if len(received) not in (2, 3) or not _fits(
        received[-2:], (length, source_length)
    ) or not (shared or _fits(received[:1], (batch,))):
        raise ValueError(
            "Argument `attention_mask` must have shape (batch, l, s), (1, l, s) or "
            f"(l, s), here {(batch, length, source_length)} (None: any size). "
            f"Received: attention_mask.shape={received}"
        )


def _fits(received, expected):
    return len(received) == len(expected) and all(
        None in (got, want) or got == want for got, want in zip(received, expected)
    )


def and_masks(*masks):
    """The logical AND of the masks that are not None, as bool; None if none is."""
    masks = [ops.cast(mask, "bool") for mask in masks if mask is not None]
    if not masks:
        return None
    combined = masks[0]
    for mask in masks[1:]:
        combined = ops.logical_and(combined, mask)
    return combined


def combine_masks(query, source_length, query_mask, value_mask, key_mask, attention_mask, causal, offset=0):
    """ANDs every mask into one boolean `(B | 1, l, s)` mask, or returns None.
    Causally, query row `i` is position `offset + i` of the keys."""
    parts = []
    if query_mask is not None:
        parts.append(ops.cast(query_mask, "bool")[:, :, None])  # (B, l, 1)
    for mask in (value_mask, key_mask):
        if mask is not None:
            parts.append(ops.cast(mask, "bool")[:, None, :])  # (B, 1, s)
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        if len(attention_mask.shape) == 2:
            attention_mask = attention_mask[None]
        parts.append(attention_mask)  # (B | 1, l, s)
    if causal:
        rows = ops.arange(sequence_length(query))[:, None] + offset
        columns = ops.arange(source_length)[None, :]
        parts.append(ops.greater_equal(rows, columns)[None])  # (1, l, s)
    return and_masks(*parts)

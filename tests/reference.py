"""An independent NumPy implementation of docs/paper.md, in float64.

It shares no code with the package: it reads the layer's weights by their
documented paths and recomputes the attention from the specification.
"""

import numpy as np

VARIANT_PROJECTIONS = {
    "standard": ("query", "key", "value"),
    "optimized": ("query", "key"),
    "efficient": ("query",),
    "super": ("query",),
}


def weights_by_path(layer):
    """`{"query/kernel": array, ..., "alignment": array}` for a built layer."""
    return {w.path.split("/", 1)[1]: np.asarray(w.numpy(), np.float64) for w in layer.weights}


def _dense(weights, name, x):
    return x @ weights[f"{name}/kernel"] + weights.get(f"{name}/bias", 0.0)


def _split(x, num_heads):  # (B, l, d) -> (B, h, l, d_k), head i owns a column block
    batch, length, width = x.shape
    return x.reshape(batch, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def attention(
    variant,
    weights,
    query,
    value=None,
    key=None,
    *,
    num_heads,
    query_mask=None,
    value_mask=None,
    key_mask=None,
    attention_mask=None,
    causal=False,
):
    """Returns `(output (B, l, d), weights (B, h, l, s))` of the spec."""
    query = np.asarray(query, np.float64)
    value = query if value is None else np.asarray(value, np.float64)
    key = value if key is None else np.asarray(key, np.float64)
    projections = VARIANT_PROJECTIONS[variant]
    batch, length, width = query.shape
    source_length = value.shape[1]

    q = _dense(weights, "query", query)
    k = _dense(weights, "key", key) if "key" in projections else key
    if variant == "super":
        x = value if value_mask is None else value * np.asarray(value_mask)[:, :, None]
        mix = weights["alignment"][:source_length, :source_length]
        if causal:
            mix = np.tril(mix)
        v = np.einsum("ts,bsd->btd", mix, x)
    else:
        v = _dense(weights, "value", value) if "value" in projections else value

    allowed = np.ones((batch, length, source_length), bool)
    if query_mask is not None:
        allowed &= np.asarray(query_mask, bool)[:, :, None]
    for mask in (value_mask, key_mask):
        if mask is not None:
            allowed &= np.asarray(mask, bool)[:, None, :]
    if attention_mask is not None:
        allowed &= np.asarray(attention_mask, bool)
    if causal:
        allowed &= np.tril(np.ones((length, source_length), bool))

    head_dim = width // num_heads
    scores = _split(q, num_heads) @ _split(k, num_heads).transpose(0, 1, 3, 2)
    scores = np.where(allowed[:, None], scores / np.sqrt(head_dim), -1e9)
    scores -= scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    heads = probs @ _split(v, num_heads)  # (B, h, l, d_k)
    merged = heads.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return _dense(weights, "attention_output", merged), probs


def encoder(attention_name, weights, x, *, num_heads, padding_mask=None, normalize_first=False, epsilon=1e-5):
    """A `TransformerEncoder` block (ReLU FFN) from weights keyed by their path
    inside the block (`"attention/query/kernel"`, `"intermediate/kernel"`, ...).

    `"mha"` (Keras' MultiHeadAttention) is SDPA with per-head kernels; they are
    flattened to the `(d, d)` layout, in which head i owns a column block too.
    """
    attend = _attend(attention_name, weights, "attention", num_heads, query_mask=padding_mask,
                     value_mask=padding_mask)
    return _block(weights, x, [(attend, "attention_norm")], normalize_first, epsilon)


def decoder(attention_name, weights, x, encoder_output=None, *, num_heads, decoder_padding_mask=None,
            encoder_padding_mask=None, cross_attention_name=None, normalize_first=False, epsilon=1e-5):
    """A `TransformerDecoder` block (ReLU FFN): causal self-attention, then
    cross-attention to `encoder_output` when given, then the FFN."""
    sublayers = [(
        _attend(attention_name, weights, "self_attention", num_heads, query_mask=decoder_padding_mask,
                value_mask=decoder_padding_mask, causal=True),
        "self_attention_norm",
    )]
    if encoder_output is not None:
        cross = _attend(cross_attention_name or attention_name, weights, "cross_attention", num_heads,
                        query_mask=decoder_padding_mask, value_mask=encoder_padding_mask)
        sublayers.append((lambda y: cross(y, np.asarray(encoder_output, np.float64)), "cross_attention_norm"))
    return _block(weights, x, sublayers, normalize_first, epsilon)


def _attend(attention_name, weights, prefix, num_heads, **kwargs):
    """The attention sub-layer under `prefix/` as a function of its query (and value)."""
    attention_weights = {
        name.split("/", 1)[1]: _heads_flattened(name, value)
        for name, value in weights.items()
        if name.startswith(f"{prefix}/")
    }
    variant = "standard" if attention_name == "mha" else attention_name
    return lambda y, value=None: attention(variant, attention_weights, y, value, num_heads=num_heads, **kwargs)[0]


def _block(weights, x, sublayers, normalize_first, epsilon):
    """Residual sub-blocks `(function, norm name)` and the FFN, pre- or post-norm."""

    def norm(y, name):
        mean = y.mean(-1, keepdims=True)
        variance = ((y - mean) ** 2).mean(-1, keepdims=True)
        return (y - mean) / np.sqrt(variance + epsilon) * weights[f"{name}/gamma"] + weights[f"{name}/beta"]

    def feedforward(y):
        return _dense(weights, "output", np.maximum(_dense(weights, "intermediate", y), 0.0))

    x = np.asarray(x, np.float64)
    for function, name in [*sublayers, (feedforward, "feedforward_norm")]:
        x = x + function(norm(x, name)) if normalize_first else norm(x + function(x), name)
    return x


def _heads_flattened(name, value):
    """A MultiHeadAttention weight in the `(d, d)` / `(d,)` layout; others as they are."""
    if name.endswith("attention_output/kernel"):
        return value.reshape(-1, value.shape[-1])  # (h, d_k, d) -> (d, d)
    if value.ndim == 3:
        return value.reshape(value.shape[0], -1)  # (d, h, d_k) -> (d, d)
    if name.endswith("bias"):
        return value.reshape(-1)  # (h, d_k) -> (d,)
    return value

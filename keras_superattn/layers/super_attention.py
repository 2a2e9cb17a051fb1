"""Super Attention: Efficient Attention plus a learned alignment kernel."""

import keras
from keras import ops

from keras_superattn._keras_compat import clone_initializer
from keras_superattn._validation import check_positive_int
from keras_superattn.layers._attention_inputs import cache_positions
from keras_superattn.layers._attention_inputs import is_zero
from keras_superattn.layers._attention_inputs import sequence_length
from keras_superattn.layers._attention_inputs import streams_of
from keras_superattn.layers.base_attention import BaseAttention
from keras_superattn.layers.export_mode import current as export_mode

# PyTorch runs a `(s, s) x (B, s, d)` matmul as one GEMM on copies of the
# transposed values; a batch matmul on `W_A` broadcast as a view takes less
# (Super 0.03-0.05 of Standard's time forward, 0.04 with the backward;
# BENCHMARKS.md, "Where the time goes"). On TensorFlow the two forms take the same time and
# on JAX the broadcast one is slower, so they keep the plain matmul.
_BROADCAST_ALIGNMENT = keras.backend.backend() == "torch"


@keras.saving.register_keras_serializable(package="keras_superattn")
class SuperAttention(BaseAttention):
    """Super Attention: Efficient Attention plus a learned alignment kernel.

    Keys are the heads of the key/value input itself, as in Efficient
    Attention. The values are `W_A X`: a learned `(L, L)` alignment kernel
    mixes the value input along the sequence, once per layer, shared by all
    heads. Attention parameters: `2 d^2 + L^2` (+ `2 d` biases), fewer than
    SDPA's `4 d^2` while `L < sqrt(2) d`.

    Where the paper is silent this layer decides (see docs/paper.md):
    - a sequence of length `l < L` uses `W_A[:l, :l]`; `l > L` is an error;
    - with `use_causal_mask=True` it uses `tril(W_A)`, so no value mixes in a
      later token;
    - padded key/value positions (value and key masks) are zeroed before
      `W_A` mixes them.

    Args:
        num_heads: int. Number of attention heads; must divide the query width.
        max_length: optional int, `L`. Taken from the static sequence length
            of the value input at build time when not given.
        alignment_initializer: initializer of `W_A`. The default,
            `"identity"`, makes the layer start out as Efficient Attention
            and learn its mixing from there; the paper is silent, and an
            ablation chose it (REPRODUCTION.md, "Alignment initialisation"):
            against `"glorot_uniform"` it trained far better causally and
            in translation, and as well or better on IMDB and CIFAR-10.
        alignment_regularizer: optional regularizer of `W_A`.
        alignment_constraint: optional constraint on `W_A`.
        **kwargs: the other arguments of `BaseAttention` (`dropout`,
            `use_bias`, initializers, ...) and base layer arguments.

    Call arguments, Returns: see `BaseAttention`.

    Example:

    ```python
    x = keras.random.normal((2, 16, 64))
    y = SuperAttention(num_heads=8)(x)  # W_A is (16, 16); y.shape == (2, 16, 64)
    ```

    Reference:
        Hosseini et al., "Cost-Effective Attention Mechanisms for Low Resource
        Settings: Necessity & Sufficiency of Linear Transformations",
        arXiv:2403.01643 v3, 2025.
    """

    projects_key = False
    projects_value = False
    # A cache keeps the input X (the keys) and the mixed values W_A X.
    cache_streams = 2
    _quantized_tensors = (*BaseAttention._quantized_tensors, "mixed_values")

    def __init__(
        self,
        num_heads,
        max_length=None,
        alignment_initializer="identity",
        alignment_regularizer=None,
        alignment_constraint=None,
        **kwargs,
    ):
        super().__init__(num_heads, **kwargs)
        self.max_length = check_positive_int("max_length", max_length, allow_none=True)
        self.alignment_initializer = keras.initializers.get(alignment_initializer)
        self.alignment_regularizer = keras.regularizers.get(alignment_regularizer)
        self.alignment_constraint = keras.constraints.get(alignment_constraint)

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        value_length = (query_shape if value_shape is None else value_shape)[1]
        if self.max_length is None:
            if value_length is None:
                raise ValueError(
                    "SuperAttention needs the length L of its (L, L) alignment "
                    "kernel: pass `max_length`, or give the value input a static "
                    "sequence length. Received: max_length=None, value length None"
                )
            self.max_length = value_length
        self._check_length(value_length)
        self.alignment = self.add_weight(
            name="alignment",
            shape=(self.max_length, self.max_length),
            initializer=clone_initializer(self.alignment_initializer),
            regularizer=self.alignment_regularizer,
            constraint=self.alignment_constraint,
        )

    def _check_length(self, length):
        """`length`, checked against `max_length`; a run-time length comes
        back tied to its check, so that nothing using it runs before."""
        message = (
            "The value sequence is longer than the alignment kernel of "
            f"SuperAttention allows: max_length={self.max_length}, "
            "received a sequence of length"
        )
        if isinstance(length, int):
            if length > self.max_length:
                raise ValueError(f"{message} {length}")
        elif length is not None and keras.backend.backend() == "tensorflow":
            # Only a TensorFlow graph has lengths unknown until run time;
            # without this check it fails inside `slice` with no word of
            # `max_length`. keras.ops has no assertion, hence the TF op.
            import tensorflow as tf

            check = tf.debugging.assert_less_equal(length, self.max_length, message=message)
            # Without the dependency the slice of W_A may fail first, with
            # TensorFlow's own message.
            with tf.control_dependencies([check]):
                return tf.identity(length)
        return length

    def _cache_entries(self, value, cached_keys, index, source_mask, use_causal_mask):
        length, cached = sequence_length(value), self._check_length(sequence_length(cached_keys))
        kernel = ops.cast(self.alignment, value.dtype)  # (L, L)
        # Rows index...index + l of W_A: their columns for the new tokens...
        weights = ops.slice(kernel, (index, index), (length, length))  # (l, l)
        if use_causal_mask and length != 1:  # one token has only its own column
            weights = ops.tril(weights)  # on a slice at a run-time index, a float op in int8
        new_mask = None if source_mask is None else cache_positions(source_mask, index, length)
        inputs = _without_padding(value, new_mask)  # (B, l, d)
        if not is_zero(index):
            # ... and for the cached tokens before `index` (causally, the
            # rows of tril(W_A) see no later token, so cached rows stay valid).
            earlier = ops.slice(kernel, (index, 0), (length, cached))  # (l, S)
            weights = ops.concatenate([earlier, weights], axis=1)  # (l, S + l)
            # Positions from `index` on are not written yet: their inputs,
            # not W_A's entries, are zeroed (a select on activations, which
            # int8 has; on the kernel it would stay float).
            written = ops.arange(cached)[None, :] < index  # (1, S)
            written = written if source_mask is None else ops.logical_and(written, source_mask)  # (B | 1, S)
            inputs = ops.concatenate([_without_padding(cached_keys, written), inputs], axis=1)  # (B, S + l, d)
        mixed = ops.matmul(weights, inputs)  # (B, l, d)
        return value, mixed

    def _kernel(self, length, use_causal_mask, dtype):
        """W_A for a sequence of `length`: `(length, length)`, tril causally."""
        length = self._check_length(length)
        kernel = ops.cast(self.alignment, dtype)  # (L, L)
        if not isinstance(length, int) or length != self.max_length:
            kernel = ops.slice(kernel, (0, 0), (length, length))  # (s, s)
        return self._fake_quant_weights(ops.tril(kernel) if use_causal_mask else kernel)

    def _form_values(self, value, source_mask, use_causal_mask):
        return self._fake_quant("mixed_values", self._mix(value, source_mask, use_causal_mask))

    def _mix(self, value, source_mask, use_causal_mask):
        value = _without_padding(value, source_mask)  # (B, s, d)
        kernel = self._kernel(sequence_length(value), use_causal_mask, value.dtype)  # (s, s)
        if not export_mode().tflite:
            if _BROADCAST_ALIGNMENT:
                kernel = ops.broadcast_to(kernel, (ops.shape(value)[0], *kernel.shape))  # (B, s, s), a view
            return ops.matmul(kernel, value)  # (B, s, d), W_A broadcast over the batch
        # In a TFLite file, W_A X as X^T W_A^T: with the weight on the right
        # the converter makes it a FULLY_CONNECTED, which XNNPACK runs in
        # int8, instead of a BATCH_MATMUL, which it does not (BENCHMARKS.md,
        # "Edge latency": Super's int8 file 0.73x the time, float32 0.95x).
        # The Keras backends would pay for its two transposes of (B, s, d).
        mixed = ops.matmul(ops.transpose(value, (0, 2, 1)), ops.transpose(kernel))  # (B, d, s)
        return ops.transpose(mixed, (0, 2, 1))  # (B, s, d)

    def compute_output_spec(self, query, value=None, key=None, cache=None, **kwargs):
        source = (query if value is None else value) if cache is None else streams_of(cache)[0]
        self._check_length(source.shape[1])
        return super().compute_output_spec(query, value, key, cache=cache, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_length": self.max_length,
                "alignment_initializer": keras.initializers.serialize(
                    self.alignment_initializer
                ),
                "alignment_regularizer": keras.regularizers.serialize(
                    self.alignment_regularizer
                ),
                "alignment_constraint": keras.constraints.serialize(
                    self.alignment_constraint
                ),
            }
        )
        return config


def _without_padding(value, source_mask):
    """`value (B, s, d)` with its padded positions zeroed: padding must never
    leak into real tokens through W_A."""
    if source_mask is None:
        return value
    # A select of a constant zero, not a multiplication by the mask cast to
    # float nor `zeros_like` of an input: both would stay float in an int8
    # file.
    return ops.where(source_mask[:, :, None], value, ops.zeros((), value.dtype))

"""Input embeddings: token + position for text, patches + position for images."""

import keras
from keras import ops

from keras_superattn._keras_compat import clone_initializer
from keras_superattn._validation import check_positive_int
from keras_superattn.layers.fake_quant import QuantizationAware


@keras.saving.register_keras_serializable(package="keras_superattn")
class TokenAndPositionEmbedding(QuantizationAware, keras.layers.Layer):
    """Token embedding plus a learned position embedding.

    Args:
        vocabulary_size: int. Number of token ids.
        sequence_length: int. Longest sequence; one position vector each.
        embedding_dim: int. Width of both embeddings.
        mask_zero: bool. Treat token id 0 as padding and emit a Keras mask.
        embeddings_initializer: initializer of both embedding tables.
        quantization_aware: bool. Fake-quantize both tables and the sum to
            int8, for quantization-aware training.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: integer tensor of shape `(B, l)`, `l <= sequence_length`.
        start_index: int or scalar tensor. Position of the first token, e.g.
            the step of a cached decoder that embeds one token at a time.

    Returns:
        A tensor of shape `(B, l, embedding_dim)`.

    Example:

    ```python
    embed = TokenAndPositionEmbedding(20000, 32, 32)
    x = embed(keras.ops.ones((2, 32), "int32"))  # (2, 32, 32)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        embedding_dim,
        mask_zero=False,
        embeddings_initializer="uniform",
        quantization_aware=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._init_quantization(quantization_aware)
        self.vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.mask_zero = mask_zero
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = mask_zero

    def build(self, input_shape):
        length = input_shape[-1]
        if length is not None and length > self.sequence_length:
            raise ValueError(
                f"Inputs are longer than `sequence_length={self.sequence_length}`. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.token_embedding = self._layer_class(keras.layers.Embedding)(
            self.vocabulary_size, self.embedding_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            mask_zero=self.mask_zero,
            dtype=self.dtype_policy, name="token_embedding",
        )
        self.token_embedding.build(input_shape)
        self.position_embedding = self.add_weight(
            name="position_embedding",
            shape=(self.sequence_length, self.embedding_dim),
            initializer=clone_initializer(self.embeddings_initializer),
        )
        self._build_quantizers(("output",))

    def call(self, inputs, start_index=0):
        tokens = self.token_embedding(inputs)  # (B, l, d)
        length = inputs.shape[-1]
        positions = self._fake_quant_weights(ops.cast(self.position_embedding, tokens.dtype))  # (L, d)
        if length != self.sequence_length or not isinstance(start_index, int) or start_index:
            length = ops.shape(inputs)[-1] if length is None else length
            positions = ops.slice(positions, (start_index, 0), (length, self.embedding_dim))  # (l, d)
        return self._fake_quant("output", tokens + positions)

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "quantization_aware": self.quantization_aware,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_superattn")
class PatchEmbedding(QuantizationAware, keras.layers.Layer):
    """Cuts images into square patches, projects them, adds learned positions.

    The projection of each flattened `p x p` patch is a strided convolution,
    the same linear map as flattening then `Dense`, and a CONV_2D op that
    mobile runtimes and the Edge TPU run well.

    Args:
        patch_size: int. Side of each square patch; must divide the image sides.
        embedding_dim: int. Width of each patch vector.
        quantization_aware: bool. Fake-quantize the projection, the position
            table and the sum to int8, for quantization-aware training.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: images of shape `(B, H, W, C)`.

    Returns:
        A tensor of shape `(B, (H / p) * (W / p), embedding_dim)`.

    Example:

    ```python
    x = PatchEmbedding(patch_size=7, embedding_dim=64)(keras.ops.zeros((2, 28, 28, 1)))
    # x.shape == (2, 16, 64)
    ```
    """

    def __init__(self, patch_size, embedding_dim, quantization_aware=False, **kwargs):
        super().__init__(**kwargs)
        self._init_quantization(quantization_aware)
        self.patch_size = check_positive_int("patch_size", patch_size)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)

    def build(self, input_shape):
        if len(input_shape) != 4 or None in input_shape[1:]:
            raise ValueError(
                "PatchEmbedding expects images of static shape (B, H, W, C). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        height, width = input_shape[1], input_shape[2]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"Argument `patch_size` must divide the image height and width. "
                f"Received: patch_size={self.patch_size}, image shape {tuple(input_shape[1:])}"
            )
        self.num_patches = (height // self.patch_size) * (width // self.patch_size)
        self.projection = self._layer_class(keras.layers.Conv2D)(
            self.embedding_dim, self.patch_size, strides=self.patch_size,
            dtype=self.dtype_policy, name="projection",
        )
        self.projection.build(input_shape)
        self.position_embedding = self.add_weight(
            name="position_embedding",
            shape=(self.num_patches, self.embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        self._build_quantizers(("output",))

    def call(self, inputs):
        patches = self.projection(inputs)  # (B, H/p, W/p, d)
        patches = ops.reshape(patches, (-1, self.num_patches, self.embedding_dim))  # (B, n, d)
        positions = self._fake_quant_weights(ops.cast(self.position_embedding, patches.dtype))  # (n, d)
        return self._fake_quant("output", patches + positions)

    def compute_output_shape(self, input_shape):
        patches = (input_shape[1] // self.patch_size) * (input_shape[2] // self.patch_size)
        return (input_shape[0], patches, self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "embedding_dim": self.embedding_dim,
                "quantization_aware": self.quantization_aware,
            }
        )
        return config

"""Model builders: ordinary functional Keras models that save as `.keras`."""

import keras

from keras_superattn.layers import LayerNormalization
from keras_superattn.layers import MaskedAveragePooling
from keras_superattn.layers import PatchEmbedding
from keras_superattn.layers import TokenAndPositionEmbedding
from keras_superattn.layers import TransformerDecoder
from keras_superattn.layers import TransformerEncoder


def text_classifier(
    attention,
    vocabulary_size,
    sequence_length,
    embedding_dim=32,
    num_heads=4,
    intermediate_dim=32,
    num_layers=1,
    dropout=0.1,
    hidden_dim=6,
    num_classes=2,
    layer_norm_epsilon=1e-6,
    normalize_first=False,
    mask_zero=False,
    attention_kwargs=None,
    name=None,
):
    """A transformer text classifier.

    Token + position embedding, `num_layers` encoder blocks, average pooling,
    dropout, `Dense(hidden_dim, relu)`, dropout and the output layer. The
    defaults are the IMDB reference setting of docs/paper.md (one post-norm
    block, `d = 32`, 4 heads, FFN 32, dropout 0.1, epsilon 1e-6, a sigmoid
    output for two classes) with `vocabulary_size=20000, sequence_length=32`.

    Args:
        attention: attention name or class, as in `TransformerEncoder`.
        vocabulary_size: int. Number of token ids.
        sequence_length: int. Length of the (padded) input sequences.
        embedding_dim, num_heads, intermediate_dim, num_layers: encoder sizes.
        dropout: float. Dropout in the blocks and the head.
        hidden_dim: int. Width of the hidden layer of the head; 0 for none.
        num_classes: int. 2 gives one sigmoid unit, more a softmax.
        layer_norm_epsilon: float.
        normalize_first: bool. Pre-norm blocks when True.
        mask_zero: bool. Treat token 0 as padding and mask it out. The
            reference setting does not mask.
        attention_kwargs: optional dict of further arguments of every
            attention layer, e.g. `{"alignment_initializer": "identity"}`.
        name: optional model name.

    Returns:
        A `keras.Model` from `(B, sequence_length)` int32 token ids to
        probabilities, `(B, 1)` for two classes, else `(B, num_classes)`.
    """
    inputs = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = TokenAndPositionEmbedding(
        vocabulary_size, sequence_length, embedding_dim, mask_zero=mask_zero, name="embedding"
    )(inputs)
    for index in range(num_layers):
        x = TransformerEncoder(
            intermediate_dim, num_heads, attention=attention, dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon, normalize_first=normalize_first,
            attention_kwargs=attention_kwargs, name=f"encoder_{index}",
        )(x)
    if normalize_first:
        x = LayerNormalization(epsilon=layer_norm_epsilon, name="final_norm")(x)
    x = MaskedAveragePooling(name="pool")(x)
    x = keras.layers.Dropout(dropout)(x)
    if hidden_dim:
        x = keras.layers.Dense(hidden_dim, activation="relu", name="hidden")(x)
        x = keras.layers.Dropout(dropout)(x)
    outputs = _classifier_output(x, num_classes)
    return keras.Model(inputs, outputs, name=name or f"text_{_attention_name(attention)}")


def vit_classifier(
    attention,
    image_shape,
    patch_size,
    num_classes,
    embedding_dim=64,
    num_heads=4,
    num_layers=4,
    intermediate_dim=128,
    dropout=0.1,
    layer_norm_epsilon=1e-6,
    attention_kwargs=None,
    name=None,
):
    """A Vision Transformer classifier.

    Patch embedding with learned positions, `num_layers` pre-norm encoder
    blocks (as in ViT and the keras.io ViT example; per-head width
    `embedding_dim / num_heads` for every variant), a final layer
    normalization, average pooling over patches and a softmax layer.

    Args:
        attention: attention name or class, as in `TransformerEncoder`.
        image_shape: `(H, W, C)`; images are floats, e.g. scaled to [0, 1].
        patch_size: int. Side of the square patches; divides `H` and `W`.
        num_classes: int.
        embedding_dim, num_heads, num_layers, intermediate_dim: sizes.
        dropout: float. Dropout in the blocks.
        layer_norm_epsilon: float.
        attention_kwargs: optional dict of further arguments of every
            attention layer, e.g. `{"alignment_initializer": "identity"}`.
        name: optional model name.

    Returns:
        A `keras.Model` from `(B, H, W, C)` images to class probabilities.
    """
    inputs = keras.Input(tuple(image_shape), name="images")
    x = PatchEmbedding(patch_size, embedding_dim, name="patches")(inputs)
    for index in range(num_layers):
        x = TransformerEncoder(
            intermediate_dim, num_heads, attention=attention, dropout=dropout,
            activation="gelu", layer_norm_epsilon=layer_norm_epsilon, normalize_first=True,
            attention_kwargs=attention_kwargs, name=f"encoder_{index}",
        )(x)
    x = LayerNormalization(epsilon=layer_norm_epsilon, name="final_norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = _classifier_output(x, num_classes)
    return keras.Model(inputs, outputs, name=name or f"vit_{_attention_name(attention)}")


def translator(
    attention,
    source_vocabulary_size,
    target_vocabulary_size,
    source_length,
    target_length,
    embedding_dim=64,
    num_heads=4,
    intermediate_dim=128,
    num_layers=1,
    dropout=0.1,
    cross_attention=None,
    layer_norm_epsilon=1e-6,
    attention_kwargs=None,
    name=None,
):
    """An encoder-decoder transformer for translation, as keras.io's
    English-to-Spanish example, with pre-norm blocks.

    The source is embedded with `mask_zero=True`, so its padding (id 0) is
    hidden from the encoder and from the decoder's cross-attention. The
    target is the sequence so far, starting with a start token; position `t`
    of the output scores the token at `t + 1`. Padding in the target needs no
    mask: it only ever comes after the real tokens, which the causal
    self-attention already hides; the loss ignores it.

    Args:
        attention: attention of every block (encoder self-attention, decoder
            causal self-attention), as in `TransformerEncoder`.
        source_vocabulary_size, target_vocabulary_size: int.
        source_length, target_length: int. Static sequence lengths.
        embedding_dim, num_heads, intermediate_dim: sizes of every block.
        num_layers: int. Encoder blocks, and as many decoder blocks.
        dropout: float.
        cross_attention: the decoder's attention over the encoder output;
            None for the same as `attention`.
        layer_norm_epsilon: float.
        attention_kwargs: optional dict of further arguments of every
            attention layer, e.g. `{"alignment_initializer": "identity"}`.
        name: optional model name.

    Returns:
        A `keras.Model` from `{"source": (B, source_length), "target":
        (B, target_length)}` int32 ids to next-token logits
        `(B, target_length, target_vocabulary_size)`.
    """
    source = keras.Input((source_length,), dtype="int32", name="source")
    target = keras.Input((target_length,), dtype="int32", name="target")
    blocks = dict(
        dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, normalize_first=True, attention_kwargs=attention_kwargs
    )
    x = TokenAndPositionEmbedding(
        source_vocabulary_size, source_length, embedding_dim, mask_zero=True, name="source_embedding"
    )(source)
    for index in range(num_layers):
        x = TransformerEncoder(intermediate_dim, num_heads, attention=attention, name=f"encoder_{index}", **blocks)(x)
    x = LayerNormalization(epsilon=layer_norm_epsilon, name="encoder_norm")(x)
    y = TokenAndPositionEmbedding(target_vocabulary_size, target_length, embedding_dim, name="target_embedding")(
        target
    )
    for index in range(num_layers):
        y = TransformerDecoder(
            intermediate_dim, num_heads, attention=attention, cross_attention=cross_attention,
            name=f"decoder_{index}", **blocks,
        )(y, x)
    logits = _next_token_logits(y, target_vocabulary_size, layer_norm_epsilon)
    return keras.Model(
        {"source": source, "target": target}, logits, name=name or f"translator_{_attention_name(attention)}"
    )


def language_model(
    attention,
    vocabulary_size,
    sequence_length,
    embedding_dim=64,
    num_heads=4,
    intermediate_dim=128,
    num_layers=2,
    dropout=0.1,
    layer_norm_epsilon=1e-6,
    attention_kwargs=None,
    name=None,
):
    """A decoder-only (GPT-style) language model with pre-norm blocks.

    Position `t` of the output scores the token at `t + 1`; no position sees
    a later one. Padding (id 0) needs no mask for the same reason: it only
    comes after the real tokens. The loss ignores it.

    Args:
        attention: attention of every block, as in `TransformerDecoder`.
        vocabulary_size: int.
        sequence_length: int. Static sequence length.
        embedding_dim, num_heads, intermediate_dim, num_layers: sizes.
        dropout: float.
        layer_norm_epsilon: float.
        attention_kwargs: optional dict of further arguments of every
            attention layer, e.g. `{"alignment_initializer": "identity"}`.
        name: optional model name.

    Returns:
        A `keras.Model` from `(B, sequence_length)` int32 ids to next-token
        logits `(B, sequence_length, vocabulary_size)`.
    """
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = TokenAndPositionEmbedding(vocabulary_size, sequence_length, embedding_dim, name="embedding")(tokens)
    for index in range(num_layers):
        x = TransformerDecoder(
            intermediate_dim, num_heads, attention=attention, dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon, normalize_first=True, attention_kwargs=attention_kwargs,
            name=f"decoder_{index}",
        )(x)
    logits = _next_token_logits(x, vocabulary_size, layer_norm_epsilon)
    return keras.Model(tokens, logits, name=name or f"language_model_{_attention_name(attention)}")


def _next_token_logits(x, vocabulary_size, epsilon):
    x = LayerNormalization(epsilon=epsilon, name="final_norm")(x)
    return keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")(x)


def _classifier_output(x, num_classes):
    if num_classes < 2:
        raise ValueError(f"Argument `num_classes` must be at least 2. Received: num_classes={num_classes!r}")
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def _attention_name(attention):
    return attention if isinstance(attention, str) else attention.__name__.lower()

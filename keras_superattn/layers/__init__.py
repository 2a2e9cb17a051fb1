"""Attention layers of arXiv 2403.01643 and the blocks built from them."""

from keras_superattn.layers.base_attention import BaseAttention
from keras_superattn.layers.efficient_attention import EfficientAttention
from keras_superattn.layers.embeddings import PatchEmbedding
from keras_superattn.layers.embeddings import TokenAndPositionEmbedding
from keras_superattn.layers.layer_normalization import LayerNormalization
from keras_superattn.layers.masked_average_pooling import MaskedAveragePooling
from keras_superattn.layers.optimized_attention import OptimizedAttention
from keras_superattn.layers.registry import ATTENTION_LAYERS
from keras_superattn.layers.registry import VARIANTS
from keras_superattn.layers.standard_attention import StandardAttention
from keras_superattn.layers.super_attention import SuperAttention
from keras_superattn.layers.transformer_decoder import TransformerDecoder
from keras_superattn.layers.transformer_encoder import TransformerEncoder

__all__ = [
    "ATTENTION_LAYERS",
    "BaseAttention",
    "EfficientAttention",
    "LayerNormalization",
    "MaskedAveragePooling",
    "PatchEmbedding",
    "TokenAndPositionEmbedding",
    "OptimizedAttention",
    "StandardAttention",
    "SuperAttention",
    "TransformerDecoder",
    "TransformerEncoder",
    "VARIANTS",
]

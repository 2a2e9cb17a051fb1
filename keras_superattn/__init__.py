"""keras_superattn: cheaper attention for Keras 3, down to int8 on-device models."""

from keras_superattn import costs
from keras_superattn import generation  # registers `token_crossentropy`, which saved generative models name
from keras_superattn import layers
from keras_superattn import models
from keras_superattn import quantization

__version__ = "0.1.0"
__all__ = ["costs", "generation", "layers", "models", "quantization"]

"""The private Keras APIs the package relies on, in one place.

Keras keeps the mask of a tensor in a private attribute and has no public
API to read or write it; these are the helpers `keras.layers.MultiHeadAttention`
itself uses. setup.cfg pins `keras<3.16` so that a Keras release that moves
them cannot break an install; a new Keras version means checking this module.
"""

import keras
from keras.src.backend.common.masking import get_keras_mask
from keras.src.backend.common.masking import set_keras_mask

__all__ = ["clone_initializer", "get_keras_mask", "set_keras_mask"]


def clone_initializer(initializer):
    """A fresh instance of a Keras initializer, with a seed of its own.

    A Keras 3 random initializer draws its seed when it is created, so one
    instance given to two weights fills them with the same values. Every
    weight therefore gets its own clone; an explicit integer seed is kept, as
    in keras-hub.
    """
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())

"""Training on several devices: data parallelism, and a model-parallel layout
of the package's weights.

Keras shards a model's weights with `keras.distribution.ModelParallel` and a
`LayoutMap` (JAX backend). `layout_map` gives one for the package's models,
in the usual tensor-parallel way: the query / key / value projections and the
feed-forward network's first layer are split by output columns (whole heads
per device when `num_heads` is a multiple of the model axis), the attention
output and the feed-forward network's second layer by input rows, Super
Attention's `W_A` by rows (each device mixes the values of some positions),
the token embedding and the logits layer by the model width and the
vocabulary. Norms, biases of the row-split layers and position embeddings
are replicated.
"""

import keras

# Weight path (regular expression, matched whole) -> which dimension is split.
_MODEL_SPLIT = {
    r".*/(query|key|value|intermediate)/kernel": (None, "model"),
    r".*/(query|key|value|intermediate)/bias": ("model",),
    r".*/(attention_output|output)/kernel": ("model", None),
    r".*/alignment": ("model", None),
    r".*token_embedding/embeddings": (None, "model"),
    r"logits/kernel": (None, "model"),
    r"logits/bias": ("model",),
}


def layout_map(device_mesh, model_axis="model"):
    """A `keras.distribution.LayoutMap` that shards the package's weights
    over `model_axis` of `device_mesh`.

    Every split dimension must be a multiple of the mesh's size along
    `model_axis` (the model width, feed-forward width, vocabulary and
    Super's `L`). The map is for the package's attention variants: Keras'
    `MultiHeadAttention` (`attention="mha"`) has 3-D projection kernels
    under the same names, which it does not fit.

    Args:
        device_mesh: a `keras.distribution.DeviceMesh`.
        model_axis: str. The mesh axis that splits the weights.

    Returns:
        A `keras.distribution.LayoutMap` for
        `keras.distribution.ModelParallel(layout_map=..., batch_dim_name=...)`.

    Example:

    ```python
    devices = keras.distribution.list_devices()  # e.g. 8 GPUs
    mesh = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], devices)
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(layout_map=layout_map(mesh), batch_dim_name="batch")
    )
    model = models.language_model("super", 4000, 32)  # built under the distribution
    ```
    """
    if model_axis not in device_mesh.axis_names:
        raise ValueError(
            f"Argument `model_axis` must name an axis of the device mesh {list(device_mesh.axis_names)}. "
            f"Received: model_axis={model_axis!r}"
        )
    layouts = keras.distribution.LayoutMap(device_mesh)
    for path, axes in _MODEL_SPLIT.items():
        layouts[path] = tuple(model_axis if axis == "model" else axis for axis in axes)
    return layouts


def use_data_parallel():
    """Shards each batch over all local devices with Keras' `DataParallel`
    (JAX backend); returns the number of devices."""
    if keras.backend.backend() != "jax":
        raise ValueError(
            "Data-parallel training uses keras.distribution, which needs the JAX "
            f"backend. Received: KERAS_BACKEND={keras.backend.backend()}"
        )
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)

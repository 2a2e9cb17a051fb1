"""Training on several devices and processes: data parallelism, and a
model-parallel layout of the package's weights.

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


def initialize_processes(coordinator_address, num_processes, process_id):
    """Joins this process to a training job of `num_processes` processes
    (JAX backend), one per machine or several on one, before any model is
    built; then `use_data_parallel()` shards each global batch over every
    process's devices, and each process feeds its own slice of the batch.

    On CPUs the processes exchange gradients through Gloo, which JAX ships.

    Args:
        coordinator_address: str, `"host:port"` of process 0, which every
            process can reach (e.g. `"10.0.0.1:1234"`, or `"127.0.0.1:1234"`
            for processes on one machine).
        num_processes: int >= 1. Processes in the job.
        process_id: int in `[0, num_processes)`. This process's rank.

    Example (two machines; the same script on each, with its own rank):

    ```python
    distribution.initialize_processes("10.0.0.1:1234", num_processes=2, process_id=rank)
    distribution.use_data_parallel()
    model = models.text_classifier("super", 20000, 32)
    model.compile(...)
    model.fit(x[rank::2], y[rank::2], batch_size=32)  # each process: its half of every global batch of 64
    ```
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            "Training across processes uses keras.distribution, which needs the JAX backend. "
            f"Received: KERAS_BACKEND={keras.backend.backend()}"
        )
    host, _, port = str(coordinator_address).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            "Argument `coordinator_address` must be 'host:port', e.g. '127.0.0.1:1234'. "
            f"Received: coordinator_address={coordinator_address!r}"
        )
    if not (isinstance(num_processes, int) and num_processes >= 1):
        raise ValueError(f"Argument `num_processes` must be an int >= 1. Received: num_processes={num_processes!r}")
    if not (isinstance(process_id, int) and 0 <= process_id < num_processes):
        raise ValueError(
            f"Argument `process_id` must be an int in [0, {num_processes}). Received: process_id={process_id!r}"
        )
    import jax

    # Without a collectives library, JAX's CPU backend cannot reduce across processes.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(
        job_addresses=coordinator_address, num_processes=num_processes, process_id=process_id
    )

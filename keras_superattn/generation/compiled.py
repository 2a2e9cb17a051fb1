"""A function of a model's layers compiled the way each backend runs it fastest.

Generation calls the same fixed-shape step once per token; run eagerly, each
call pays for every layer's Python dispatch, which costs more than the cache
saves. Compiled, the step is one call:

- TensorFlow: a `tf.function` with XLA (`jit_compile=True`), as keras-hub
  compiles its generate step;
- JAX: `jax.jit` of a stateless function, the model's variable values passed
  in and mapped back with `keras.StatelessScope`;
- PyTorch: the eager function without autograd (`torch.no_grad`), which
  records nothing for a backward pass.

Every argument keeps its shape and dtype from call to call (the cache is a
fixed-shape tensor updated in place), so each backend traces once.
"""

import keras


def compile_function(function, variables):
    """`function(*tensors)` compiled for the active backend.

    Args:
        function: a function of tensors (nested structures allowed) that
            calls layers whose weights are among `variables`.
        variables: the `keras.Variable`s the function reads (for JAX, which
            passes their values in).

    Returns:
        A callable with `function`'s arguments and results.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True, reduce_retracing=True)
    if backend == "jax":
        import jax

        variables = list(variables)

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return function(*args)

        compiled = jax.jit(stateless)
        return lambda *args: compiled([variable.value for variable in variables], *args)
    if backend == "torch":
        import torch

        def without_gradients(*args):
            with torch.no_grad():
                return function(*args)

        return without_gradients
    return function

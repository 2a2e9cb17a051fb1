"""The attention core alone, fused against explicit, on the active backend.

`ops.dot_product_attention` against the explicit matmul-softmax-matmul that
`BaseAttention` uses on TensorFlow and JAX, on `(B, l, h, d_k)` =
(32, 128, 8, 32) float32 tensors, compiled as in benchmarks/layers.py
(tf.function, jax.jit, torch eager), forward and forward + backward (gradient
w.r.t. q, k and v), interleaved, median of 20 rounds; ratios to the fused call.

    for b in tensorflow jax torch; do KERAS_BACKEND=$b python benchmarks/attention_core.py; done
"""

import keras
import numpy as np
from keras import ops

from keras_superattn.training import timing

SHAPE = (32, 128, 8, 32)  # (B, l, h, d_k)


def fused(q, k, v):
    return ops.dot_product_attention(q, k, v)


def explicit(q, k, v):
    q = ops.transpose(q * SHAPE[-1] ** -0.5, (0, 2, 1, 3))  # (B, h, l, d_k)
    weights = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 3, 1))), axis=-1)  # (B, h, l, s)
    return ops.transpose(ops.matmul(weights, ops.transpose(v, (0, 2, 1, 3))), (0, 2, 1, 3))  # (B, l, h, d_k)


def compiled(function, q, k, v):
    """`(forward, forward_backward)` callables that finish their work."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        forward = jax.jit(function)
        gradient = jax.jit(jax.grad(lambda q, k, v: function(q, k, v).sum(), argnums=(0, 1, 2)))
        return lambda: forward(q, k, v).block_until_ready(), lambda: jax.block_until_ready(gradient(q, k, v))
    if backend == "tensorflow":
        import tensorflow as tf

        forward = tf.function(function)

        @tf.function
        def gradient(q, k, v):
            with tf.GradientTape() as tape:
                tape.watch([q, k, v])
                total = tf.reduce_sum(function(q, k, v))
            return tape.gradient(total, [q, k, v])

        return lambda: forward(q, k, v).numpy(), lambda: [g.numpy() for g in gradient(q, k, v)]
    import torch

    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]

    def forward():
        with torch.no_grad():
            return function(q, k, v).sum().item()

    def gradient():
        return [g.sum().item() for g in torch.autograd.grad(function(*leaves).sum(), leaves)]

    return forward, gradient


def main():
    rng = np.random.default_rng(0)
    q, k, v = (ops.convert_to_tensor(rng.normal(size=SHAPE).astype("float32")) for _ in range(3))
    np.testing.assert_allclose(ops.convert_to_numpy(explicit(q, k, v)), ops.convert_to_numpy(fused(q, k, v)), atol=1e-4)
    steps = {"fused": compiled(fused, q, k, v), "explicit": compiled(explicit, q, k, v)}
    for mode, index in (("forward", 0), ("forward + backward", 1)):
        calls = {name: step[index] for name, step in steps.items()}
        medians = timing.interleaved_median_seconds(calls, rounds=20, warmup=3)
        print(
            f"{keras.backend.backend()}, {mode}: fused {1e3 * medians['fused']:.2f} ms, "
            f"explicit {1e3 * medians['explicit']:.2f} ms ({medians['explicit'] / medians['fused']:.2f} of fused)"
        )


if __name__ == "__main__":
    main()

"""Where an attention layer's forward time goes, piece by piece, on the active backend.

Each piece of `BaseAttention`'s forward pass is timed alone, on the tensors it
gets in a layer of shape (B, l, d, h) = (32, 128, 256, 8), beside the whole
Standard layer in the same interleaved loop (compiled as in
benchmarks/layers.py: tf.function, jax.jit, torch eager; median of 30
rounds). The table gives each piece's median, its share of Standard's
forward time, and how often each variant runs it: Standard projects four
times, Optimized three, Efficient and Super twice; every variant runs the
attention core once (the layer's own `_attend`, with this backend's form,
from the heads of q, k and v to the merged heads: query scaling, transposes,
scores, softmax, weighted sum), Efficient with keys that are its values;
Super adds the `W_A` mixing. The core's parts follow for the explicit form.
A layer takes less than the sum of its pieces where a compiler fuses or
overlaps them.

    for b in tensorflow jax torch; do KERAS_BACKEND=$b python benchmarks/attention_profile.py; done
"""

import argparse
import statistics

import keras
import numpy as np
from keras import ops

from keras_superattn import layers
from keras_superattn.layers.base_attention import conversion_forms
from keras_superattn.training import timing

B, L, D, H = 32, 128, 256, 8
K = D // H


def compiled(function, *args):
    """A call of `function(*args)` compiled as benchmarks/layers.py does, that finishes its work."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jitted = jax.jit(function)
        return lambda: jax.block_until_ready(jitted(*args))
    if backend == "tensorflow":
        import tensorflow as tf

        traced = tf.function(function)
        return lambda: keras.tree.map_structure(lambda t: t.numpy(), traced(*args))
    import torch

    def call():
        with torch.no_grad():
            return keras.tree.map_structure(lambda t: t.sum().item(), function(*args))

    return call


def pieces():
    """`{name: (call, runs per Standard / Optimized / Efficient / Super layer or None)}`."""
    rng = np.random.default_rng(0)

    def tensor(*shape):
        return ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))

    x, split, heads, scores = tensor(B, L, D), tensor(B, L, H, K), tensor(B, H, L, K), tensor(B, H, L, L)
    kernel, bias = tensor(D, D), tensor(D)
    standard, mixing = layers.StandardAttention(num_heads=H), layers.SuperAttention(num_heads=H)
    standard.build((B, L, D))
    mixing.build((B, L, D))

    def core(q, k, v):
        return standard._attend(q, k, v, None, training=False, return_weights=False)[0]

    def converted_mix(x):
        with conversion_forms():  # as `deploy` traces it
            return mixing._mix(x, None, False)

    def normalised_after_sum(scores, values):
        unnormalised = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
        return ops.matmul(unnormalised, values) / ops.sum(unnormalised, axis=-1, keepdims=True)

    return {
        "Standard layer": (compiled(lambda x: standard(x), x), None),
        "projection (B, l, d) x (d, d) + bias": (compiled(lambda x: ops.matmul(x, kernel) + bias, x), (4, 3, 2, 2)),
        "attention core, keys are not values": (compiled(core, split, split * 1.0, split * 2.0), (1, 1, 0, 1)),
        "attention core, keys are values": (compiled(lambda q, x: core(q, x, x), split, split * 1.0), (0, 0, 1, 0)),
        "W_A X, the layer's Keras form": (compiled(lambda x: mixing._mix(x, None, False), x), (0, 0, 0, 1)),
        "W_A X as X^T W_A^T (TFLite form)": (compiled(converted_mix, x), None),
        "core part: query scaling": (compiled(lambda x: x * K**-0.5, x), None),
        "core part: one transpose (B, l, h, d_k) <-> (B, h, l, d_k)": (
            compiled(lambda x: ops.transpose(x, (0, 2, 1, 3)), split), None
        ),
        "core part: scores q k^T": (compiled(lambda q: ops.matmul(q, ops.transpose(q, (0, 1, 3, 2))), heads), None),
        "core part: softmax": (compiled(lambda s: ops.softmax(s, axis=-1), scores), None),
        "core part: weighted sum": (compiled(lambda s, v: ops.matmul(s, v), scores, heads), None),
        "core part: softmax + weighted sum, normalised after": (compiled(normalised_after_sum, scores, heads), None),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    table = pieces()
    samples = timing.interleaved_samples({name: call for name, (call, _) in table.items()}, args.rounds, warmup=3)
    medians = {name: statistics.median(s) for name, s in samples.items()}
    whole = medians["Standard layer"]
    print(f"backend: {keras.backend.backend()}, (B, l, d, h) = {(B, L, D, H)}, median of {args.rounds} rounds")
    print("| piece | ms | share of Standard's forward | runs in Standard / Optimized / Efficient / Super |")
    print("|---|---|---|---|")
    for name, (_, runs) in table.items():
        counts = " / ".join(map(str, runs)) if runs else ""
        print(f"| {name} | {1e3 * medians[name]:.2f} | {medians[name] / whole:.2f} | {counts} |")


if __name__ == "__main__":
    main()

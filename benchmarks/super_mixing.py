"""Forms of Super Attention's `W_A X` mixing, timed inside the layer on the active backend.

Each form is a `SuperAttention` whose values are computed another way; all give
the layer's output (checked first, to 1e-4). They are timed beside Standard,
Efficient and the layer as it is, interleaved round by round and compiled as in
benchmarks/layers.py (forward: tf.function, jax.jit, torch eager), at
(B, l, d, h) = (32, 128, 256, 8); the table gives each median's ratio to
Standard's. BENCHMARKS.md ("Where the time goes") has two runs per backend
and why none of the forms replaced the layer's.

    for b in tensorflow jax torch; do KERAS_BACKEND=$b python benchmarks/super_mixing.py; done
"""

import argparse
import statistics

import keras
import numpy as np
from keras import ops

from keras_superattn import layers
from keras_superattn.layers import base_attention
from keras_superattn.training import timing

# benchmarks/layers.py, next to this script: the same compiled calls.
from layers import compiled_steps  # noqa: E402  isort: skip

B, L, D, H = 32, 128, 256, 8


def folded(kernel, x):
    # (s, s) x (s, B d): one GEMM instead of B broadcast ones.
    flat = ops.reshape(ops.transpose(x, (1, 0, 2)), (L, -1))  # (s, B d)
    return ops.transpose(ops.reshape(ops.matmul(kernel, flat), (L, -1, D)), (1, 0, 2))  # (B, s, d)


MIXING_FORMS = {
    "einsum": lambda kernel, x: ops.einsum("ts,bsd->btd", kernel, x),
    "folded": folded,
}


class MixedAs(layers.SuperAttention):
    """Super Attention with its `(B, s, d)` values mixed by `MIXING_FORMS[form]`;
    unmasked: only for timing."""

    form = None

    def _mix(self, value, source_mask, use_causal_mask):
        return MIXING_FORMS[self.form](self._kernel(L, use_causal_mask, value.dtype), value)


class Converted(layers.SuperAttention):
    """Super Attention mixing as `X^T W_A^T`, the form a TFLite file gets."""

    def _mix(self, value, source_mask, use_causal_mask):
        with base_attention.conversion_forms():
            return super()._mix(value, source_mask, use_causal_mask)


class MixedOnHeads(layers.SuperAttention):
    """Super Attention whose values are mixed after the head split, on the
    keys' `(B, h, s, d_k)` heads (`transposed=False`: saves the values'
    transpose), or made transposed, `X^T W_A^T` as `(B, h, d_k, s)`
    (`transposed=True`: TensorFlow folds both transposes into the batch
    matmuls). Unmasked, without dropout: only for timing."""

    transposed = False

    def _form_values(self, value, source_mask, use_causal_mask):
        return value  # mixed in `_attend`

    def _attend(self, q, k, v, mask, training, return_weights):
        kernel = self._kernel(L, False, k.dtype)  # (s, s)
        k_heads = ops.transpose(k, (0, 2, 1, 3))  # (B, h, s, d_k)
        if self.transposed:
            x = ops.reshape(k, (-1, L, D))  # (B, s, d)
            mixed = ops.matmul(ops.transpose(x, (0, 2, 1)), ops.transpose(kernel)[None])  # (B, d, s)
            v_heads = ops.transpose(ops.reshape(mixed, (-1, H, D // H, L)), (0, 1, 3, 2))  # (B, h, s, d_k)
        else:
            v_heads = ops.matmul(kernel, k_heads)  # (B, h, s, d_k)
        if base_attention._FUSED_CORE:
            return ops.dot_product_attention(q, k, ops.transpose(v_heads, (0, 2, 1, 3))), None
        q = ops.transpose(q * (self.head_dim**-0.5), (0, 2, 1, 3))  # (B, h, l, d_k)
        scores = ops.matmul(q, ops.transpose(k_heads, (0, 1, 3, 2)))  # (B, h, l, s)
        if base_attention._NORMALISE_AFTER_SUM:  # the layer's JAX core
            unnormalised = ops.exp(scores - ops.stop_gradient(ops.max(scores, axis=-1, keepdims=True)))
            heads = ops.matmul(unnormalised, v_heads) / ops.sum(unnormalised, axis=-1, keepdims=True)
        else:
            heads = ops.matmul(ops.softmax(scores, axis=-1), v_heads)  # (B, h, l, d_k)
        return ops.transpose(heads, (0, 2, 1, 3)), None  # (B, l, h, d_k)


def candidates():
    made = {
        "standard": layers.StandardAttention(num_heads=H),
        "efficient": layers.EfficientAttention(num_heads=H),
        "super (the layer)": layers.SuperAttention(num_heads=H),
    }
    for form in MIXING_FORMS:
        made[f"super, {form}"] = type("Mixed", (MixedAs,), {"form": form})(num_heads=H)
    made["super, X^T W_A^T"] = Converted(num_heads=H)
    made["super, on the keys' heads"] = MixedOnHeads(num_heads=H)
    made["super, transposed values"] = type("Transposed", (MixedOnHeads,), {"transposed": True})(num_heads=H)
    for layer in made.values():
        layer.build((None, L, D), (None, L, D))
    reference = made["super (the layer)"]
    reference.alignment.assign(np.random.default_rng(1).normal(size=(L, L)).astype("float32") / L**0.5)
    for name, layer in made.items():
        if name.startswith("super, "):
            layer.set_weights(reference.get_weights())
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed calls per layer")
    args = parser.parse_args()
    x = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(B, L, D)).astype("float32"))
    made = candidates()
    want = ops.convert_to_numpy(made["super (the layer)"](x, x))
    for name, layer in made.items():
        if name.startswith("super, "):
            np.testing.assert_allclose(ops.convert_to_numpy(layer(x, x)), want, rtol=1e-4, atol=1e-4, err_msg=name)
    samples = timing.interleaved_samples(
        {name: compiled_steps(layer, x)[0] for name, layer in made.items()}, args.rounds, warmup=3
    )
    standard = statistics.median(samples["standard"])
    print(f"backend: {keras.backend.backend()}, (B, l, d, h) = {(B, L, D, H)}, forward, {args.rounds} rounds")
    print("| layer | forward ms | / Standard |\n|---|---|---|")
    for name, times in samples.items():
        print(f"| {name} | {1e3 * statistics.median(times):.2f} | {statistics.median(times) / standard:.3f} |")


if __name__ == "__main__":
    main()

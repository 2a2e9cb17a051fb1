"""How far a leaner attention core could move the variants' speed on TensorFlow.

On TensorFlow every variant runs the same explicit core (`BaseAttention._attend`):
query scaling, three transposes of `(B, l, d)` into `(B, h, l, d_k)` (two for
Efficient Attention, whose keys are its values), scores, softmax, weighted sum and
one transpose back. Two of those pieces have been proposed for removal: folding
the scaling into the query kernel, and keeping the heads in a layout that needs
no transpose. Here each variant is timed with its core rebuilt four ways: as it
is (checked first to give the layer's output), without the query scaling,
with every head transpose replaced by a free reshape to the same shape, and
without both. The last three compute wrong outputs on purpose: they bound what
any faster form of the removed pieces could buy. (The transpose of the keys
inside `q k^T` stays: TensorFlow folds it into the batch matmul.)

Each form's variants are timed beside the Standard layer with the same core,
interleaved round by round and compiled as in benchmarks/layers.py
(tf.function), at (B, l, d, h) = (32, 128, 256, 8); the table gives the
medians and each one's ratio to its form's Standard. BENCHMARKS.md ("Where
the time goes") has the runs and what they decided.

    KERAS_BACKEND=tensorflow python benchmarks/tensorflow_core_bounds.py
"""

import argparse
import statistics

import keras
import numpy as np
from keras import ops

from keras_superattn import layers
from keras_superattn.training import timing

# benchmarks/layers.py, next to this script: the same compiled calls.
from layers import compiled_steps  # noqa: E402  isort: skip

B, L, D, H = 32, 128, 256, 8
FORMS = {
    "as is": (True, True),
    "without query scaling": (False, True),
    "without head transposes": (True, False),
    "without both": (False, False),
}


def with_core(variant, scale, transpose):
    """`variant` with an unmasked, dropout-free copy of TensorFlow's core,
    whose query scaling (`scale`) and head transposes (`transpose`) can be left out."""

    def permute(x, perm):
        if transpose:
            return ops.transpose(x, perm)
        return ops.reshape(x, [x.shape[axis] for axis in perm])  # same shape, no data moved

    class Core(variant):
        def _attend(self, q, k, v, mask, training, return_weights):
            if scale:
                q = q * (self.head_dim**-0.5)
            q = permute(q, (0, 2, 1, 3))  # (B, h, l, d_k)
            k_heads = permute(k, (0, 2, 1, 3))  # (B, h, s, d_k)
            v_heads = k_heads if v is k else permute(v, (0, 2, 1, 3))  # (B, h, s, d_k)
            scores = ops.matmul(q, ops.transpose(k_heads, (0, 1, 3, 2)))  # (B, h, l, s)
            heads = ops.matmul(ops.softmax(scores, axis=-1), v_heads)  # (B, h, l, d_k)
            return permute(heads, (0, 2, 1, 3)), None  # (B, l, h, d_k)

    return Core(num_heads=H)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed calls per layer")
    args = parser.parse_args()
    if keras.backend.backend() != "tensorflow":
        raise SystemExit(
            "This benchmark rebuilds TensorFlow's attention core; run it with "
            f"KERAS_BACKEND=tensorflow. Received: backend {keras.backend.backend()!r}"
        )
    x = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(B, L, D)).astype("float32"))
    made = {}
    for name, variant in layers.VARIANTS.items():
        layer = variant(num_heads=H)
        layer.build((None, L, D), (None, L, D))
        for form, (scale, transpose) in FORMS.items():
            made[name, form] = with_core(variant, scale, transpose)
            made[name, form].build((None, L, D), (None, L, D))
            made[name, form].set_weights(layer.get_weights())
        np.testing.assert_allclose(
            ops.convert_to_numpy(made[name, "as is"](x, x)),
            ops.convert_to_numpy(layer(x, x)),
            atol=1e-4,
            err_msg=f"The rebuilt core of {name} does not give the layer's output",
        )
    calls = {key: compiled_steps(layer, x)[0] for key, layer in made.items()}
    samples = timing.interleaved_samples(calls, args.rounds, warmup=3)
    medians = {key: statistics.median(s) for key, s in samples.items()}
    print(f"backend: tensorflow, (B, l, d, h) = {(B, L, D, H)}, forward, median of {args.rounds} rounds")
    print("| core | " + " | ".join(f"{name} ms (/ Standard)" for name in layers.VARIANTS) + " |")
    print("|---|" + "---|" * len(layers.VARIANTS))
    for form in FORMS:
        standard = medians["standard", form]
        cells = (f"{1e3 * medians[name, form]:.2f} ({medians[name, form] / standard:.2f})" for name in layers.VARIANTS)
        print(f"| {form} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

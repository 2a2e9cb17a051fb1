"""Which initial W_A suits causal Super Attention: an ablation on the language model.

Trains the language model of `language_model.py` (same data, sizes, budget
and seeds) with Super Attention's alignment kernel started four ways, beside
Standard and Efficient Attention for reference:

- `super-glorot`: `glorot_uniform`, the paper-agnostic default of the layer
  (the causal default before this ablation);
- `super-identity`: the identity, so Super starts out as Efficient Attention
  (a learned residual `I + tril(W_A)` with `W_A = 0` is the same model and,
  under Adam without weight decay, the same training, so it is not a
  separate arm);
- `super-noisy-identity`: the identity plus Gaussian noise (std 0.1), a
  start that already mixes a little;
- `super-causal-mean`: row `i` averages tokens `0..i` (each value starts as
  the mean of the prefix).

Test perplexity on the tutorial's 5,000 test reviews; no int8 files. A rerun
with the same `--out` resumes.

    python tutorials/alignment_ablation.py --data-dir ../shared/data
    python tutorials/alignment_ablation.py --quick
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import keras  # noqa: E402
import language_model  # noqa: E402
from keras import ops  # noqa: E402

from keras_superattn import training  # noqa: E402
from keras_superattn.training import reporting  # noqa: E402


@keras.saving.register_keras_serializable(package="alignment_ablation")
class NoisyIdentity(keras.initializers.Initializer):
    """The identity plus Gaussian noise of standard deviation `stddev`."""

    def __init__(self, stddev=0.1, seed=None):
        self.stddev = stddev
        self.seed = seed

    def __call__(self, shape, dtype=None):
        noise = keras.random.normal(shape, stddev=self.stddev, dtype=dtype, seed=self.seed)
        return ops.eye(shape[0], dtype=dtype) + noise

    def get_config(self):
        return {"stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="alignment_ablation")
class CausalMean(keras.initializers.Initializer):
    """Row `i` is `1 / (i + 1)` on columns `0..i`: the mean of the prefix."""

    def __call__(self, shape, dtype=None):
        rows = ops.arange(1, shape[0] + 1, dtype="float32")[:, None]  # (L, 1)
        return ops.cast(ops.tril(ops.ones(shape)) / rows, dtype)


ARMS = {
    "standard": ("standard", None),
    "efficient": ("efficient", None),
    "super-glorot": ("super", {"alignment_initializer": "glorot_uniform"}),
    "super-identity": ("super", {"alignment_initializer": "identity"}),
    "super-noisy-identity": ("super", {"alignment_initializer": NoisyIdentity()}),
    "super-causal-mean": ("super", {"alignment_initializer": CausalMean()}),
}


def main():
    args = _common.parser(__doc__.split("\n")[0], seeds=2, epochs=3, batch_size=128).parse_args()
    arms = _common.settle(args, tuple(ARMS), "alignment_ablation")
    if args.attention_kwargs:
        raise SystemExit("--attention-kwargs: the ablation sets the attention arguments per arm")
    config, data, evaluate, _ = language_model.prepare(args)

    def build(arm):
        return language_model.build(*ARMS[arm], quick=args.quick)

    results = training.compare_generators(build, data, arms, range(args.seeds), args.out, config, evaluate)
    reporting.write_generative_report(results, args.out, "perplexity", higher_is_better=False)


if __name__ == "__main__":
    main()

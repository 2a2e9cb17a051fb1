"""Milliseconds per generated token: compiled and eager cached generation, the uncached path, the int8 file.

The language model of the generation issue, the tutorial's shape (4,000
pieces, 64 positions, d = 128, 4 heads, FFN 256, 2 blocks), untrained (the
time per token does not depend on the weights): an 8-piece prompt
continued greedily to 64, at batch 1 and 8, on the active backend:

- `Generator` compiled (the default), and eager (`compiled=False`);
- the uncached path: `generation.decode` over `batched_predict`, the whole
  sequence scored for every token;
- the int8 cached file of `deploy.convert_generator` through
  `deploy.TFLiteGenerator` (LiteRT, XNNPACK, 1 thread; batch 8 runs its
  rows one after another).

Each path's tokens are checked against the uncached path's before any
timing (the int8 file's are not: int8 may part at a near-tie). The paths
are timed interleaved, `--rounds` whole generations each, median.

    for b in tensorflow jax torch; do KERAS_BACKEND=$b python benchmarks/generation_speed.py; done
"""

import os

import harness
import keras
import numpy as np

from keras_superattn import deploy
from keras_superattn import generation
from keras_superattn import models
from keras_superattn.training import timing

PROMPT = 8


def language_model(variant, smoke):
    keras.utils.set_random_seed(0)
    if smoke:
        return models.language_model(variant, 50, 12, embedding_dim=8, intermediate_dim=8, num_layers=1)
    return models.language_model(variant, 4000, 64, embedding_dim=128, num_heads=4, intermediate_dim=256)


def main():
    parser = harness.parser(__doc__, rounds=5)
    parser.add_argument("--variant", default="standard")
    args = harness.parse(parser)
    model = language_model(args.variant, args.smoke)
    length, vocabulary = model.inputs[0].shape[1], model.outputs[0].shape[-1]
    rng = np.random.default_rng(0)
    results = []
    with harness.scratch() as folder:
        path = os.path.join(folder, "cached_int8.tflite")
        calibration = rng.integers(1, vocabulary, (8, length)).astype("int32")
        deploy.convert_generator(model, path, representative_data=calibration, verbose=False)
        file_generator = deploy.TFLiteGenerator(path)
        for batch in (1, 8):
            prompts = np.zeros((batch, length), "int32")
            prompts[:, :PROMPT] = rng.integers(1, vocabulary, (batch, PROMPT))
            predict = generation.batched_predict(model)
            paths = {
                "compiled": generation.Generator(model).generate,
                "eager": generation.Generator(model, compiled=False).generate,
                "uncached": lambda p, predict=predict: generation.decode(predict, p, PROMPT),
                "int8 file": lambda p: np.concatenate([file_generator.generate(row[None])[0] for row in p]),
            }
            want = paths["uncached"](prompts)
            for name in ("compiled", "eager"):
                got = paths[name](prompts)
                if not (got == want).all():
                    raise SystemExit(f"{name} generation differs from the uncached path at batch {batch}")
            seconds = timing.interleaved_median_seconds(
                {name: (lambda f=f, p=prompts: f(p)) for name, f in paths.items()}, args.rounds, warmup=1
            )
            tokens = length - PROMPT
            for name, value in seconds.items():
                results.append({"batch": batch, "path": name, "ms_per_token": 1e3 * value / tokens,
                                "ratio_to_uncached": value / seconds["uncached"]})
    rows = [[r["batch"], r["path"], f"{r['ms_per_token']:.2f}", f"{r['ratio_to_uncached']:.2f}"] for r in results]
    print(f"{keras.backend.backend()}, {args.variant}, {length} positions, prompt {PROMPT}")
    print(harness.table(["batch", "path", "ms / token", "x uncached"], rows))
    harness.write(args, results, variant=args.variant)


if __name__ == "__main__":
    main()

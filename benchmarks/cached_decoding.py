"""Per-token latency of a cached int8 decoding step against a full-sequence int8 file.

A full-sequence file (`deploy.convert`) scores the whole sequence for every
generated token; the cached file (`deploy.convert_generator`) runs one
position per token (`decode`) against the cache its `prefill` filled. This
script times both, per token, for the tutorial's language model (4,000 words,
d = 64, 4 heads, 2 blocks) at lengths 32 (the tutorial's), 64 and 128, and
the tutorial's translator (4,000 subwords each side, d = 128, lengths 24),
every variant, untrained (latency does not depend on the weights; the int8
ranges come from random ids). The decoding step is timed at a quarter, half
and the end of the sequence, through LiteRT's signature runner (input
copies included) as an app would call it, XNNPACK on, 1 thread, interleaved
rounds, median. Also reported: the bytes of cache per token.

    KERAS_BACKEND=tensorflow python benchmarks/cached_decoding.py
"""

import os

import harness
import keras
import numpy as np

from keras_superattn import deploy
from keras_superattn import layers
from keras_superattn import models
from keras_superattn.training import timing

VARIANTS = tuple(layers.VARIANTS)
VOCABULARY = 4000


def language_model(length, vocabulary, **sizes):
    return lambda variant: models.language_model(variant, vocabulary, length, **sizes)


def translator(length, vocabulary, **sizes):
    return lambda variant: models.translator(variant, vocabulary, vocabulary, length, length, **sizes)


def tasks(smoke):
    """`{name: (builder, length, vocabulary)}`."""
    if smoke:
        small = dict(embedding_dim=8, intermediate_dim=8, num_layers=1)
        return {
            "language model (l = 8)": (language_model(8, 50, **small), 8, 50),
            "translator (l = 6)": (translator(6, 50, **small), 6, 50),
        }
    return {
        **{
            f"language model (l = {length})": (language_model(length, VOCABULARY), length, VOCABULARY)
            for length in (32, 64, 128)
        },
        "translator (l = 24)": (translator(24, VOCABULARY, embedding_dim=128, intermediate_dim=256), 24, VOCABULARY),
    }


def inputs_of(model, rng, count, vocabulary):
    return {x.name: rng.integers(1, vocabulary, size=(count, *x.shape[1:])).astype("int32") for x in model.inputs}


def step_calls(full_path, cached_path, inputs, length):
    """`{label: call}`: one full-sequence invocation, and one decoding step at
    three positions, each with its inputs in place."""
    full = deploy.TFLiteModel(full_path, num_threads=1).interpreter.get_signature_runner()
    one = {name: x[:1] for name, x in inputs.items()}
    generator = deploy.TFLiteGenerator(cached_path)
    tokens = one.get("target", one.get("tokens"))
    sources = {"source": one["source"]} if "source" in one else {}
    state = generator.prefill(tokens=tokens, **sources)
    state.pop("logits")
    state.update(sources)
    calls = {"full": lambda: full(**one)}
    for position in (length // 4, length // 2, length - 1):
        token = tokens[:, position : position + 1]
        calls[position] = lambda t=token, p=position: generator.decode(token=t, index=np.array([p], np.int32), **state)
    return calls


def main():
    args = harness.parse(harness.parser(__doc__, rounds=200))
    rng = np.random.default_rng(0)
    rows = []
    with harness.scratch() as folder:
        for task, (build, length, vocabulary) in tasks(args.smoke).items():
            for variant in VARIANTS:
                keras.utils.set_random_seed(0)
                model = build(variant)
                data = inputs_of(model, rng, 16, vocabulary)
                base = os.path.join(folder, f"{task}_{variant}".replace(" ", "_").replace("(", "").replace(")", ""))
                deploy.convert(model, base + "_full.tflite", representative_data=data, verbose=False)
                conversion = deploy.convert_generator(
                    model, base + "_cached.tflite", representative_data=data, num_calibration_samples=4, verbose=False
                )
                calls = step_calls(base + "_full.tflite", base + "_cached.tflite", data, length)
                seconds = timing.interleaved_median_seconds(calls, args.rounds, warmup=2 if args.smoke else 10)
                steps = [seconds[key] for key in calls if key != "full"]
                rows.append((task, variant, seconds["full"], steps, conversion.cache_bytes_per_token))
                print(rows[-1], flush=True)
    header = ["model", "variant", "full-sequence step ms", "cached step ms at l/4, l/2, l-1", "speed-up (mean)",
              "cache bytes / token (int8)"]
    print("\n" + harness.table(header, [
        [task, variant, f"{1e3 * full:.3f}", " / ".join(f"{1e3 * s:.3f}" for s in steps),
         f"{full / float(np.mean(steps)):.1f}x", cache_bytes]
        for task, variant, full, steps, cache_bytes in rows
    ]))
    harness.write(args, [
        {"model": task, "variant": variant, "full_ms": 1e3 * full, "cached_ms": [1e3 * s for s in steps],
         "cache_bytes_per_token": cache_bytes}
        for task, variant, full, steps, cache_bytes in rows
    ])


if __name__ == "__main__":
    main()

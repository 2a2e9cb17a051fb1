"""Latency of every attention variant against keras.layers.MultiHeadAttention.

Runs on the active backend (KERAS_BACKEND), with each backend's usual fast
path: `tf.function` on TensorFlow, `jax.jit` on JAX, eager on PyTorch. All
layers of one setting are timed in the same run, interleaved round by round so
that drifting machine load hits them alike; the table gives the median time of
each as a ratio to MultiHeadAttention's (`num_heads=h, key_dim=d // h`).

    KERAS_BACKEND=jax python benchmarks/layers.py --out runs/bench_jax.json

Two runs of the same code can differ by a few hundredths even with many
rounds, so a ratio near a target is best read over several runs:

    python benchmarks/layers.py --summarize runs/bench_jax*.json
"""

import collections
import json
import statistics

import harness
import keras
import numpy as np

from keras_superattn import costs
from keras_superattn import layers
from keras_superattn.training import timing

SETTINGS = ((32, 128, 256, 8), (32, 32, 32, 4), (8, 512, 512, 8))
SMOKE_SETTINGS = ((2, 8, 16, 2),)
VARIANTS = layers.VARIANTS
GRADIENTS = ("weights", "weights_and_input")


def make_layers(length, width, heads):
    made = {name: cls(num_heads=heads) for name, cls in VARIANTS.items()}
    made["mha"] = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads)
    for layer in made.values():
        layer.build((None, length, width), (None, length, width))
    return made


def compiled_steps(layer, x, gradient="weights"):
    """Returns `(forward, forward_backward)`: callables that finish their work.

    `forward_backward` computes the gradient of the output's sum w.r.t. the
    layer's weights, and with `gradient="weights_and_input"` w.r.t. its input
    too, as every layer inside a trained model does. Weights alone flatter
    the variants where a backend skips the work for a constant input (the
    keys and values of Efficient and Super Attention on TensorFlow and JAX)
    and penalise them where a fused kernel does it anyway (PyTorch's SDPA).
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"`gradient` must be one of {GRADIENTS}. Received: gradient={gradient!r}")
    with_input = gradient == "weights_and_input"
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        frozen = [v.value for v in layer.non_trainable_variables]

        def loss(trainable, x):
            out, _ = layer.stateless_call(trainable, frozen, x, x)
            return out.sum()

        forward = jax.jit(lambda t, x: layer.stateless_call(t, frozen, x, x)[0])
        backward = jax.jit(jax.grad(loss, argnums=(0, 1) if with_input else 0))
        return (
            lambda: forward(trainable, x).block_until_ready(),
            lambda: jax.block_until_ready(backward(trainable, x)),
        )
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def forward(x):
            return layer(x, x)

        @tf.function
        def backward(x):
            with tf.GradientTape() as tape:
                if with_input:
                    tape.watch(x)
                loss = tf.reduce_sum(layer(x, x))
            return tape.gradient(loss, [*layer.trainable_variables, x] if with_input else layer.trainable_variables)

        return lambda: forward(x).numpy(), lambda: [g.numpy() for g in backward(x)]
    if backend == "torch":
        import torch

        def forward():
            with torch.no_grad():
                return layer(x, x).sum().item()

        sources = [v.value for v in layer.trainable_variables]
        source = x.detach().requires_grad_(with_input)
        if with_input:
            sources.append(source)

        def backward():
            loss = layer(source, source).sum()
            return [g.sum().item() for g in torch.autograd.grad(loss, sources)]

        return forward, backward
    raise ValueError(f"Unsupported backend: {backend!r}")


def time_setting(batch, length, width, heads, rounds, warmup, gradient):
    x = keras.ops.convert_to_tensor(
        np.random.default_rng(0).normal(size=(batch, length, width)).astype("float32")
    )
    steps = {name: compiled_steps(layer, x, gradient) for name, layer in make_layers(length, width, heads).items()}
    result = {}
    for mode, index in (("forward", 0), ("forward_backward", 1)):
        calls = {name: step[index] for name, step in steps.items()}
        samples = timing.interleaved_samples(calls, rounds, warmup)
        medians = {name: statistics.median(s) for name, s in samples.items()}
        result[mode] = {
            name: {
                "median_ms": 1e3 * medians[name],
                "spread_ms": 1e3 * (max(samples[name]) - min(samples[name])),
                "ratio_to_mha": medians[name] / medians["mha"],
                "ratio_to_standard": medians[name] / medians["standard"],
            }
            for name in steps
        }
    result["flop_ratio_to_standard"] = {
        name: costs.attention_cost(name, length, width, heads).forward_flops
        / costs.attention_cost("standard", length, width, heads).forward_flops
        for name in VARIANTS
    }
    return result


def print_table(setting, result):
    batch, length, width, heads = setting
    print(f"\n(B, l, d, h) = ({batch}, {length}, {width}, {heads})")
    print(
        "| layer | forward ms | forward / MHA | forward / Standard | fwd+bwd ms | fwd+bwd / MHA "
        "| fwd+bwd / Standard | FLOPs / Standard |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in (*VARIANTS, "mha"):
        f, b = result["forward"][name], result["forward_backward"][name]
        flops = result["flop_ratio_to_standard"].get(name, 1.0)
        print(
            f"| {name} | {f['median_ms']:.2f} | {f['ratio_to_mha']:.2f} | {f['ratio_to_standard']:.2f} "
            f"| {b['median_ms']:.2f} | {b['ratio_to_mha']:.2f} | {b['ratio_to_standard']:.2f} | {flops:.2f} |"
        )


def summarize(paths):
    """Prints, per backend and setting, each layer's ratio to Standard over the
    run files at `paths` (written by `--out`): median and range. Files
    written before `--gradient` existed differentiated w.r.t. the weights."""
    runs = collections.defaultdict(list)  # (backend, setting, gradient) -> [result of one run, ...]
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        gradient = report.get("gradient", "weights")
        for result in report["results"]:
            runs[report["backend"], tuple(result["setting"][key] for key in "Bldh"), gradient].append(result)

    def cell(results, mode, name):
        ratios = sorted(result[mode][name]["ratio_to_standard"] for result in results)
        return f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"

    for (backend, setting, gradient), results in sorted(runs.items()):
        print(
            f"\n{backend}, (B, l, d, h) = {setting}, {len(results)} runs, fwd+bwd w.r.t. {gradient}: "
            "ratio to Standard, median (range)"
        )
        print("| layer | forward | fwd+bwd | FLOPs |")
        print("|---|---|---|---|")
        for name in (*VARIANTS, "mha"):
            if name == "standard":
                continue
            flops = results[0]["flop_ratio_to_standard"].get(name)
            flops = "" if flops is None else f"{flops:.2f}"
            forward, both = cell(results, "forward", name), cell(results, "forward_backward", name)
            print(f"| {name} | {forward} | {both} | {flops} |")


def main():
    parser = harness.parser(__doc__, rounds=15)
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument(
        "--settings", default=None,
        help=f"B,l,d,h settings separated by ';' (default: {';'.join(','.join(map(str, s)) for s in SETTINGS)})",
    )
    parser.add_argument(
        "--gradient", choices=GRADIENTS, default="weights",
        help="what fwd+bwd differentiates the output's sum with respect to",
    )
    parser.add_argument(
        "--summarize", nargs="+", metavar="FILE", default=None,
        help="time nothing: summarise the ratios to Standard over these --out files",
    )
    args = harness.parse(parser)
    if args.summarize:
        summarize(args.summarize)
        return
    settings = SMOKE_SETTINGS if args.smoke else SETTINGS
    if args.settings:
        settings = tuple(tuple(int(v) for v in s.split(",")) for s in args.settings.split(";"))
    warmup = 1 if args.smoke else args.warmup
    print(f"backend: {keras.backend.backend()}  keras {keras.__version__}")
    results = []
    for setting in settings:
        result = time_setting(*setting, rounds=args.rounds, warmup=warmup, gradient=args.gradient)
        results.append({"setting": dict(zip("Bldh", setting)), **result})
        print_table(setting, result)
    harness.write(args, results, gradient=args.gradient)


if __name__ == "__main__":
    main()

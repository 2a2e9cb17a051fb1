"""Command line: `python -m keras_superattn {convert,inspect,bench} --help`."""

import argparse
import json
import os
import statistics
import sys

import numpy as np

from keras_superattn._validation import positive_int_argument as positive_int
from keras_superattn.training import timing

DATASETS = ("imdb", "mnist", "cifar10")


def calibration_data(source, data_dir, count):
    """Samples from a `.npy` file or from a dataset's training images / reviews."""
    if source.endswith(".npy"):
        return np.load(source)[:count]
    from keras_superattn import datasets

    if source == "imdb":
        (x_train, _), _ = datasets.imdb_sequences(data_dir=data_dir)
        return x_train[:count]
    if source in ("mnist", "cifar10"):
        load = datasets.load_mnist if source == "mnist" else datasets.load_cifar10
        (x_train, _), _ = load(data_dir)
        return datasets.images_as_floats(x_train[:count])
    raise SystemExit(f"--calibration: expected a .npy file or one of {DATASETS}, received {source!r}")


def run_convert(args):
    from keras_superattn import deploy

    data = None
    if args.calibration:
        data = calibration_data(args.calibration, args.data_dir, args.num_samples)
    deploy.convert(
        args.model, args.out, quantization=args.quantization, representative_data=data,
        num_calibration_samples=args.num_samples, io_dtype=args.io_dtype, batch_size=args.batch_size,
        calibration_statistic=args.calibration_statistic,
    )
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes)")


def run_inspect(args):
    from keras_superattn import deploy

    report = deploy.inspect(args.model)
    print(json.dumps(report, indent=2) if args.json else deploy.format_report(report))


def run_bench(args):
    from keras_superattn import deploy

    model = deploy.TFLiteModel(args.model, num_threads=args.threads, use_xnnpack=not args.no_xnnpack)
    rng = np.random.default_rng(0)
    for detail in model.inputs.values():
        shape, dtype = detail["shape"], detail["dtype"]
        if np.issubdtype(dtype, np.integer) and dtype not in (np.int8, np.uint8):
            batch = rng.integers(0, 2, size=shape).astype(dtype)  # token ids
        else:
            info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
            batch = rng.integers(info.min, info.max, size=shape) if info else rng.random(shape)
            batch = batch.astype(dtype)
        model.interpreter.set_tensor(detail["index"], batch)
    calls = {"invoke": model.interpreter.invoke}
    samples = [1e3 * s for s in timing.interleaved_samples(calls, args.runs, args.warmup)["invoke"]]
    result = {
        "model": args.model,
        "size_bytes": os.path.getsize(args.model),
        "threads": args.threads,
        "xnnpack": not args.no_xnnpack,
        "runs": args.runs,
        "median_ms": statistics.median(samples),
        "p10_ms": float(np.percentile(samples, 10)),
        "p90_ms": float(np.percentile(samples, 90)),
    }
    print(json.dumps(result, indent=2) if args.json else
          f"{args.model}: {result['size_bytes']:,} bytes; median {result['median_ms']:.3f} ms "
          f"(p10 {result['p10_ms']:.3f}, p90 {result['p90_ms']:.3f}) over {args.runs} runs, "
          f"{args.threads} thread(s), XNNPACK {'on' if result['xnnpack'] else 'off'}")


def main(argv=None):
    from keras_superattn.deploy.options import IO_DTYPES
    from keras_superattn.deploy.options import QUANTIZATIONS
    from keras_superattn.deploy.options import STATISTICS

    parser = argparse.ArgumentParser(prog="python -m keras_superattn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert a .keras model to .tflite")
    convert.add_argument("model", help="the .keras file")
    convert.add_argument("--out", required=True, help="the .tflite file to write")
    convert.add_argument("--quantization", default="int8", choices=QUANTIZATIONS)
    convert.add_argument("--calibration", help=f"a .npy of input samples, or a dataset: {', '.join(DATASETS)}")
    convert.add_argument("--data-dir", default=None, help="local dataset files for --calibration")
    convert.add_argument("--num-samples", type=positive_int, default=300, help="calibration samples (default 300)")
    convert.add_argument("--io-dtype", default="int8", choices=IO_DTYPES, help="int8 model I/O (uint8 for Coral)")
    convert.add_argument("--batch-size", type=positive_int, default=1, help="static batch of the graph (default 1)")
    convert.add_argument(
        "--calibration-statistic", default="minmax", choices=STATISTICS, help="int8 ranges (default minmax)"
    )
    convert.set_defaults(run=run_convert)

    inspect = commands.add_parser("inspect", help="ops, types, shapes and Edge TPU fit of a .tflite file")
    inspect.add_argument("model", help="the .tflite file")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(run=run_inspect)

    bench = commands.add_parser("bench", help="latency of a .tflite file with LiteRT")
    bench.add_argument("model", help="the .tflite file")
    bench.add_argument("--runs", type=positive_int, default=100, help="timed invocations (default 100)")
    bench.add_argument("--warmup", type=int, default=10, help="untimed invocations first (default 10)")
    bench.add_argument("--threads", type=positive_int, default=1, help="CPU threads (default 1)")
    bench.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.set_defaults(run=run_bench)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:
        # A user's mistake (a missing file, a bad model): one line, no traceback.
        parser.exit(2, f"{parser.prog} {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())

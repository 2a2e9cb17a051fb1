"""Command-line plumbing shared by the tutorials."""

import argparse


def parser(description, seeds, epochs, batch_size):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=int, default=seeds, help=f"runs per variant (default {seeds})")
    p.add_argument("--epochs", type=int, default=epochs, help=f"(default {epochs})")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"(default {batch_size})")
    p.add_argument("--out", default=None, help="output folder (default runs/<tutorial>)")
    p.add_argument("--data-dir", default=None, help="local dataset files (default $KERAS_SUPERATTN_DATA, else download)")
    p.add_argument("--variants", default=None, help="comma-separated subset of the variants")
    p.add_argument("--quick", action="store_true", help="a few hundred samples, one epoch, one seed")
    p.add_argument("--data-parallel", action="store_true", help="shard batches over all devices (JAX)")
    return p


def settle(args, variants, name):
    """Applies --quick and --variants; returns the variants to train."""
    if args.quick:
        args.seeds, args.epochs = 1, 1
    args.out = args.out or f"runs/{name}{'_quick' if args.quick else ''}"
    chosen = args.variants.split(",") if args.variants else list(variants)
    unknown = sorted(set(chosen) - set(variants))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {list(variants)}")
    return chosen


def subset(data, train, test):
    (x_train, y_train), (x_test, y_test) = data
    return (x_train[:train], y_train[:train]), (x_test[:test], y_test[:test])

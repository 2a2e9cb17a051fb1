"""Command-line plumbing shared by the tutorials."""

import argparse
import json

from keras_superattn._validation import positive_int_argument as positive_int


def parser(description, seeds, epochs, batch_size, qat=False):
    """The tutorials' common options; `qat` adds `--qat-epochs`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=positive_int, default=seeds, help=f"runs per variant (default {seeds})")
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"(default {epochs})")
    p.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"(default {batch_size})")
    p.add_argument("--out", default=None, help="output folder (default runs/<tutorial>)")
    p.add_argument(
        "--data-dir", default=None, help="local dataset files (default $KERAS_SUPERATTN_DATA, else download)"
    )
    p.add_argument("--variants", default=None, help="comma-separated subset of the variants")
    p.add_argument("--quick", action="store_true", help="a few hundred samples, one epoch, one seed")
    p.add_argument("--data-parallel", action="store_true", help="shard batches over all devices (JAX)")
    p.add_argument(
        "--attention-kwargs", type=json_object, default={},
        help='further arguments of every attention layer, as JSON, e.g. \'{"alignment_initializer": "identity"}\'',
    )
    if qat:
        p.add_argument(
            "--qat-epochs", type=positive_int, default=None,
            help="also fine-tune each variant's best model this many epochs with quantization-aware training "
            "and convert it to int8 (tflite/<variant>_qat_int8.tflite)",
        )
    return p


def json_object(text):
    """An argparse type: a JSON object, e.g. the attention layers' arguments."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r} ({error})") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def recorded(args):
    """What the command line adds to a run's recorded settings: the attention
    arguments, only when given (so that a default run resumes under older records)."""
    return {"attention_kwargs": args.attention_kwargs} if args.attention_kwargs else {}


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


def vit_tutorial(doc, name, load, image_shape, patch_size, epochs, title):
    """The Vision Transformer tutorials: one ViT per variant on `load()`'s images."""
    from keras_superattn import datasets
    from keras_superattn import distribution
    from keras_superattn import layers
    from keras_superattn import models
    from keras_superattn import training

    args = parser(doc.split("\n")[0], seeds=3, epochs=epochs, batch_size=128, qat=True).parse_args()
    variants = settle(args, tuple(layers.VARIANTS), name)
    devices = distribution.use_data_parallel() if args.data_parallel else 1
    config = training.TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, learning_rate_schedule="cosine",
        loss="sparse_categorical_crossentropy", validation_split=0.1, verbose=1 if not args.quick else 2,
        title=title, record=dict(devices=devices, patch_size=patch_size, **recorded(args)),
    )
    (x_train, y_train), (x_test, y_test) = load(args.data_dir)
    data = (datasets.images_as_floats(x_train), y_train), (datasets.images_as_floats(x_test), y_test)
    if args.quick:
        data = subset(data, train=512, test=256)

    def build(variant):
        return models.vit_classifier(
            variant, image_shape, patch_size=patch_size, num_classes=10, attention_kwargs=args.attention_kwargs
        )

    training.compare_variants(
        build, data, variants, range(args.seeds), args.out, config, qat_epochs=args.qat_epochs or 0
    )

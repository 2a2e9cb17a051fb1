"""Command-line plumbing shared by the tutorials."""

import argparse
import json
import os

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
    from keras_superattn.training import experiments

    args = parser(doc.split("\n")[0], seeds=3, epochs=epochs, batch_size=128, qat=True).parse_args()
    variants = settle(args, tuple(layers.VARIANTS), name)
    devices = distribution.use_data_parallel() if args.data_parallel else 1
    config = experiments.TrainingConfig(
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

    experiments.compare_variants(
        build, data, variants, range(args.seeds), args.out, config, qat_epochs=args.qat_epochs or 0
    )


def generative_report(results, out_dir, metric, higher_is_better, also=()):
    """results.md and results.png of a `compare_generators` run: `metric`
    (e.g. `"bleu"`) per variant, mean ± std over seeds, with the int8 file's,
    and the further test metrics named in `also`."""
    from keras_superattn.training.reporting import generative_table
    from keras_superattn.training.reporting import plot_metric

    table = generative_table(results, metric, also)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(table)
    plot_metric(results, metric, higher_is_better, os.path.join(out_dir, "results.png"))
    print("\n" + table, flush=True)


def decoding_predict(model, batch_size=32):
    """`model.predict` for decoding loops, which call it once per token: the
    same batches, so the same numbers, through `predict_on_batch`, without the
    data pipeline that `predict` builds on every call (a quick run spent a
    fifth of its time there)."""
    import keras
    import numpy as np

    def predict(inputs):
        count = len(keras.tree.flatten(inputs)[0])
        batches = [slice(start, start + batch_size) for start in range(0, count, batch_size)]
        return np.concatenate([
            model.predict_on_batch(keras.tree.map_structure(lambda x, rows=rows: x[rows], inputs)) for rows in batches
        ])

    return predict


def cached_int8(out_dir, variant, checkpoint, representative_data, validation_data, file_scores=None):
    """A generative tutorial's best model as an int8 file with a cached
    decoding step (`deploy.convert_generator`, `tflite/<variant>_cached_int8.tflite`):
    its greedy agreement with the Keras model on `validation_data`'s prompts
    (continued to the full length), cache bytes per token and milliseconds
    per generated token; `file_scores(path) -> dict`, when given, scores the
    file as the tutorial scores its uncached files and overrides those."""
    from keras_superattn import deploy

    path = os.path.join(out_dir, "tflite", f"{variant}_cached_int8.tflite")
    cached = deploy.convert_generator(
        checkpoint, path, representative_data=representative_data, validation_data=validation_data, verbose=False
    )
    scores = {
        "greedy_agreement": cached.greedy_agreement,
        "cache_bytes_per_token": cached.cache_bytes_per_token,
        "ms_per_token": 1e3 * cached.decode_seconds,
    }
    if file_scores is not None:
        scores = {**scores, "greedy_agreement_full_length": cached.greedy_agreement, **file_scores(path)}
    return scores


def post_training_int8(out_dir, variant, quantization, checkpoint, representative_data, calibration_samples,
                       validation_data, file_scores):
    """A generative tutorial's best model as `tflite/<variant>_<quantization>.tflite`
    by post-training quantization (`deploy.convert`: `"int8"`, full integer, or
    `"int8_xnnpack"`, the file for phone CPUs), scored by `file_scores(path) -> dict`,
    with the next-token agreement of the conversion's check."""
    from keras_superattn import deploy

    path = os.path.join(out_dir, "tflite", f"{variant}_{quantization}.tflite")
    conversion = deploy.convert(
        checkpoint, path, quantization=quantization, representative_data=representative_data,
        num_calibration_samples=calibration_samples, validation_data=validation_data, verbose=False,
    )
    return {**file_scores(path), "token_agreement": conversion.agreement}


def quantization_aware_int8(out_dir, variant, checkpoint, data, config, epochs, validation_inputs, file_scores):
    """A generative tutorial's best model fine-tuned `epochs` with
    quantization-aware training (`experiments.fine_tune_quantized`) and
    converted to `tflite/<variant>_qat_int8.tflite` from its trained ranges;
    `file_scores(path) -> dict` scores the file as the post-training one."""
    from keras_superattn import deploy
    from keras_superattn.training import experiments

    quantized = experiments.fine_tune_quantized(checkpoint, data, config, epochs)
    path = os.path.join(out_dir, "tflite", f"{variant}_qat_int8.tflite")
    deploy.convert(quantized, path, validation_data=validation_inputs, verbose=False)
    return {"epochs": epochs, **file_scores(path)}

"""Train every attention variant side by side and report accuracy, size and speed.

The tutorials are thin scripts over `compare_variants`: same data, seeds and
budget for every variant; the best-validation checkpoint of each run is
evaluated on the test set; latency is measured for all variants in one
interleaved loop so that machine load hits them alike.
"""

import json
import math
import os
import time

import keras
import numpy as np

from keras_superattn._validation import check_positive_int
from keras_superattn.layers import TransformerEncoder
from keras_superattn.timing import interleaved_median_seconds


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each training epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever `val_accuracy` beats its best so far.

    Like `keras.callbacks.ModelCheckpoint(save_best_only=True)`, but each
    file is written under a temporary name beside `path` and then renamed
    onto it, so an interrupted save never replaces a good checkpoint with a
    partial one. `best` is the best validation accuracy seen.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.best = -math.inf

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy")
        if accuracy is None:
            raise ValueError("BestCheckpoint needs `val_accuracy`: fit with validation data")
        if accuracy > self.best:
            self.best = float(accuracy)
            save_model_atomically(self.model, self.path)


def save_model_atomically(model, path):
    """`model.save(path)` that leaves either the old file or the new one."""
    directory, name = os.path.split(os.path.abspath(path))
    partial = os.path.join(directory, f".{name}.partial.keras")
    try:
        model.save(partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def attention_params(model):
    """Parameters of the attention layers inside a model's encoder blocks."""
    return sum(
        layer.attention_layer.count_params()
        for layer in model.layers
        if isinstance(layer, TransformerEncoder)
    )


def use_data_parallel():
    """Shards each batch over all local devices with Keras' DataParallel (JAX)."""
    if keras.backend.backend() != "jax":
        raise ValueError(
            "Data-parallel training uses keras.distribution, which needs the JAX "
            f"backend. Received: KERAS_BACKEND={keras.backend.backend()}"
        )
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def adam(config, train_samples):
    """Adam at `learning_rate`, which `learning_rate_schedule="cosine"` decays
    to zero along a cosine over exactly the steps `fit` will take."""
    learning_rate = config["learning_rate"]
    schedule = config.get("learning_rate_schedule", "constant")
    if schedule == "cosine":
        fit_samples = int(train_samples * (1 - config["validation_split"]))  # as fit() splits
        steps = config["epochs"] * math.ceil(fit_samples / config["batch_size"])
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    elif schedule != "constant":
        raise ValueError(
            "Argument `learning_rate_schedule` must be 'constant' or 'cosine'. "
            f"Received: learning_rate_schedule={schedule!r}"
        )
    return keras.optimizers.Adam(learning_rate)


def train_one(build_model, data, variant, seed, config, out_dir):
    """Trains one model; returns its test metrics and the best checkpoint's path."""
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = build_model(variant)
    model.compile(
        optimizer=adam(config, len(x_train)),
        loss=config["loss"],
        metrics=["accuracy"],
    )
    path = os.path.join(out_dir, "models", f"{variant}_seed{seed}.keras")
    timer = EpochTimer()
    checkpoint = BestCheckpoint(path)
    print(f"\n--- {variant}, seed {seed} ---", flush=True)
    model.fit(
        x_train, y_train,
        batch_size=config["batch_size"], epochs=config["epochs"],
        validation_split=config["validation_split"],
        callbacks=[checkpoint, timer], verbose=config["verbose"],
    )
    best = keras.saving.load_model(path)
    test_loss, test_accuracy = best.evaluate(
        x_test, y_test, batch_size=config["batch_size"], verbose=0
    )
    return {
        "seed": seed,
        "validation_accuracy": checkpoint.best,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "epoch_seconds": float(np.mean(timer.seconds)),
        "attention_params": attention_params(model),
        "total_params": model.count_params(),
        "checkpoint": os.path.relpath(path, out_dir),
    }


def batch_latency(models, batch, rounds=30, warmup=3):
    """Median seconds of one inference batch per model, timed interleaved."""
    calls = {
        name: (lambda m=model: keras.ops.convert_to_numpy(m(batch, training=False))) for name, model in models.items()
    }
    return interleaved_median_seconds(calls, rounds, warmup)


def convert_best_models(best_runs, out_dir, data, calibration_samples=300):
    """Converts each variant's best checkpoint to int8 `tflite/<variant>_int8.tflite`.

    Returns `{variant: int8 test accuracy}`; empty, with a message, where the
    `tflite` extra (TensorFlow and ai-edge-litert) is not installed.
    """
    try:
        from keras_superattn import deploy
    except ImportError as error:
        print(f"Skipping the int8 conversion ({error}); pip install 'keras-superattn[tflite]'", flush=True)
        return {}
    (x_train, _), (x_test, y_test) = data
    accuracy = {}
    for variant, run in best_runs.items():
        path = os.path.join(out_dir, "tflite", f"{variant}_int8.tflite")
        deploy.convert(
            os.path.join(out_dir, run["checkpoint"]), path,
            representative_data=x_train[:calibration_samples], verbose=False,
        )
        accuracy[variant] = deploy.TFLiteModel(path).evaluate(x_test, y_test)
    return accuracy


def compare_variants(build_model, data, variants, seeds, out_dir, int8=True, **config):
    """Trains each variant with each seed and writes results.json / .md / .png.

    Args:
        build_model: `variant -> keras.Model` (uncompiled).
        data: `((x_train, y_train), (x_test, y_test))` arrays.
        variants: attention names, e.g. `("standard", "optimized", ...)`.
        seeds: iterable of ints; one run per seed and variant. Each
            variant's best run, the one whose model is kept and converted,
            is the one with the best validation accuracy.
        out_dir: folder for `results.json`, `results.md`, `results.png`,
            `models/<variant>_seed<k>.keras` and, for each variant's best
            run, the int8 file `tflite/<variant>_int8.tflite`.
        int8: bool. Convert each variant's best model to int8 and score it.
        **config: `epochs`, `batch_size`, `learning_rate`,
            `learning_rate_schedule` (`"constant"`, the default, or
            `"cosine"`), `loss`, `validation_split`, `verbose`, `title`, and
            any settings to record.

    Returns:
        The results dictionary written to `results.json`.
    """
    seeds, variants = list(seeds), list(variants)
    for name, values in (("seeds", seeds), ("variants", variants)):
        if not values:
            raise ValueError(f"Argument `{name}` must not be empty. Received: {name}={values}")
    check_config(config)
    os.makedirs(os.path.join(out_dir, "models"), exist_ok=True)
    runs = {
        variant: [train_one(build_model, data, variant, seed, config, out_dir) for seed in seeds]
        for variant in variants
    }
    best_runs = {variant: max(r, key=lambda run: run["validation_accuracy"]) for variant, r in runs.items()}
    best_models = {
        variant: keras.saving.load_model(os.path.join(out_dir, run["checkpoint"]))
        for variant, run in best_runs.items()
    }
    test_batch = data[1][0][: config["batch_size"]]
    latency = batch_latency(best_models, test_batch)
    int8_accuracy = convert_best_models(best_runs, out_dir, data) if int8 else {}
    summary = {}
    for variant, variant_runs in runs.items():
        accuracies = [run["test_accuracy"] for run in variant_runs]
        summary[variant] = {
            "attention_params": variant_runs[0]["attention_params"],
            "total_params": variant_runs[0]["total_params"],
            "test_accuracy_mean": float(np.mean(accuracies)),
            "test_accuracy_std": float(np.std(accuracies)),
            "test_loss_mean": float(np.mean([run["test_loss"] for run in variant_runs])),
            "epoch_seconds_mean": float(np.mean([run["epoch_seconds"] for run in variant_runs])),
            "batch_latency_ms": 1e3 * latency[variant],
            "best_checkpoint": best_runs[variant]["checkpoint"],
            "best_validation_accuracy": best_runs[variant]["validation_accuracy"],
            "best_test_accuracy": best_runs[variant]["test_accuracy"],
            "best_int8_test_accuracy": int8_accuracy.get(variant),
        }
    results = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "config": {key: value for key, value in config.items() if key != "verbose"},
        "seeds": seeds,
        "runs": runs,
        "summary": summary,
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    table = markdown_table(results)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(table)
    plot(results, os.path.join(out_dir, "results.png"))
    print("\n" + table, flush=True)
    return results


def check_config(config):
    """Fails before any data is touched when a training setting is missing or wrong."""
    missing = sorted({"epochs", "batch_size", "learning_rate", "loss", "validation_split", "verbose"} - set(config))
    if missing:
        raise ValueError(f"compare_variants is missing the settings {missing}. Received: {sorted(config)}")
    for name in ("epochs", "batch_size"):
        check_positive_int(name, config[name])
    if not config["learning_rate"] > 0:
        raise ValueError(
            f"Argument `learning_rate` must be positive. Received: learning_rate={config['learning_rate']!r}"
        )
    split = config["validation_split"]
    if not 0 < split < 1:
        raise ValueError(
            "Argument `validation_split` must be in (0, 1): the best checkpoint is chosen on it. "
            f"Received: validation_split={split!r}"
        )


def markdown_table(results):
    seeds = len(results["seeds"])
    lines = [
        f"### {results['config'].get('title', 'results')} ({results['backend']}, {seeds} seed(s))",
        "",
        "| variant | attention params | total params | test accuracy (mean ± std) "
        "| test loss | s / epoch | ms / batch | best run: float / int8 accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, s in results["summary"].items():
        lines.append(
            f"| {variant} | {s['attention_params']:,} | {s['total_params']:,} "
            f"| {100 * s['test_accuracy_mean']:.2f} ± {100 * s['test_accuracy_std']:.2f} % "
            f"| {s['test_loss_mean']:.4f} | {s['epoch_seconds_mean']:.2f} | {s['batch_latency_ms']:.2f} "
            f"| {_percent(s.get('best_test_accuracy'))} / {_percent(s.get('best_int8_test_accuracy'))} |"
        )
    return "\n".join(lines) + "\n"


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f} %"


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    names = list(summary)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in names:
        s = summary[name]
        left.errorbar(
            s["attention_params"], 100 * s["test_accuracy_mean"], yerr=100 * s["test_accuracy_std"],
            fmt="o", capsize=4, label=name,
        )
    left.set_xlabel("attention parameters")
    left.set_ylabel("test accuracy (%)")
    left.legend()
    right.bar(names, [summary[n]["batch_latency_ms"] for n in names])
    right.set_ylabel("inference ms per batch")
    figure.suptitle(results["config"].get("title", ""))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

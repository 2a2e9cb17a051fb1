"""Train every attention variant side by side and report accuracy, size and speed.

The tutorials are thin scripts over `compare_variants`: same data, seeds and
budget for every variant; the best-validation checkpoint of each run is
evaluated on the test set; latency is measured for all variants in one
interleaved loop so that machine load hits them alike.
"""

import dataclasses
import json
import math
import os

import keras
import numpy as np

from keras_superattn._validation import check_positive_int
from keras_superattn.generation import token_crossentropy
from keras_superattn.layers.transformer_block import TransformerBlock
from keras_superattn.training.callbacks import BestCheckpoint
from keras_superattn.training.callbacks import EpochTimer
from keras_superattn.training.callbacks import write_json_atomically
from keras_superattn.training.reporting import markdown_table
from keras_superattn.training.reporting import plot
from keras_superattn.training.timing import interleaved_median_seconds

# The package's own losses, by the name a `TrainingConfig` gives them.
_LOSSES = {"token_crossentropy": token_crossentropy}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How every run of a comparison trains; checked when it is made.

    Args:
        epochs: int. Epochs per run.
        batch_size: int.
        learning_rate: float. Adam's (initial) learning rate.
        loss: a Keras loss name, e.g. `"binary_crossentropy"`, or
            `"token_crossentropy"` (`generation.token_crossentropy`).
        validation_split: float in `(0, 1)`. Share of the training data held
            out to choose each run's best epoch and each variant's best run.
        learning_rate_schedule: `"constant"`, or `"cosine"` to decay the
            learning rate to zero over exactly the steps of the run.
        verbose: `fit`'s verbosity.
        tensorflow_xla: bool. On TensorFlow, compile the training step with
            XLA (`jit_compile=True`), which Keras leaves off on a CPU; other
            backends keep Keras' default (JAX compiles anyway).
        title: title of the table and plot.
        record: further settings to record in `results.json`, e.g. the
            model's sizes; they do not change the training.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    loss: str
    validation_split: float = 0.1
    learning_rate_schedule: str = "constant"
    verbose: int = 2
    tensorflow_xla: bool = False
    title: str = "results"
    record: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if not self.learning_rate > 0:
            raise ValueError(
                f"Argument `learning_rate` must be positive. Received: learning_rate={self.learning_rate!r}"
            )
        if not 0 < self.validation_split < 1:
            raise ValueError(
                "Argument `validation_split` must be in (0, 1): the best checkpoint is chosen on it. "
                f"Received: validation_split={self.validation_split!r}"
            )
        if self.learning_rate_schedule not in ("constant", "cosine"):
            raise ValueError(
                "Argument `learning_rate_schedule` must be 'constant' or 'cosine'. "
                f"Received: learning_rate_schedule={self.learning_rate_schedule!r}"
            )

    def as_record(self):
        """The settings as `results.json` records them (flat, without `verbose`)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del fields["verbose"], fields["record"]
        if not self.tensorflow_xla:  # recorded only when set: runs recorded before it existed resume
            del fields["tensorflow_xla"]
        return {**fields, **self.record}


def attention_params(model):
    """Parameters of the attention layers inside a model's transformer blocks."""
    return sum(
        attention.count_params()
        for layer in model.layers
        if isinstance(layer, TransformerBlock)
        for attention in layer.attention_layers
    )


def adam(config, train_samples, split=True):
    """Adam at `config.learning_rate`, which the `"cosine"` schedule decays
    to zero along a cosine over exactly the steps `fit` will take (on
    `train_samples` less the validation split when `split`)."""
    learning_rate = config.learning_rate
    if config.learning_rate_schedule == "cosine":
        fit_samples = int(train_samples * (1 - config.validation_split)) if split else train_samples  # as fit()
        steps = config.epochs * math.ceil(fit_samples / config.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    return keras.optimizers.Adam(learning_rate)


def train_one(build_model, data, variant, seed, config, out_dir):
    """Trains one model; returns its test metrics and the best checkpoint's path."""
    (x_train, y_train), (x_test, y_test) = data
    run, best = _fit_best(build_model, variant, seed, config, out_dir, (x_train, y_train), None, ["accuracy"])
    test_loss, test_accuracy = best.evaluate(x_test, y_test, batch_size=config.batch_size, verbose=0)
    return {
        "seed": seed,
        "validation_accuracy": run.pop("best"),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        **run,
    }


def _fit_best(build_model, variant, seed, config, out_dir, train, validation, metrics, callbacks=()):
    """Fits one model, keeping the checkpoint of its best validation epoch
    (by accuracy with metrics, else by loss; `validation` None: the
    config's split of `train`). Returns `(run record, best model)`.

    The state after each epoch is backed up in `out_dir/backup/`, so a run
    that was interrupted continues from its last finished epoch (Keras'
    `BackupAndRestore`); the backup is removed when the run ends."""
    keras.utils.set_random_seed(seed)
    model = build_model(variant)
    samples = len(keras.tree.flatten(train[0])[0])
    loss = _LOSSES.get(config.loss, config.loss)
    xla = config.tensorflow_xla and keras.backend.backend() == "tensorflow"
    model.compile(
        optimizer=adam(config, samples, split=validation is None), loss=loss, metrics=metrics,
        jit_compile=True if xla else "auto",
    )
    path = os.path.join(out_dir, "models", f"{variant}_seed{seed}.keras")
    backup_dir = os.path.join(out_dir, "backup", f"{variant}_seed{seed}")
    resume = os.path.isdir(backup_dir)
    timer = EpochTimer()
    checkpoint = BestCheckpoint(path, monitor="val_accuracy" if metrics else "val_loss", resume=resume)
    print(f"\n--- {variant}, seed {seed}{' (resumed)' if resume else ''} ---", flush=True)
    split = dict(validation_split=config.validation_split) if validation is None else dict(validation_data=validation)
    model.fit(
        *train, batch_size=config.batch_size, epochs=config.epochs, verbose=config.verbose,
        callbacks=[checkpoint, timer, *callbacks, keras.callbacks.BackupAndRestore(backup_dir)], **split,
    )
    run = {
        "best": checkpoint.best,
        # Of this sitting's epochs (a resumed run's earlier ones were timed before).
        "epoch_seconds": float(np.mean(timer.seconds)) if timer.seconds else math.nan,
        "attention_params": attention_params(model),
        "total_params": model.count_params(),
        "checkpoint": os.path.relpath(path, out_dir),
    }
    return run, keras.saving.load_model(path)


class _RunRecord:
    """Each finished (variant, seed) run of a comparison, kept in
    `out_dir/runs/<variant>_seed<k>.json` as soon as it ends, so that a rerun
    with the same `out_dir` skips it. The folder also keeps the config: runs
    under another config are not mixed in."""

    def __init__(self, out_dir, config):
        self.directory = os.path.join(out_dir, "runs")
        os.makedirs(self.directory, exist_ok=True)
        os.makedirs(os.path.join(out_dir, "models"), exist_ok=True)
        settings = os.path.join(self.directory, "config.json")
        # Through JSON, so that tuples and lists compare alike.
        wanted = json.loads(json.dumps(config.as_record()))
        if os.path.exists(settings):
            with open(settings) as f:
                recorded = json.load(f)
            if recorded != wanted:
                raise ValueError(
                    f"The runs recorded in {self.directory} were trained with another config; resume them with "
                    f"that config or choose another `out_dir`. Recorded: {recorded}, received: {wanted}"
                )
        write_json_atomically(wanted, settings)

    def __call__(self, variant, seed, train):
        """The record of run (variant, seed): read, or made by `train(variant, seed)` and written."""
        path = os.path.join(self.directory, f"{variant}_seed{seed}.json")
        if os.path.exists(path):
            print(f"\n--- {variant}, seed {seed}: recorded in {path} ---", flush=True)
            with open(path) as f:
                return json.load(f)
        run = train(variant, seed)
        write_json_atomically(run, path)
        return run


def batch_latency(models, batch, rounds=30, warmup=3):
    """Median seconds of one inference batch per model, timed interleaved."""
    calls = {
        name: (lambda m=model: keras.ops.convert_to_numpy(m(batch, training=False))) for name, model in models.items()
    }
    return interleaved_median_seconds(calls, rounds, warmup)


def convert_best_models(best_runs, out_dir, data, calibration_samples=300, qat=None):
    """Converts each variant's best checkpoint to int8 `tflite/<variant>_int8.tflite`
    and, with `qat=(config, epochs)`, after a quantization-aware fine-tune to
    `tflite/<variant>_qat_int8.tflite` (`fine_tune_quantized`).

    Returns `{variant: {"int8": (test accuracy, share of the checked samples
    on which the file decides as the Keras model), "qat_int8": (test
    accuracy, share of the test samples on which the file decides as the
    float Keras model)}}`; empty, with a message, where the `tflite` extra
    (TensorFlow and ai-edge-litert) is not installed.
    """
    try:
        from keras_superattn import deploy
        from keras_superattn.deploy.runtime import classification_accuracy
        from keras_superattn.deploy.runtime import decisions
    except ImportError as error:
        print(f"Skipping the int8 conversion ({error}); pip install 'keras-superattn[tflite]'", flush=True)
        return {}
    (x_train, _), (x_test, y_test) = data
    scores = {}
    for variant, run in best_runs.items():
        checkpoint = os.path.join(out_dir, run["checkpoint"])
        path = os.path.join(out_dir, "tflite", f"{variant}_int8.tflite")
        conversion = deploy.convert(
            checkpoint, path, representative_data=x_train[:calibration_samples], verbose=False
        )
        scores[variant] = {"int8": (deploy.TFLiteModel(path).evaluate(x_test, y_test), conversion.agreement)}
        if qat:
            from keras_superattn.quantization import NoQuantizationAwareForm

            config, epochs = qat
            try:
                quantized = fine_tune_quantized(checkpoint, data, config, epochs, calibration_samples)
            except NoQuantizationAwareForm as error:  # Keras' MultiHeadAttention, the tutorials' "mha"
                print(f"--- {variant}: no quantization-aware fine-tune: {error}", flush=True)
                continue
            path = os.path.join(out_dir, "tflite", f"{variant}_qat_int8.tflite")
            deploy.convert(quantized, path, validation_data=x_test[: config.batch_size], verbose=False)
            got = deploy.TFLiteModel(path).predict(x_test)
            want = keras.saving.load_model(checkpoint).predict(x_test, verbose=0, batch_size=config.batch_size)
            agreement = float(np.mean(decisions(got) == decisions(want)))
            scores[variant]["qat_int8"] = (classification_accuracy(got, y_test), agreement)
    return scores


def fine_tune_quantized(checkpoint, data, config, epochs, calibration_samples=300):
    """The model of `checkpoint` made quantization-aware
    (`quantization.quantize_model`, ranges from the first training samples)
    and fine-tuned for `epochs` on the training data at a tenth of
    `config`'s learning rate, constant. `data` is `((x_train, y_train), ...)`,
    the inputs an array or a dict of arrays."""
    from keras_superattn import quantization

    (x_train, y_train), _ = data
    first = keras.tree.map_structure(lambda x: x[:calibration_samples], x_train)
    quantized = quantization.quantize_model(keras.saving.load_model(checkpoint, compile=False), first)
    quantized.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate / 10), loss=_LOSSES.get(config.loss, config.loss)
    )
    quantized.fit(x_train, y_train, batch_size=config.batch_size, epochs=epochs, verbose=config.verbose)
    return quantized


def compare_variants(build_model, data, variants, seeds, out_dir, config, int8=True, qat_epochs=0):
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
            run, the int8 file `tflite/<variant>_int8.tflite`. Each finished
            run is recorded in `runs/` as it ends: a rerun with the same
            `out_dir` and config skips finished runs and continues an
            interrupted one from its last finished epoch, so a comparison
            may span several sittings.
        config: a `TrainingConfig`, the same for every run.
        int8: bool. Convert each variant's best model to int8 and score it.
        qat_epochs: int. With `int8`, also fine-tune each variant's best
            model for this many epochs with quantization-aware training
            and score its int8 file (0: not).

    Returns:
        The results dictionary written to `results.json`.
    """
    seeds, variants = list(seeds), list(variants)
    for name, values in (("seeds", seeds), ("variants", variants)):
        if not values:
            raise ValueError(f"Argument `{name}` must not be empty. Received: {name}={values}")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"Argument `config` must be a TrainingConfig. Received: config={config!r}")
    record = _RunRecord(out_dir, config)

    def train(variant, seed):
        return train_one(build_model, data, variant, seed, config, out_dir)

    runs = {variant: [record(variant, seed, train) for seed in seeds] for variant in variants}
    best_runs = {variant: max(r, key=lambda run: run["validation_accuracy"]) for variant, r in runs.items()}
    best_models = {
        variant: keras.saving.load_model(os.path.join(out_dir, run["checkpoint"]))
        for variant, run in best_runs.items()
    }
    test_batch = data[1][0][: config.batch_size]
    latency = batch_latency(best_models, test_batch)
    qat = (config, qat_epochs) if qat_epochs else None
    int8_scores = convert_best_models(best_runs, out_dir, data, qat=qat) if int8 else {}
    summary = {}
    for variant, variant_runs in runs.items():
        accuracies = [run["test_accuracy"] for run in variant_runs]
        int8_accuracy, int8_agreement = int8_scores.get(variant, {}).get("int8", (None, None))
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
            "best_int8_test_accuracy": int8_accuracy,
            "best_int8_agreement": int8_agreement,
        }
        if "qat_int8" in int8_scores.get(variant, {}):
            accuracy, agreement = int8_scores[variant]["qat_int8"]
            summary[variant].update(
                best_qat_int8_test_accuracy=accuracy, best_qat_int8_agreement=agreement, qat_epochs=qat_epochs
            )
    results = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "config": config.as_record(),
        "seeds": seeds,
        "runs": runs,
        "summary": summary,
    }
    _write_json(results, out_dir)
    table = markdown_table(results)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(table)
    plot(results, os.path.join(out_dir, "results.png"))
    print("\n" + table, flush=True)
    return results


def compare_generators(build_model, data, variants, seeds, out_dir, config, evaluate, convert=None, callbacks=None):
    """Trains next-token models (translators, language models) side by side.

    Like `compare_variants`, but each run keeps its lowest-validation-loss
    checkpoint, and the test metrics come from `evaluate`.

    Args:
        build_model: `variant -> keras.Model` (uncompiled) of logits.
        data: `(train, validation)`, each `(inputs, labels)`; inputs an
            array or a dict of arrays.
        variants, seeds, out_dir, config: as in `compare_variants`;
            `config.loss` is e.g. `"token_crossentropy"`.
        evaluate: `(model, variant, seed) -> dict` of test metrics of one
            run's best checkpoint, e.g. `{"perplexity": ...}` or
            `{"bleu": ...}`; also the place to record example outputs.
        convert: optional `(variant, checkpoint path) -> dict` for each
            variant's best run: its int8 file's metrics.
        callbacks: optional `(variant, seed) -> list` of further Keras
            callbacks of that run's `fit`, e.g. a `callbacks.EpochScore`.

    Returns:
        The results dictionary written to `results.json` (the report,
        `results.md` and `results.png`, is the caller's).
    """
    train, validation = data
    record = _RunRecord(out_dir, config)

    def train_and_evaluate(variant, seed):
        extra = callbacks(variant, seed) if callbacks else ()
        run, best = _fit_best(build_model, variant, seed, config, out_dir, train, validation, [], extra)
        return {"seed": seed, "validation_loss": run.pop("best"), **evaluate(best, variant, seed), **run}

    runs = {variant: [record(variant, seed, train_and_evaluate) for seed in seeds] for variant in variants}
    best_runs = {variant: min(r, key=lambda run: run["validation_loss"]) for variant, r in runs.items()}
    best_models = {
        variant: keras.saving.load_model(os.path.join(out_dir, run["checkpoint"])) for variant, run in best_runs.items()
    }
    batch = keras.tree.map_structure(lambda x: x[: config.batch_size], validation[0])
    latency = batch_latency(best_models, batch)
    results = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        # The validation data is given, so no split of the training data.
        "config": {k: v for k, v in config.as_record().items() if k != "validation_split"},
        "seeds": list(seeds),
        "runs": runs,
        "summary": {
            variant: {
                "best_checkpoint": best_runs[variant]["checkpoint"],
                "batch_latency_ms": 1e3 * latency[variant],
                "best_run": {k: v for k, v in best_runs[variant].items() if k != "checkpoint"},
                **_mean_and_std(variant_runs),
            }
            for variant, variant_runs in runs.items()
        },
    }
    _write_json(results, out_dir)
    if convert:
        for variant, run in best_runs.items():
            results["summary"][variant]["int8"] = convert(variant, os.path.join(out_dir, run["checkpoint"]))
        _write_json(results, out_dir)
    return results


def _mean_and_std(runs):
    """`<metric>_mean` / `<metric>_std` of every numeric metric of the runs."""
    numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and k != "seed"]
    summary = {}
    for key in numeric:
        values = [run[key] for run in runs]
        summary[f"{key}_mean"], summary[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
    return summary


def _write_json(results, out_dir):
    write_json_atomically(results, os.path.join(out_dir, "results.json"))


"""Train every attention variant side by side and report accuracy, size and speed.

The tutorials are thin scripts over `compare_variants` (classifiers) and
`compare_generators` (translators, language models): same data, seeds and
budget for every variant; the best-validation checkpoint of each run is
evaluated on the test set; latency is measured for all variants in one
interleaved loop so that machine load hits them alike.
"""

import os

import keras
import numpy as np

from keras_superattn._files import write_json_atomically
from keras_superattn._files import write_text_atomically
from keras_superattn.training.int8_reports import convert_best_models
from keras_superattn.training.reporting import markdown_table
from keras_superattn.training.reporting import plot
from keras_superattn.training.runs import RunRecord
from keras_superattn.training.runs import TrainingConfig
from keras_superattn.training.runs import fit_best
from keras_superattn.training.timing import interleaved_median_seconds


def train_one(build_model, data, variant, seed, config, out_dir):
    """Trains one model; returns its test metrics and the best checkpoint's path."""
    (x_train, y_train), (x_test, y_test) = data
    run, best = fit_best(build_model, variant, seed, config, out_dir, (x_train, y_train), None, ["accuracy"])
    test_loss, test_accuracy = best.evaluate(x_test, y_test, batch_size=config.batch_size, verbose=0)
    return {
        "seed": seed,
        "validation_accuracy": run.pop("best"),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        **run,
    }


def batch_latency(models, batch, rounds=30, warmup=3):
    """Median seconds of one inference batch per model, timed interleaved."""
    calls = {
        name: (lambda m=model: keras.ops.convert_to_numpy(m(batch, training=False))) for name, model in models.items()
    }
    return interleaved_median_seconds(calls, rounds, warmup)


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
    record = RunRecord(out_dir, config)

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
    write_text_atomically(table, os.path.join(out_dir, "results.md"))
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
    record = RunRecord(out_dir, config)

    def train_and_evaluate(variant, seed):
        extra = callbacks(variant, seed) if callbacks else ()
        run, best = fit_best(build_model, variant, seed, config, out_dir, train, validation, [], extra)
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

"""Rebuilds tflite_models/: int8 files of the tutorials' best models and manifest.json.

    python tflite_models/build.py --imdb runs/sentiment_imdb --mnist runs/vit_mnist --data-dir ../shared/data

For each tutorial output folder it takes every variant's best checkpoint (from
results.json), converts it to full int8 with 300 training samples for
calibration, scores the float and int8 models on the full test set, times the
int8 files together (1 thread, interleaved, median) and writes the manifest.
"""

import argparse
import hashlib
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_superattn import datasets  # noqa: E402
from keras_superattn import deploy  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SUBSET = 2000  # the fixed test subset the test suite re-scores


def test_data(task, data_dir):
    if task == "imdb":
        (x_train, _), (x_test, y_test) = datasets.imdb_sequences(data_dir=data_dir)
        return x_train, x_test, y_test
    (x_train, _), (x_test, y_test) = datasets.load_mnist(data_dir)
    return datasets.images_as_floats(x_train[:300]), datasets.images_as_floats(x_test), y_test


def float_accuracy(model, x, y):
    probabilities = keras.ops.convert_to_numpy(model.predict(x, batch_size=256, verbose=0))
    predicted = (probabilities[:, 0] > 0.5) if probabilities.shape[-1] == 1 else probabilities.argmax(-1)
    return float(np.mean(predicted == y))


def latencies(paths, rounds=200):
    models = {name: deploy.TFLiteModel(path, num_threads=1) for name, path in paths.items()}
    samples = {name: [] for name in models}
    for model in models.values():
        model.interpreter.set_tensor(model.input["index"], np.zeros(model.input["shape"], model.input["dtype"]))
        model.interpreter.invoke()
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.interpreter.invoke()
            samples[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(s) for name, s in samples.items()}


def build(task, run_dir, data_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    calibration, x_test, y_test = test_data(task, data_dir)
    entries, paths = {}, {}
    for variant, summary in results["summary"].items():
        if variant == "mha":
            continue
        checkpoint = os.path.join(run_dir, summary["best_checkpoint"])
        name = f"{task}_{variant}_int8.tflite"
        path = os.path.join(HERE, name)
        deploy.convert(checkpoint, path, representative_data=calibration, num_calibration_samples=300, verbose=False)
        model = deploy.TFLiteModel(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        entries[name] = {
            "tutorial": f"tutorials/{'sentiment_imdb' if task == 'imdb' else 'vit_mnist'}.py",
            "settings": {key: results["config"][key] for key in ("title", "epochs", "batch_size") if key in results["config"]},
            "seeds_trained": len(results["seeds"]),
            "variant": variant,
            "checkpoint": summary["best_checkpoint"],
            "sha256": digest,
            "size_bytes": os.path.getsize(path),
            "float_test_accuracy": float_accuracy(keras.saving.load_model(checkpoint, compile=False), x_test, y_test),
            "int8_test_accuracy": model.evaluate(x_test, y_test),
            "int8_subset_accuracy": model.evaluate(x_test[:SUBSET], y_test[:SUBSET]),
            "arm64_check": "not run yet",
        }
        paths[name] = path
    timing = latencies(paths)
    standard = timing[f"{task}_standard_int8.tflite"]
    for name, entry in entries.items():
        entry["latency_ms_1_thread"] = timing[name]
        entry["latency_relative_to_standard"] = timing[name] / standard
        entry["size_relative_to_standard"] = entry["size_bytes"] / entries[f"{task}_standard_int8.tflite"]["size_bytes"]
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--imdb", help="output folder of tutorials/sentiment_imdb.py")
    parser.add_argument("--mnist", help="output folder of tutorials/vit_mnist.py")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    manifest = {"subset_size": SUBSET, "machine": "see BENCHMARKS.md", "models": {}}
    for task, run_dir in (("imdb", args.imdb), ("mnist", args.mnist)):
        if run_dir:
            manifest["models"].update(build(task, run_dir, args.data_dir))
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    for name, entry in manifest["models"].items():
        print(
            f"{name}: {entry['size_bytes']:,} B, float {100 * entry['float_test_accuracy']:.2f} %, "
            f"int8 {100 * entry['int8_test_accuracy']:.2f} %, {entry['latency_ms_1_thread']:.3f} ms "
            f"({entry['latency_relative_to_standard']:.2f} x Standard)"
        )


if __name__ == "__main__":
    main()

"""Rebuilds tflite_models/: int8 files of the tutorials' best models and manifest.json.

    python tflite_models/build.py --imdb runs/sentiment_imdb --mnist runs/vit_mnist --data-dir ../shared/data
    python tflite_models/build.py --translation runs/translation_spa_eng --language-model runs/language_model \
        --data-dir ../shared/data

For each classification tutorial's output folder it takes every variant's
best checkpoint (from results.json), converts it twice with 300 training
samples for calibration (`deploy.convert`'s measured min/max ranges):
`<task>_<variant>_int8.tflite`, full integer (NPUs, the Edge TPU), and
`<task>_<variant>_int8_xnnpack.tflite`, the ops that XNNPACK takes only in
float kept float (phone CPUs). It scores the float and int8 models on the full
test set, measures how often they agree, times the files together (1 thread,
XNNPACK, interleaved, median) and updates the manifest (entries of a task not
rebuilt are kept).

The generative tutorials convert their best models themselves, to `int8`
and `int8_xnnpack`, and score the files there (BLEU or perplexity, greedy
agreement with the Keras model); their files and vocabularies are copied here
with those scores, and timed and checked on arm64 here: one invocation is one
generated token. Their files with a cached decoding step
(`<task>_<variant>_cached_int8.tflite`, `deploy.TFLiteGenerator`) are copied
with the tutorial's scores and checked on arm64 by their `prefill`. Each
translator file, cached or not, is also scored here on the first 200 test
sentences (BLEU), each full-sequence language model on the first windows of
the first 200 test reviews (perplexity), and each cached language model by
its greedy continuations of 50 of them, piece by piece against its
full-sequence file's decisions; the test suite re-scores them.
"""

import argparse
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_superattn import datasets  # noqa: E402
from keras_superattn import deploy  # noqa: E402
from keras_superattn.deploy import arm64  # noqa: E402
from keras_superattn.deploy import runtime  # noqa: E402
from keras_superattn.training import timing  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SUBSET = 2000  # the fixed test subset the test suite re-scores
TRANSLATION_SUBSET = 200  # the same for the translators (each sentence is ~20 invocations)
LANGUAGE_MODEL_SUBSET = 200  # and the language models: each of these test reviews' first window,
LANGUAGE_MODEL_PROMPTS = 50  # the first of them continued greedily
PROMPT_PIECES = 16  # from their first pieces, as the tutorial's prompts
SETTINGS = ("title", "epochs", "batch_size", "learning_rate_schedule")  # recorded from results.json
ARM64_SAMPLES = 50
CLASSIFIER_QUANTIZATIONS = ("int8", "int8_xnnpack")


def test_data(task, data_dir):
    if task == "imdb":
        (x_train, _), (x_test, y_test) = datasets.imdb_sequences(data_dir=data_dir)
        return x_train, x_test, y_test
    (x_train, _), (x_test, y_test) = datasets.load_mnist(data_dir)
    return datasets.images_as_floats(x_train[:300]), datasets.images_as_floats(x_test), y_test


CALIBRATION = {"samples": 300, "source": "the first training samples", "statistic": "minmax",
               "method": "ranges measured by LiteRT with every tensor kept (deploy/calibration.py)"}


_MEMORY_PROBE = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

def resident_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

before = resident_kb()
interpreter = Interpreter(model_path=sys.argv[1], num_threads=1)
interpreter.allocate_tensors()
for source in interpreter.get_input_details():
    interpreter.set_tensor(source["index"], np.zeros(source["shape"], source["dtype"]))
interpreter.invoke()
print(resident_kb() - before)
"""


def memory_kb(path):
    """Resident memory that loading, allocating and running the model adds (Linux)."""
    run = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, path], capture_output=True, text=True, check=True)
    return int(run.stdout.split()[-1])


def latencies(paths, rounds=200):
    """Milliseconds of one invocation of each file, 1 thread, interleaved; of
    a cached generator file, one `decode` step halfway along its sequence.
    The step is timed with its signature runner's copies of the cache in and
    out, which an app pays too; the full-sequence files' bare `invoke` leaves
    theirs out, so the cached files' speed-up is if anything understated."""
    calls = {}
    for name, path in paths.items():
        if path.endswith("_cached_int8.tflite"):
            generator = deploy.TFLiteGenerator(path, num_threads=1)
            inputs = {key: np.zeros(d["shape"], d["dtype"]) for key, d in generator.decode.get_input_details().items()}
            inputs["index"] = np.array([generator.sequence_length // 2], np.int32)
            calls[name] = functools.partial(generator.decode, **inputs)
            continue
        model = deploy.TFLiteModel(path, num_threads=1)
        for detail in model.inputs.values():
            model.interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        calls[name] = model.interpreter.invoke
    seconds = timing.interleaved_median_seconds(calls, rounds, warmup=1)
    return {name: 1e3 * value for name, value in seconds.items()}


def file_entry(tutorial, results, variant, path):
    """What every manifest entry records of the run and the file."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {
        "tutorial": f"tutorials/{tutorial}.py",
        "settings": {key: results["config"][key] for key in SETTINGS if key in results["config"]},
        "seeds_trained": len(results["seeds"]),
        "variant": variant,
        "checkpoint": results["summary"][variant]["best_checkpoint"],
        "sha256": digest,
        "size_bytes": os.path.getsize(path),
    }


def standard_twin(name, task):
    """The Standard variant's file of the same task and kind as `name`."""
    kind = name[len(task) + 1:].split("_", 1)[1]  # e.g. "int8_xnnpack.tflite"
    return f"{task}_standard_{kind}"


def add_speed(entries, paths, task, latency_key):
    """Latency (1 thread, interleaved median), size and latency relative to the
    Standard file of the same kind, memory."""
    timing = latencies(paths)
    for name, entry in entries.items():
        standard = standard_twin(name, task)
        entry[latency_key] = timing[name]
        entry["latency_relative_to_standard"] = timing[name] / timing[standard]
        entry["size_relative_to_standard"] = entry["size_bytes"] / entries[standard]["size_bytes"]
        entry["memory_kb"] = memory_kb(paths[name])


def check_arm64(entries, jobs):
    """Largest int8-step difference between emulated arm64 and x86 outputs;
    `jobs` gives each entry's `(job, inputs)` of `arm64.run_on_arm64`."""
    if arm64.emulator_root() is None:
        for entry in entries.values():
            entry["arm64_check"] = f"not run: no emulator ({arm64.ROOT_ENV} unset)"
        return
    runs = dict(jobs.values())
    outputs, x86 = arm64.run_on_arm64(runs), arm64.run_on_host(runs)
    for name, entry in entries.items():
        job, inputs = jobs[name]
        steps = int(np.abs(outputs[job].astype(int) - x86[job].astype(int)).max())
        entry["arm64_check"] = {
            "cpu": f"qemu-aarch64 -cpu {arm64.CPU}, ai-edge-litert aarch64, 1 thread",
            "samples": len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs),
            "max_int8_step_difference_vs_x86": steps,
        }


def build(task, run_dir, data_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    calibration, x_test, y_test = test_data(task, data_dir)
    entries, paths, inputs = {}, {}, {}
    for variant, summary in results["summary"].items():
        if variant == "mha":
            continue
        checkpoint = os.path.join(run_dir, summary["best_checkpoint"])
        keras_model = keras.saving.load_model(checkpoint, compile=False)
        want = keras.ops.convert_to_numpy(keras_model.predict(x_test, batch_size=256, verbose=0))
        for quantization in CLASSIFIER_QUANTIZATIONS:
            name = f"{task}_{variant}_{quantization}.tflite"
            path = os.path.join(HERE, name)
            deploy.convert(
                checkpoint, path, quantization=quantization, representative_data=calibration,
                num_calibration_samples=CALIBRATION["samples"], calibration_statistic=CALIBRATION["statistic"],
                verbose=False,
            )
            model = deploy.TFLiteModel(path)
            got = model.predict(x_test)
            entries[name] = {
                **file_entry(f"{'sentiment_imdb' if task == 'imdb' else 'vit_mnist'}", results, variant, path),
                "quantization": quantization,
                "calibration": CALIBRATION,
                "float_test_accuracy": runtime.classification_accuracy(want, y_test),
                "int8_test_accuracy": runtime.classification_accuracy(got, y_test),
                "int8_agreement_with_keras": float(np.mean(runtime.decisions(got) == runtime.decisions(want))),
                "int8_subset_accuracy": runtime.classification_accuracy(got[:SUBSET], y_test[:SUBSET]),
            }
            paths[name] = path
            inputs[name] = model.quantize(x_test[:ARM64_SAMPLES])
    check_arm64(entries, {name: (paths[name], inputs[name]) for name in entries})
    add_speed(entries, paths, task, "latency_ms_1_thread")
    return entries


GENERATIVE = {
    # task: (tutorial, metric, vocabulary files)
    "translation": ("translation_spa_eng", "bleu", ("english.model", "spanish.model")),
    "language_model": ("language_model", "perplexity", ("subwords.model",)),
}


def translation_tokenizers(run_dir):
    """The tutorial's English and Spanish tokenizers, at its lengths."""
    from keras_superattn import text

    with open(os.path.join(run_dir, "results.json")) as f:
        lengths = json.load(f)["config"]
    english = text.SubwordTokenizer.load(os.path.join(run_dir, "english.model"), lengths["source_length"])
    spanish = text.SubwordTokenizer.load(os.path.join(run_dir, "spanish.model"), lengths["target_length"] + 1)
    return english, spanish


def translation_inputs(run_dir, data_dir):
    """The first `ARM64_SAMPLES` test pairs, as the translators' input ids."""
    _, _, test = datasets.load_spa_eng(data_dir)
    pairs = test[:ARM64_SAMPLES]
    english, spanish = translation_tokenizers(run_dir)
    target = spanish([s for _, s in pairs], start=True, end=True)
    return {"source": english([e for e, _ in pairs]), "target": target[:, :-1]}


def language_model_windows(run_dir, data_dir, length):
    """The first window of each of the first `LANGUAGE_MODEL_SUBSET` test
    reviews, ids `(N, length + 1)`: inputs, and targets shifted by one."""
    from keras_superattn import text

    _, reviews = datasets.load_imdb_text(data_dir)
    tokenizer = text.SubwordTokenizer.load(os.path.join(run_dir, "subwords.model"), length + 1)
    return tokenizer(reviews[:LANGUAGE_MODEL_SUBSET])


def continue_prompts(path, windows):
    """A language-model file's greedy continuations of the windows' first
    `PROMPT_PIECES` pieces, `LANGUAGE_MODEL_PROMPTS` of them."""
    prompt = windows[:LANGUAGE_MODEL_PROMPTS, :-1].copy()
    prompt[:, PROMPT_PIECES:] = 0
    return deploy.generate_greedy(path, prompt, PROMPT_PIECES)[0]


def decision_agreement(cached, full_sequence, windows):
    """How often the cached file's greedy choice while it continues the prompts
    is the full-sequence file's next-token decision on the same prefix (whole
    continuations part at the first near-tie, so they are compared piece by
    piece)."""
    ids = continue_prompts(cached, windows)
    logits = deploy.TFLiteModel(full_sequence).predict(ids)
    return float(np.mean(logits[:, PROMPT_PIECES - 1 : -1].argmax(-1) == ids[:, PROMPT_PIECES:]))


def language_model_subset_scores(path, windows):
    """What the test suite re-scores of a full-sequence language-model file."""
    from keras_superattn import generation

    file = deploy.TFLiteModel(path)
    return {
        "subset_size": LANGUAGE_MODEL_SUBSET,
        "int8_subset_perplexity": generation.perplexity(file.predict, windows[:, :-1], windows[:, 1:]),
    }


def translation_subset_bleu(path, run_dir, data_dir):
    """BLEU of a translator file's greedy translations of the first
    `TRANSLATION_SUBSET` test sentences, which the test suite re-scores."""
    from keras_superattn import generation
    from keras_superattn import text

    _, _, test = datasets.load_spa_eng(data_dir)
    test = test[:TRANSLATION_SUBSET]
    english, spanish = translation_tokenizers(run_dir)
    source = english([e for e, _ in test])
    prompt = np.zeros((len(test), spanish.sequence_length - 1), "int32")
    prompt[:, 0] = spanish.token_id(text.START)
    end = spanish.token_id(text.END)
    ids, _ = deploy.generate_greedy(path, prompt, 1, stop_id=end, source=source)
    return generation.corpus_bleu(spanish.decode(ids[:, 1:], stop_at=text.END), [s for _, s in test])


def build_generative(task, run_dir, data_dir):
    tutorial, metric, vocabularies = GENERATIVE[task]
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    for vocabulary in vocabularies:
        shutil.copyfile(os.path.join(run_dir, vocabulary), os.path.join(HERE, f"{task}_{vocabulary}"))
    if task == "translation":
        test_inputs, windows = translation_inputs(run_dir, data_dir), None
    else:
        windows = language_model_windows(run_dir, data_dir, results["config"]["sequence_length"])
        test_inputs = windows[:ARM64_SAMPLES, :-1]  # the first `ARM64_SAMPLES` test inputs, as ids
    entries, paths, inputs = {}, {}, {}
    for variant, summary in results["summary"].items():
        int8 = summary["int8"]
        # The int8_xnnpack file is missing from runs of the tutorials before they made it.
        for quantization, scores in (("int8", int8), ("int8_xnnpack", int8.get("xnnpack"))):
            if scores is None:
                continue
            name = f"{task}_{variant}_{quantization}.tflite"
            path = os.path.join(HERE, name)
            shutil.copyfile(os.path.join(run_dir, "tflite", f"{variant}_{quantization}.tflite"), path)
            entries[name] = {
                **file_entry(tutorial, results, variant, path),
                "quantization": quantization,
                "vocabularies": [f"{task}_{vocabulary}" for vocabulary in vocabularies],
                "calibration": {**CALIBRATION, "samples": 200},
                f"float_{metric}": summary["best_run"][metric],
                f"int8_{metric}": scores[metric],
                **({"float_perplexity_same_sequences": int8["float_perplexity_same_sequences"]}
                   if task != "translation" else {}),
                "int8_greedy_agreement": scores["greedy_agreement"],
                "int8_token_agreement_with_keras": scores["token_agreement"],
                **(subset_scores(path, run_dir, data_dir, results) if task == "translation"
                   else language_model_subset_scores(path, windows)),
            }
            paths[name] = path
            model = deploy.TFLiteModel(path)
            inputs[name] = (
                {key: model.quantize(value, key) for key, value in test_inputs.items()}
                if isinstance(test_inputs, dict) else model.quantize(test_inputs)
            )
    cached = cached_entries(task, run_dir, data_dir, results, windows)
    paths.update((name, os.path.join(HERE, name)) for name in cached)
    # A cached file is checked by its prefill: the prompt's logits, each row a batch of one.
    prefill = ({"tokens": test_inputs["target"][:, None], "source": test_inputs["source"][:, None]}
               if task == "translation" else {"tokens": test_inputs[:, None]})
    jobs = {name: (paths[name], inputs[name]) for name in entries}
    jobs.update((name, ((paths[name], "prefill", "logits"), prefill)) for name in cached)
    entries.update(cached)
    check_arm64(entries, jobs)
    add_speed(entries, paths, task, "latency_ms_per_token_1_thread")
    for name, entry in cached.items():
        full_sequence = entries[name.replace("_cached_int8", "_int8")]
        entry["speedup_over_full_sequence_file"] = (
            full_sequence["latency_ms_per_token_1_thread"] / entry["latency_ms_per_token_1_thread"])
    return entries


def subset_scores(path, run_dir, data_dir, results):
    """What the test suite re-scores of a translator file, and the lengths it needs."""
    config = results["config"]
    return {
        "sequence_lengths": {"source": config["source_length"], "target": config["target_length"]},
        "subset_size": TRANSLATION_SUBSET,
        "int8_subset_bleu": translation_subset_bleu(path, run_dir, data_dir),
    }


def cached_entries(task, run_dir, data_dir, results, windows=None):
    """The files with a cached decoding step (`prefill` / `decode`), copied
    with the tutorial's scores: greedy agreement with the Keras model (and,
    for a translator, BLEU and agreement with the uncached int8 file) and
    cache bytes per token; `add_speed` times them. A language model's file is
    also compared here with its full-sequence int8 file on `windows`' prompts."""
    tutorial = GENERATIVE[task][0]
    entries = {}
    for variant, summary in results["summary"].items():
        cached = summary["int8"].get("cached")
        if cached is None:  # a run of the tutorials before they made these files
            continue
        name = f"{task}_{variant}_cached_int8.tflite"
        path = os.path.join(HERE, name)
        shutil.copyfile(os.path.join(run_dir, "tflite", f"{variant}_cached_int8.tflite"), path)
        entries[name] = {
            **file_entry(tutorial, results, variant, path),
            "signatures": ["prefill", "decode"],
            "vocabularies": [f"{task}_{vocabulary}" for vocabulary in GENERATIVE[task][2]],
            "int8_greedy_agreement": cached["greedy_agreement"],
            "cache_bytes_per_token": cached["cache_bytes_per_token"],
        }
        if task == "translation":
            entries[name].update(
                float_bleu=summary["best_run"]["bleu"],
                int8_bleu=cached["bleu"],
                int8_greedy_agreement_with_int8_file=cached["greedy_agreement_with_int8_file"],
                int8_greedy_agreement_full_length=cached["greedy_agreement_full_length"],
                **subset_scores(path, run_dir, data_dir, results),
            )
        else:
            uncached = os.path.join(HERE, name.replace("_cached_int8", "_int8"))
            entries[name].update(
                subset_size=LANGUAGE_MODEL_PROMPTS, prompt_pieces=PROMPT_PIECES,
                int8_subset_decision_agreement_with_int8_file=decision_agreement(path, uncached, windows),
            )
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--imdb", help="output folder of tutorials/sentiment_imdb.py")
    parser.add_argument("--mnist", help="output folder of tutorials/vit_mnist.py")
    parser.add_argument("--translation", help="output folder of tutorials/translation_spa_eng.py")
    parser.add_argument("--language-model", help="output folder of tutorials/language_model.py")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    manifest_path = os.path.join(HERE, "manifest.json")
    manifest = {"subset_size": SUBSET, "machine": "see BENCHMARKS.md", "models": {}}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest["models"] = json.load(f)["models"]
    rebuilt = {}
    tasks = (("imdb", args.imdb), ("mnist", args.mnist), ("translation", args.translation),
             ("language_model", args.language_model))
    for task, run_dir in tasks:
        if run_dir:
            manifest["models"] = {k: v for k, v in manifest["models"].items() if not k.startswith(f"{task}_")}
            rebuilt.update((build_generative if task in GENERATIVE else build)(task, run_dir, args.data_dir))
    manifest["models"].update(rebuilt)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
    for name, entry in rebuilt.items():
        if "cache_bytes_per_token" in entry:
            print(f"{name}: {entry['size_bytes']:,} B, greedy agreement {100 * entry['int8_greedy_agreement']:.1f} %, "
                  f"{entry['cache_bytes_per_token']} cache bytes / token, "
                  f"{entry['latency_ms_per_token_1_thread']:.3f} ms/token "
                  f"({entry['speedup_over_full_sequence_file']:.1f}x the full-sequence file)")
            continue
        if "latency_ms_per_token_1_thread" in entry:
            scores = {k: round(v, 4) for k, v in entry.items() if k.startswith(("float_", "int8_"))}
            print(f"{name}: {entry['size_bytes']:,} B, {scores}, {entry['latency_ms_per_token_1_thread']:.3f} ms/token")
            continue
        print(
            f"{name}: {entry['size_bytes']:,} B, float {100 * entry['float_test_accuracy']:.2f} %, "
            f"int8 {100 * entry['int8_test_accuracy']:.2f} %, "
            f"agreement {100 * entry['int8_agreement_with_keras']:.2f} %, "
            f"{entry['latency_ms_1_thread']:.3f} ms "
            f"({entry['latency_relative_to_standard']:.2f} x Standard)"
        )


if __name__ == "__main__":
    main()

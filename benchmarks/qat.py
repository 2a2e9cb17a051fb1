"""Post-training against quantization-aware int8: how closely each file follows the float model.

The ViTs are those of `int8_fidelity.py` (`vit_classifier(variant, (28, 28,
1), patch_size=7, num_classes=10)`, `keras.utils.set_random_seed(0)`, Adam,
2 epochs, batch 64 on the first 12,000 MNIST training images). Each is
converted twice: post-training (`deploy.convert`, minmax ranges of 200
training images) and after a quantization-aware fine-tune
(`quantization.quantize_model`, ranges from the same 200 images, then
`--qat-epochs` epochs on the 12,000 images at Adam 1e-4, batch 64), converted
from its trained ranges without calibration data. Scored on the first 1,000
test images: accuracy, and top-1 agreement with the float model.

With `--language-model CHECKPOINT` (a best model of
`tutorials/language_model.py`, its `subwords.model` beside the `models/`
folder), the same for it in the tutorial's int8 check: post-training int8
calibrated on 200 training windows; quantization-aware int8 after one epoch
on `--lm-windows` training windows (of the tutorial's training reviews) at
Adam 1e-4; on the first window of each of 200 test reviews, the share of
greedy continuations (16 pieces of prompt, 48 generated) equal to the float
model's (and to the quantization-aware Keras model's), the mean number of
generated pieces before the first difference, the perplexity per piece, and
on the test windows the share of next-piece decisions equal to the float
model's (and the quantization-aware Keras model's).

With `--translator CHECKPOINT` (a model of `tutorials/translation_spa_eng.py`,
its `english.model` / `spanish.model` beside the `models/` folder), the same
for it: post-training int8 calibrated on 200 training pairs, quantization-aware
int8 after one epoch on `--translator-pairs` training pairs at Adam 1e-4; on
the first `--translator-sentences` test sentences, corpus BLEU of the greedy
translations and the share equal to the float model's (and to the
quantization-aware Keras model's), and with the reference translations as
the decoder's input, the share of next-piece decisions equal to theirs.

    KERAS_BACKEND=tensorflow python benchmarks/qat.py --data-dir ../shared/data
"""

import json
import os

import harness
import keras
import numpy as np

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn import layers
from keras_superattn import quantization
from keras_superattn.deploy.runtime import decisions

VARIANTS = tuple(layers.VARIANTS)


def main():
    parser = harness.parser(__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="ViT variants ('' for none)")
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--language-model", default=None, help="a language-model checkpoint (.keras)")
    parser.add_argument("--lm-windows", type=int, default=8192, help="fine-tuning windows (default 8192)")
    parser.add_argument("--translator", default=None, help="a translator checkpoint (.keras)")
    parser.add_argument("--translator-pairs", type=int, default=16384, help="fine-tuning pairs (default 16384)")
    parser.add_argument("--translator-sentences", type=int, default=200, help="test sentences (default 200)")
    args = harness.parse(parser)
    results = {}
    if args.variants:
        results["vit"] = vits(args)
        print(table(results["vit"], args.qat_epochs), flush=True)
    if args.language_model:
        results["language_model"] = language_model(args)
        print(json.dumps(results["language_model"]), flush=True)
    if args.translator:
        results["translator"] = translator(args)
        print(json.dumps(results["translator"]), flush=True)
    harness.write(args, results)


def vits(args):
    sizes = dict(train=256, test=64) if args.smoke else {}
    (x_train, y_train), (x_test, y_test) = harness.mnist(args.data_dir, **sizes)
    rows = {}
    for variant in args.variants.split(","):
        model = harness.trained_vit(variant, x_train, y_train, epochs=1 if args.smoke else 2)
        float_outputs = model.predict(x_test, verbose=0)
        row = {"float": float(np.mean(decisions(float_outputs) == y_test))}
        # The control: the same fine-tune without fake quantization.
        continued = keras.models.clone_model(model)
        continued.set_weights(model.get_weights())
        quantized = quantization.quantize_model(model, x_train[:200])
        for tuned in (continued, quantized):
            tuned.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
            tuned.fit(x_train, y_train, batch_size=64, epochs=args.qat_epochs, verbose=0)
        continued_outputs = continued.predict(x_test, verbose=0)
        row["float, fine-tuned"] = float(np.mean(decisions(continued_outputs) == y_test))
        references = {
            "float": decisions(float_outputs),
            "float, fine-tuned": decisions(continued_outputs),
            "quantization-aware Keras": decisions(quantized.predict(x_test, verbose=0)),
        }
        with harness.scratch() as folder:
            for name, source, options in (
                ("post-training", model, dict(representative_data=x_train[:200], num_calibration_samples=200)),
                ("post-training, fine-tuned", continued,
                 dict(representative_data=x_train[:200], num_calibration_samples=200)),
                ("quantization-aware", quantized, {}),
            ):
                path = os.path.join(folder, "model.tflite")
                deploy.convert(source, path, validation_data=x_test[:64], verbose=False, **options)
                got = decisions(deploy.TFLiteModel(path).predict(x_test))
                row[name] = {"accuracy": float(np.mean(got == y_test))}
                row[name].update({f"agreement with {k}": float(np.mean(got == v)) for k, v in references.items()})
        rows[variant] = row
        print(variant, json.dumps(row), flush=True)
    return rows


def table(rows, epochs):
    lines = [
        "Accuracy on 1,000 MNIST test images; in brackets, top-1 agreement with the float model "
        "the file was made from (post-training: the model itself; quantization-aware: its fake-quantized "
        f"Keras model). Post-training int8 calibrated on 200 images; fine-tunes: {epochs} epoch(s) on "
        "12,000 images at Adam 1e-4.",
        "",
        "| variant | float | post-training int8 | float, fine-tuned | its post-training int8 "
        "| quantization-aware int8 |",
        "|---|---|---|---|---|---|",
    ]
    for variant, row in rows.items():
        lines.append(
            f"| {variant} | {100 * row['float']:.1f} | {_cell(row, 'post-training', 'float')} "
            f"| {100 * row['float, fine-tuned']:.1f} | {_cell(row, 'post-training, fine-tuned', 'float, fine-tuned')} "
            f"| {_cell(row, 'quantization-aware', 'quantization-aware Keras')} |"
        )
    return "\n".join(lines)


def _cell(row, name, reference):
    return f"{100 * row[name]['accuracy']:.1f} ({100 * row[name][f'agreement with {reference}']:.1f})"


def language_model(args, length=64, prompt=16, sequences=200):
    from keras_superattn import generation
    from keras_superattn import text

    folder = os.path.dirname(os.path.dirname(os.path.abspath(args.language_model)))
    tokenizer = text.SubwordTokenizer.load(os.path.join(folder, "subwords.model"), length + 1)
    reviews, test_reviews = datasets.load_imdb_text(args.data_dir)
    reviews = [reviews[i] for i in np.random.RandomState(0).permutation(len(reviews))]
    held_out = len(reviews) // 10  # the tutorial's validation reviews come first
    train_ids, train_labels = text.windows(tokenizer.encode(reviews[held_out:]), length)
    train_ids, train_labels = train_ids[: args.lm_windows], train_labels[: args.lm_windows]
    test_ids, test_labels = text.windows(tokenizer.encode(test_reviews[:sequences]), length)
    prompts = tokenizer(test_reviews[:sequences])[:, :length]
    prompts[:, prompt:] = 0
    forced, forced_positions = test_ids[:sequences], test_labels[:sequences] != 0
    model = keras.saving.load_model(args.language_model)
    float_predict = generation.batched_predict(model, batch_size=256)
    float_ids = generation.decode(float_predict, prompts, prompt)
    float_next = next_pieces(float_predict, forced, forced_positions)
    row = {
        "windows": len(train_ids),
        "float": {"perplexity": generation.perplexity(
            lambda ids: model.predict(ids, verbose=0), test_ids[:sequences], test_labels[:sequences]
        )},
    }
    keras.utils.set_random_seed(0)  # the fine-tune's shuffling and dropout
    quantized = quantization.quantize_model(model, train_ids[:200])
    quantized.compile(optimizer=keras.optimizers.Adam(1e-4), loss=generation.token_crossentropy)
    quantized.fit(train_ids, train_labels, batch_size=128, epochs=1, verbose=0)
    simulated_predict = generation.batched_predict(quantized, batch_size=256)
    simulated_ids = generation.decode(simulated_predict, prompts, prompt)
    simulated_next = next_pieces(simulated_predict, forced, forced_positions)
    with harness.scratch() as folder:
        for name, source, options in (
            ("post-training", model, dict(representative_data=train_ids[:200], num_calibration_samples=200)),
            ("quantization-aware", quantized, {}),
        ):
            path = os.path.join(folder, "model.tflite")
            deploy.convert(source, path, validation_data=test_ids[:16], verbose=False, **options)
            ids, _ = deploy.decode_greedy(path, prompts, prompt)
            file = deploy.TFLiteModel(path)
            file_next = next_pieces(file.predict, forced, forced_positions)
            row[name] = {
                "greedy_agreement": generation.sequence_agreement(ids, float_ids),
                "greedy_agreement_with_quantization_aware_keras": generation.sequence_agreement(ids, simulated_ids),
                "tokens_before_first_difference": common_prefix(ids[:, prompt:], float_ids[:, prompt:]),
                "next_token_agreement": float(np.mean(file_next == float_next)),
                "next_token_agreement_with_quantization_aware_keras": float(np.mean(file_next == simulated_next)),
                "perplexity": generation.perplexity(file.predict, test_ids[:sequences], test_labels[:sequences]),
            }
            print(name, json.dumps(row[name]), flush=True)
    return row


def translator(args, calibration=200):
    from keras_superattn import generation
    from keras_superattn import text

    model = keras.saving.load_model(args.translator)
    source_length = model.get_layer("source_embedding").sequence_length
    target_length = model.get_layer("target_embedding").sequence_length
    folder = os.path.dirname(os.path.dirname(os.path.abspath(args.translator)))
    english = text.SubwordTokenizer.load(os.path.join(folder, "english.model"), source_length)
    spanish = text.SubwordTokenizer.load(os.path.join(folder, "spanish.model"), target_length + 1)
    start, end = spanish.token_id(text.START), spanish.token_id(text.END)
    train, _, test = datasets.load_spa_eng(args.data_dir)
    train, test = train[: args.translator_pairs], test[: args.translator_sentences]
    ids = spanish([s for _, s in train], start=True, end=True)
    inputs, labels = {"source": english([e for e, _ in train]), "target": ids[:, :-1]}, ids[:, 1:]
    source, references = english([e for e, _ in test]), [s for _, s in test]
    reference_ids = spanish(references, start=True, end=True)
    forced = {"source": source, "target": reference_ids[:, :-1]}  # teacher forcing on the references
    forced_positions = reference_ids[:, 1:] != 0
    prompts = np.zeros((len(test), target_length), "int32")
    prompts[:, 0] = start

    def greedy(predict):
        return generation.decode(lambda target: predict({"source": source, "target": target}), prompts, 1, stop_id=end)

    def bleu(translated):
        return generation.corpus_bleu(spanish.decode(translated[:, 1:], stop_at=text.END), references)

    float_predict = generation.batched_predict(model, batch_size=256)
    float_ids = greedy(float_predict)
    float_next = next_pieces(float_predict, forced, forced_positions)
    row = {"pairs": len(train), "sentences": len(test), "float": {"bleu": bleu(float_ids)}}
    first = {name: x[:calibration] for name, x in inputs.items()}
    keras.utils.set_random_seed(0)  # the fine-tune's shuffling and dropout
    quantized = quantization.quantize_model(model, first)
    quantized.compile(optimizer=keras.optimizers.Adam(1e-4), loss=generation.token_crossentropy)
    quantized.fit(inputs, labels, batch_size=128, epochs=1, verbose=0)
    simulated_predict = generation.batched_predict(quantized, batch_size=256)
    simulated_ids = greedy(simulated_predict)
    simulated_next = next_pieces(simulated_predict, forced, forced_positions)
    row["quantization-aware Keras"] = {"bleu": bleu(simulated_ids)}
    with harness.scratch() as scratch:
        for name, origin, options in (
            ("post-training", model, dict(representative_data=first, num_calibration_samples=calibration)),
            ("quantization-aware", quantized, {}),
        ):
            path = os.path.join(scratch, "model.tflite")
            deploy.convert(origin, path, validation_data={"source": source[:16], "target": prompts[:16]},
                           verbose=False, **options)
            translated, _ = deploy.decode_greedy(path, prompts, 1, stop_id=end, inputs={"source": source})
            file_next = next_pieces(deploy.TFLiteModel(path).predict, forced, forced_positions)
            row[name] = {
                "bleu": bleu(translated),
                "greedy_agreement": generation.sequence_agreement(translated, float_ids),
                "greedy_agreement_with_quantization_aware_keras": float(
                    generation.sequence_agreement(translated, simulated_ids)
                ),
                "next_token_agreement": float(np.mean(file_next == float_next)),
                "next_token_agreement_with_quantization_aware_keras": float(np.mean(file_next == simulated_next)),
            }
            print(name, json.dumps(row[name]), flush=True)
    return row


def next_pieces(predict, inputs, positions):
    """The model's next-piece decisions on `inputs` (teacher forcing), at the
    `positions` that hold a real piece."""
    return decisions(predict(inputs))[positions]


def common_prefix(a, b):
    """Mean number of leading positions on which the rows of `a` and `b` agree."""
    return float(np.mean(np.cumprod(a == b, axis=1).sum(axis=1)))


if __name__ == "__main__":
    main()

"""English to Spanish translation: every attention variant side by side.

The Anki pairs split 70 / 15 / 15 as keras.io's English-to-Spanish example
(seeded shuffle), text as it is (case and punctuation kept). A SentencePiece
model of 4,000 subwords per language, learnt from the 83,276 training pairs;
English cut to 24 pieces, Spanish to 24 plus the [start] / [end] markers.
One pre-norm encoder and one decoder block per model, width 128, 4 heads, a
256-wide feed-forward network, dropout 0.1; the variant is used in every
attention (encoder self, decoder causal self and cross). All 83,276 training
pairs train, the first 2,000 validation pairs choose each run's
best-validation-loss checkpoint; Adam at 1e-3 with a cosine decay, batch
128, 10 epochs (with 6, Standard's test BLEU was 35.1 instead of 36.5 and
its example translations clearly worse; REPRODUCTION.md), 2 seeds. After every epoch, the BLEU of greedy translations
of the first 500 validation pairs is recorded (the learning curve). Test:
corpus BLEU (sacreBLEU, its default tokenisation, cased) of greedy
translations of the first 1,000 test sentences. Each variant's best model
is converted to int8 and decodes the same sentences on LiteRT, and converted
again to an int8 file with a cached decoding step (`deploy.convert_generator`);
with `--qat-epochs N`, also after N epochs of quantization-aware fine-tuning
(`tflite/<variant>_qat_int8.tflite`). A full run
takes about 3 hours 15 minutes on 2 idle CPU cores (about 2.3 minutes an
epoch); it resumes where it stopped when run again with the same --out.

    python tutorials/translation_spa_eng.py --data-dir ../shared/data
    python tutorials/translation_spa_eng.py --quick
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_superattn import datasets  # noqa: E402
from keras_superattn import deploy  # noqa: E402
from keras_superattn import generation  # noqa: E402
from keras_superattn import layers  # noqa: E402
from keras_superattn import models  # noqa: E402
from keras_superattn import text  # noqa: E402
from keras_superattn import training  # noqa: E402
from keras_superattn.training import callbacks  # noqa: E402
from keras_superattn.training import int8_reports  # noqa: E402
from keras_superattn.training import reporting  # noqa: E402

VOCABULARY_SIZE, SOURCE_LENGTH, TARGET_LENGTH = 4000, 24, 24
WIDTH, HEADS, FEEDFORWARD = 128, 4, 256
VALIDATION_PAIRS, CURVE_PAIRS, BLEU_SENTENCES, EXAMPLES, CALIBRATION = 2000, 500, 1000, 5, 200


def main():
    args = _common.parser(__doc__.split("\n")[0], seeds=2, epochs=10, batch_size=128, qat=True).parse_args()
    variants = _common.settle(args, tuple(layers.VARIANTS), "translation_spa_eng")
    # 2,048 pairs (--quick) hold too few distinct pieces for 4,000.
    vocabulary_size = 500 if args.quick else VOCABULARY_SIZE
    config = training.TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, learning_rate_schedule="cosine",
        loss="token_crossentropy", verbose=1 if not args.quick else 2,
        title=(
            f"English-Spanish translation, {vocabulary_size} subwords, d = {WIDTH}, {HEADS} heads, "
            f"1 + 1 blocks"
        ),
        record=dict(
            vocabulary_size=vocabulary_size, source_length=SOURCE_LENGTH, target_length=TARGET_LENGTH,
            width=WIDTH, heads=HEADS, feedforward=FEEDFORWARD, validation_pairs=VALIDATION_PAIRS,
            curve_pairs=CURVE_PAIRS, bleu_sentences=BLEU_SENTENCES, **_common.recorded(args),
        ),
    )
    train, validation, test = datasets.load_spa_eng(args.data_dir)
    if args.quick:
        train, validation, test = train[:2048], validation[:256], test[:32]
    validation, test = validation[:VALIDATION_PAIRS], test[:BLEU_SENTENCES]
    english = text.SubwordTokenizer.train([e for e, _ in train], vocabulary_size, SOURCE_LENGTH)
    spanish = text.SubwordTokenizer.train([s for _, s in train], vocabulary_size, TARGET_LENGTH + 1)
    os.makedirs(os.path.join(args.out, "curves"), exist_ok=True)
    english.save(os.path.join(args.out, "english.model"))
    spanish.save(os.path.join(args.out, "spanish.model"))
    start, end = spanish.token_id(text.START), spanish.token_id(text.END)

    def arrays(pairs):
        ids = spanish([s for _, s in pairs], start=True, end=True)
        return {"source": english([e for e, _ in pairs]), "target": ids[:, :-1]}, ids[:, 1:]

    def translate(predict, count):
        """Greedy ids and texts of `count` sentences; `predict(target ids) -> logits`."""
        prompt = np.zeros((count, TARGET_LENGTH), "int32")
        prompt[:, 0] = start
        ids = generation.decode(predict, prompt, 1, stop_id=end)
        return ids, spanish.decode(ids[:, 1:], stop_at=text.END)

    def keras_translation(model, pairs):
        source = english([e for e, _ in pairs])
        predict = generation.batched_predict(model)
        return translate(lambda target: predict({"source": source, "target": target}), len(pairs))

    def bleu(model, pairs):
        _, hypotheses = keras_translation(model, pairs)
        return generation.corpus_bleu(hypotheses, [s for _, s in pairs]), hypotheses

    def curve_path(variant, seed):
        return os.path.join(args.out, "curves", f"{variant}_seed{seed}.json")

    def learning_curve(variant, seed):
        return [callbacks.EpochScore(curve_path(variant, seed), lambda model: bleu(model, validation[:CURVE_PAIRS])[0])]

    def evaluate(model, variant, seed):
        score, hypotheses = bleu(model, test)
        examples = zip(test[:EXAMPLES], hypotheses)
        return {
            "bleu": score,
            "validation_bleu_per_epoch": callbacks.read_scores(curve_path(variant, seed)),
            "examples": [{"english": e, "reference": r, "translation": h} for (e, r), h in examples],
        }

    translations = {}  # file path -> its greedy ids of the test sentences

    def file_scores(path, keras_ids, int8_path=None):
        """An int8 file's greedy translations of the test sentences: BLEU,
        agreement with Keras' (and with the file at `int8_path`'s), speed."""
        prompt = np.zeros_like(keras_ids)
        prompt[:, 0] = start
        source = english([e for e, _ in test])
        ids, seconds = deploy.generate_greedy(path, prompt, 1, stop_id=end, source=source)
        translations[path] = ids
        scores = {
            "bleu": generation.corpus_bleu(spanish.decode(ids[:, 1:], stop_at=text.END), [s for _, s in test]),
            "greedy_agreement": generation.sequence_agreement(ids, keras_ids),
            "ms_per_token": 1e3 * seconds,
        }
        if int8_path is not None:
            scores["greedy_agreement_with_int8_file"] = generation.sequence_agreement(ids, translations[int8_path])
        return scores

    def convert(variant, checkpoint):
        train_inputs = data[0][0]
        validation_inputs = {name: x[:CALIBRATION] for name, x in data[1][0].items()}
        keras_ids, _ = keras_translation(keras.saving.load_model(checkpoint), test)

        def post_training(quantization):
            return int8_reports.post_training_int8_scores(
                args.out, variant, quantization, checkpoint, train_inputs, CALIBRATION, validation_inputs,
                lambda path: file_scores(path, keras_ids),
            )

        scores = {**post_training("int8"), "xnnpack": post_training("int8_xnnpack")}
        int8_path = os.path.join(args.out, "tflite", f"{variant}_int8.tflite")
        # Scored as the uncached files, stopped at [end]; `greedy_agreement_full_length`
        # is the conversion's check, each test prompt continued to the full length.
        scores["cached"] = int8_reports.cached_int8_scores(
            args.out, variant, checkpoint, train_inputs, arrays(test)[0],
            lambda path: file_scores(path, keras_ids, int8_path),
        )
        if args.qat_epochs:
            scores["qat"] = int8_reports.quantization_aware_int8_scores(
                args.out, variant, checkpoint, data, config, args.qat_epochs, validation_inputs,
                lambda path: file_scores(path, keras_ids),
            )
        return scores

    data = arrays(train), arrays(validation)

    def build(variant):
        return models.translator(
            variant, vocabulary_size, vocabulary_size, SOURCE_LENGTH, TARGET_LENGTH,
            embedding_dim=WIDTH, num_heads=HEADS, intermediate_dim=FEEDFORWARD, attention_kwargs=args.attention_kwargs,
        )

    results = training.compare_generators(
        build, data, variants, range(args.seeds), args.out, config, evaluate, convert, learning_curve
    )
    reporting.write_generative_report(results, args.out, "bleu", higher_is_better=True)


if __name__ == "__main__":
    main()

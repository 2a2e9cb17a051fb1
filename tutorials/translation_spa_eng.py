"""English to Spanish translation: every attention variant side by side.

The Anki pairs split 70 / 15 / 15 as keras.io's English-to-Spanish example
(seeded shuffle); lower-cased, punctuation stripped, Keras' TextVectorization
with the 4,000 most frequent words per language; English cut to 16 tokens,
Spanish to 16 plus the [start] / [end] markers. One pre-norm encoder and one
decoder block per model, width 64, 4 heads, a 128-wide feed-forward network,
dropout 0.1; the variant is used in every attention (encoder self, decoder
causal self and cross). The first 30,000 training pairs train (the
vocabularies come from all 83,276), the first 2,000 validation pairs choose
each run's best-validation-loss checkpoint; Adam at 1e-3 with a cosine
decay, batch 128, 3 epochs, 3 seeds. Test:
corpus BLEU (sacreBLEU) of greedy translations of the first 1,000 test
sentences against their lower-cased, punctuation-free references. Each
variant's best model is converted to int8 (int8_xnnpack, the fast phone CPU
file) and decodes the same sentences on LiteRT. Sized so that a full run
takes about 35 minutes on 2 idle CPU cores.

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
from keras_superattn import experiments  # noqa: E402
from keras_superattn import generation  # noqa: E402
from keras_superattn import layers  # noqa: E402
from keras_superattn import models  # noqa: E402
from keras_superattn import text  # noqa: E402

VOCABULARY_SIZE, SOURCE_LENGTH, TARGET_LENGTH = 4000, 16, 16
TRAIN_PAIRS, VALIDATION_PAIRS, BLEU_SENTENCES, EXAMPLES, CALIBRATION = 30000, 2000, 1000, 5, 200


def main():
    args = _common.parser(__doc__.split("\n")[0], seeds=3, epochs=3, batch_size=128).parse_args()
    variants = _common.settle(args, tuple(layers.VARIANTS), "translation_spa_eng")
    config = experiments.TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, learning_rate_schedule="cosine",
        loss="token_crossentropy", verbose=1 if not args.quick else 2,
        title=f"English-Spanish translation, {VOCABULARY_SIZE} words, d = 64, 4 heads, 1 + 1 blocks",
        record=dict(
            vocabulary_size=VOCABULARY_SIZE, source_length=SOURCE_LENGTH, target_length=TARGET_LENGTH,
            train_pairs=TRAIN_PAIRS, validation_pairs=VALIDATION_PAIRS, bleu_sentences=BLEU_SENTENCES,
        ),
    )
    train, validation, test = datasets.load_spa_eng(args.data_dir)
    if args.quick:
        train, validation, test = train[:2048], validation[:256], test[:32]
    validation, test = validation[:VALIDATION_PAIRS], test[:BLEU_SENTENCES]
    english = text.Tokenizer.adapt([e for e, _ in train], VOCABULARY_SIZE, SOURCE_LENGTH)
    spanish = text.Tokenizer.adapt([marked(s) for _, s in train], VOCABULARY_SIZE, TARGET_LENGTH + 1)
    os.makedirs(args.out, exist_ok=True)
    english.save(os.path.join(args.out, "english_vocabulary.json"))
    spanish.save(os.path.join(args.out, "spanish_vocabulary.json"))
    start, end = spanish.token_id(text.START), spanish.token_id(text.END)
    references = [text.standardize_text(s) for _, s in test]
    test_source = english([e for e, _ in test])

    def arrays(pairs):
        ids = spanish([marked(s) for _, s in pairs])
        return {"source": english([e for e, _ in pairs]), "target": ids[:, :-1]}, ids[:, 1:]

    def translate(predict):
        """Greedy ids and texts of the test sentences; `predict(target ids) -> logits`."""
        prompt = np.zeros((len(test), TARGET_LENGTH), "int32")
        prompt[:, 0] = start
        ids = generation.decode(predict, prompt, 1, stop_id=end)
        return ids, spanish.decode(ids[:, 1:], stop_at=text.END)

    def keras_translation(model):
        return translate(lambda target: model.predict({"source": test_source, "target": target}, verbose=0))

    def evaluate(model, variant):
        _, hypotheses = keras_translation(model)
        examples = zip(test[:EXAMPLES], references, hypotheses)
        return {
            "bleu": generation.corpus_bleu(hypotheses, references),
            "examples": [{"english": e, "reference": r, "translation": h} for (e, _), r, h in examples],
        }

    def convert(variant, checkpoint):
        path = os.path.join(args.out, "tflite", f"{variant}_int8.tflite")
        train_inputs, validation_inputs = data[0][0], data[1][0]
        conversion = deploy.convert(
            checkpoint, path, representative_data=train_inputs, num_calibration_samples=CALIBRATION,
            validation_data={name: x[:CALIBRATION] for name, x in validation_inputs.items()}, verbose=False,
        )
        keras_ids, _ = keras_translation(keras.saving.load_model(checkpoint))
        prompt = np.zeros_like(keras_ids)
        prompt[:, 0] = start
        ids, seconds = deploy.decode_greedy(path, prompt, 1, stop_id=end, inputs={"source": test_source})
        return {
            "bleu": generation.corpus_bleu(spanish.decode(ids[:, 1:], stop_at=text.END), references),
            "greedy_agreement": float(np.mean((ids == keras_ids).all(axis=1))),
            "token_agreement": conversion.agreement,
            "ms_per_token": 1e3 * seconds,
        }

    data = arrays(train[:TRAIN_PAIRS]), arrays(validation)
    results = experiments.compare_generators(
        lambda variant: models.translator(variant, VOCABULARY_SIZE, VOCABULARY_SIZE, SOURCE_LENGTH, TARGET_LENGTH),
        data, variants, range(args.seeds), args.out, config, evaluate, convert,
    )
    _common.generative_report(results, args.out, "bleu", higher_is_better=True)


def marked(spanish):
    return f"{text.START} {spanish} {text.END}"


if __name__ == "__main__":
    main()

"""A language model of IMDB reviews: every attention variant side by side.

Decoder-only (GPT-style) models on the raw IMDB reviews: lower-cased,
punctuation stripped, Keras' TextVectorization with the 4,000 most frequent
words; each review gives its first 33 tokens (inputs 32, targets shifted by
one; shorter reviews are padded and the padding is left out of the loss).
Two pre-norm decoder blocks, width 64, 4 heads, a 128-wide feed-forward
network, dropout 0.1. The 25,000 training reviews are split 90 / 10 into
training and validation (seeded); Adam at 1e-3 with a cosine decay, batch
128, 3 epochs, 2 seeds, best-validation-loss checkpoint. Test: perplexity
on the first 5,000 test reviews, and greedy and sampled continuations of a
few test prompts. Each variant's best model is converted to int8 and scored and
decoded on LiteRT. Sized so that a full run takes about 20 minutes on 2
idle CPU cores (the 4,000-word logits layer dominates).

    python tutorials/language_model.py --data-dir ../shared/data
    python tutorials/language_model.py --quick
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
from keras_superattn.training import experiments  # noqa: E402

VOCABULARY_SIZE, SEQUENCE_LENGTH, PROMPT_LENGTH, TEST_REVIEWS = 4000, 32, 8, 5000
EXAMPLES, INT8_SEQUENCES, CALIBRATION = 5, 200, 200


def main():
    args = _common.parser(__doc__.split("\n")[0], seeds=2, epochs=3, batch_size=128).parse_args()
    variants = _common.settle(args, tuple(layers.VARIANTS), "language_model")
    config, data, evaluate, convert = prepare(args)
    results = experiments.compare_generators(
        lambda variant: build(variant, args.attention_kwargs), data, variants, range(args.seeds), args.out, config,
        evaluate, convert,
    )
    _common.generative_report(results, args.out, "perplexity", higher_is_better=False)


def build(variant, attention_kwargs=None):
    return models.language_model(variant, VOCABULARY_SIZE, SEQUENCE_LENGTH, attention_kwargs=attention_kwargs)


def prepare(args):
    """The tutorial's training config, `(train, validation)` arrays, and its
    `evaluate` and `convert` hooks of `compare_generators`."""
    config = experiments.TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, learning_rate_schedule="cosine",
        loss="token_crossentropy", verbose=1 if not args.quick else 2,
        title=f"IMDB language model, {VOCABULARY_SIZE} words, l = {SEQUENCE_LENGTH}, d = 64, 4 heads, 2 blocks",
        record=dict(
            vocabulary_size=VOCABULARY_SIZE, sequence_length=SEQUENCE_LENGTH, test_reviews=TEST_REVIEWS,
            **_common.recorded(args),
        ),
    )
    reviews, test_reviews = datasets.load_imdb_text(args.data_dir)
    reviews = [reviews[i] for i in np.random.RandomState(0).permutation(len(reviews))]
    if args.quick:
        reviews, test_reviews = reviews[:2304], test_reviews[:256]
    test_reviews = test_reviews[:TEST_REVIEWS]
    held_out = len(reviews) // 10
    tokenizer = text.Tokenizer.adapt(reviews[held_out:], VOCABULARY_SIZE, SEQUENCE_LENGTH + 1)
    os.makedirs(args.out, exist_ok=True)
    tokenizer.save(os.path.join(args.out, "vocabulary.json"))

    def arrays(texts):
        ids = tokenizer(texts)
        return ids[:, :-1], ids[:, 1:]

    test_ids, test_labels = arrays(test_reviews)
    prompts = test_ids[:INT8_SEQUENCES].copy()
    prompts[:, PROMPT_LENGTH:] = 0

    def continue_prompts(predict, count, temperature=0.0):
        return generation.decode(predict, prompts[:count], PROMPT_LENGTH, temperature=temperature, seed=0)

    def evaluate(model, variant, seed):
        def predict(ids):
            return model.predict(ids, batch_size=256, verbose=0)

        greedy = tokenizer.decode(continue_prompts(predict, EXAMPLES))
        sampled = tokenizer.decode(continue_prompts(predict, EXAMPLES, temperature=0.8))
        return {
            "perplexity": generation.perplexity(predict, test_ids, test_labels),
            "examples": [{"greedy": g, "sampled (T = 0.8)": s} for g, s in zip(greedy, sampled)],
        }

    def convert(variant, checkpoint):
        path = os.path.join(args.out, "tflite", f"{variant}_int8.tflite")
        conversion = deploy.convert(
            checkpoint, path, representative_data=data[0][0], num_calibration_samples=CALIBRATION,
            validation_data=data[1][0][:CALIBRATION], verbose=False,
        )
        model = keras.saving.load_model(checkpoint)
        keras_ids = continue_prompts(lambda ids: model.predict(ids, verbose=0), INT8_SEQUENCES)
        ids, seconds = deploy.decode_greedy(path, prompts, PROMPT_LENGTH)
        file = deploy.TFLiteModel(path)
        sequences = slice(0, INT8_SEQUENCES)
        return {
            "perplexity": generation.perplexity(file.predict, test_ids[sequences], test_labels[sequences]),
            "float_perplexity_same_sequences": generation.perplexity(
                lambda ids: model.predict(ids, verbose=0), test_ids[sequences], test_labels[sequences]
            ),
            "greedy_agreement": float(np.mean((ids == keras_ids).all(axis=1))),
            "token_agreement": conversion.agreement,
            "ms_per_token": 1e3 * seconds,
        }

    data = arrays(reviews[held_out:]), arrays(reviews[:held_out])
    return config, data, evaluate, convert


if __name__ == "__main__":
    main()

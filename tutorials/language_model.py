"""A language model of IMDB reviews: every attention variant side by side.

Decoder-only (GPT-style) models on the raw IMDB reviews, text as it is
(case and punctuation kept, `<br />` as spaces). A SentencePiece model of
4,000 subwords learnt from the training reviews; each review is cut into
consecutive windows of 64 pieces (inputs, and the targets shifted by one, so
that every piece but a review's first is predicted once; a review's last
window is padded and the padding is left out of the loss). Two pre-norm
decoder blocks, width 128, 4 heads, a 256-wide feed-forward network,
dropout 0.1. The 25,000 training reviews are split 90 / 10 into training
and validation (seeded); Adam at 1e-3 with a cosine decay, batch 128, 3
epochs, 2 seeds, best-validation-loss checkpoint; on TensorFlow the
training step is compiled with XLA (benchmarks/training_speed.py: 0.72-0.78
of the plain step's time here, and JAX's and PyTorch's steps take 2.0x and
1.4x). Test, on the windows of the first 1,000 test reviews: perplexity per
piece and bits per character (which does not depend on the vocabulary, so
runs with different tokenisations compare), and greedy and sampled
continuations of test prompts (their first 16 pieces, continued to 64).
Each variant's best model is converted to int8, scored and decoded on
LiteRT, and converted again to an int8 file with a cached decoding step
(`deploy.convert_generator`); with `--qat-epochs N`, also after N epochs of
quantization-aware fine-tuning (`tflite/<variant>_qat_int8.tflite`). A run
resumes where it stopped when run again with the same --out.

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
from keras_superattn import training  # noqa: E402
from keras_superattn.training import int8_reports  # noqa: E402
from keras_superattn.training import reporting  # noqa: E402

VOCABULARY_SIZE, SEQUENCE_LENGTH, PROMPT_LENGTH, TEST_REVIEWS = 4000, 64, 16, 1000
WIDTH, HEADS, FEEDFORWARD, LAYERS = 128, 4, 256, 2
VALIDATION_WINDOWS, EXAMPLES, INT8_SEQUENCES, CALIBRATION = 5000, 5, 200, 200


def main():
    args = _common.parser(__doc__.split("\n")[0], seeds=2, epochs=3, batch_size=128, qat=True).parse_args()
    variants = _common.settle(args, tuple(layers.VARIANTS), "language_model")
    config, data, evaluate, convert = prepare(args)
    results = training.compare_generators(
        lambda variant: build(variant, args.attention_kwargs, quick=args.quick), data, variants, range(args.seeds),
        args.out, config, evaluate, convert,
    )
    reporting.write_generative_report(
        results, args.out, "perplexity", higher_is_better=False, also=["bits_per_character"]
    )


def vocabulary_size(quick):
    # 1,024 reviews (--quick) hold too few distinct pieces for 4,000.
    return 500 if quick else VOCABULARY_SIZE


def build(variant, attention_kwargs=None, quick=False):
    return models.language_model(
        variant, vocabulary_size(quick), SEQUENCE_LENGTH, embedding_dim=WIDTH, num_heads=HEADS,
        intermediate_dim=FEEDFORWARD, num_layers=LAYERS, attention_kwargs=attention_kwargs,
    )


def prepare(args):
    """The tutorial's training config, `(train, validation)` arrays, and its
    `evaluate` and `convert` hooks of `compare_generators`."""
    pieces = vocabulary_size(args.quick)
    config = training.TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, learning_rate_schedule="cosine",
        # XLA's compile costs a quick run more than it saves (it is tested in test_experiments).
        loss="token_crossentropy", verbose=1 if not args.quick else 2, tensorflow_xla=not args.quick,
        title=(
            f"IMDB language model, {pieces} subwords, l = {SEQUENCE_LENGTH}, d = {WIDTH}, {HEADS} heads, "
            f"{LAYERS} blocks"
        ),
        record=dict(
            vocabulary_size=pieces, sequence_length=SEQUENCE_LENGTH, width=WIDTH, heads=HEADS,
            feedforward=FEEDFORWARD, layers=LAYERS, test_reviews=TEST_REVIEWS,
            validation_windows=VALIDATION_WINDOWS, **_common.recorded(args),
        ),
    )
    reviews, test_reviews = datasets.load_imdb_text(args.data_dir)
    reviews = [reviews[i] for i in np.random.RandomState(0).permutation(len(reviews))]
    if args.quick:
        reviews, test_reviews = reviews[:1024], test_reviews[:64]
    held_out = len(reviews) // 10
    tokenizer = text.SubwordTokenizer.train(reviews[held_out:], pieces, SEQUENCE_LENGTH + 1)
    os.makedirs(args.out, exist_ok=True)
    tokenizer.save(os.path.join(args.out, "subwords.model"))

    def arrays(texts):
        return text.windows(tokenizer.encode(texts), SEQUENCE_LENGTH)

    test_ids, test_labels = arrays(test_reviews[:TEST_REVIEWS])
    characters = tokenizer.character_count(test_labels)
    first_windows = tokenizer(test_reviews[:INT8_SEQUENCES])[:, :SEQUENCE_LENGTH]
    prompts = first_windows.copy()
    prompts[:, PROMPT_LENGTH:] = 0

    def continue_prompts(predict, count, temperature=0.0):
        return generation.decode(predict, prompts[:count], PROMPT_LENGTH, temperature=temperature, seed=0)

    def evaluate(model, variant, seed):
        def predict(ids):
            return model.predict(ids, batch_size=256, verbose=0)

        decoding = generation.batched_predict(model, batch_size=256)
        greedy = tokenizer.decode(continue_prompts(decoding, EXAMPLES)[:, PROMPT_LENGTH:])
        sampled = tokenizer.decode(continue_prompts(decoding, EXAMPLES, temperature=0.8)[:, PROMPT_LENGTH:])
        return {
            "perplexity": generation.perplexity(predict, test_ids, test_labels),
            "bits_per_character": generation.bits_per_character(predict, test_ids, test_labels, characters),
            "examples": [
                {"prompt": p, "greedy": g, "sampled (T = 0.8)": s}
                for p, g, s in zip(tokenizer.decode(prompts[:EXAMPLES]), greedy, sampled)
            ],
        }

    sequences = slice(0, INT8_SEQUENCES)

    def file_scores(path, keras_ids):
        """An int8 file's perplexity, greedy continuations and speed."""
        ids, seconds = deploy.decode_greedy(path, prompts, PROMPT_LENGTH)
        file = deploy.TFLiteModel(path)
        return {
            "perplexity": generation.perplexity(file.predict, test_ids[sequences], test_labels[sequences]),
            "greedy_agreement": generation.sequence_agreement(ids, keras_ids),
            "ms_per_token": 1e3 * seconds,
        }

    def convert(variant, checkpoint):
        validation_inputs = data[1][0][:CALIBRATION]
        model = keras.saving.load_model(checkpoint)
        keras_ids = continue_prompts(generation.batched_predict(model), INT8_SEQUENCES)

        def post_training(quantization):
            return int8_reports.post_training_int8_scores(
                args.out, variant, quantization, checkpoint, data[0][0], CALIBRATION, validation_inputs,
                lambda path: file_scores(path, keras_ids),
            )

        scores = {
            # Its check continues the first quarter of each window: PROMPT_LENGTH pieces, as above.
            "cached": int8_reports.cached_int8_scores(args.out, variant, checkpoint, data[0][0], first_windows),
            **post_training("int8"),
            "xnnpack": post_training("int8_xnnpack"),
            "float_perplexity_same_sequences": generation.perplexity(
                lambda ids: model.predict(ids, verbose=0), test_ids[sequences], test_labels[sequences]
            ),
        }
        if args.qat_epochs:
            scores["qat"] = int8_reports.quantization_aware_int8_scores(
                args.out, variant, checkpoint, data, config, args.qat_epochs, validation_inputs,
                lambda path: file_scores(path, keras_ids),
            )
        return scores

    train = arrays(reviews[held_out:])
    validation = tuple(part[:VALIDATION_WINDOWS] for part in arrays(reviews[:held_out]))
    data = train, validation
    return config, data, evaluate, convert


if __name__ == "__main__":
    main()

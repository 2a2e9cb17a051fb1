"""Sentiment on IMDB: every attention variant side by side, the paper's protocol.

The reference setting of arXiv 2403.01643 (docs/paper.md): the 20,000 most
frequent words, reviews cut to their last 32 tokens, a token + position
embedding of width 32, one post-norm encoder block with 4 heads and a
32-wide feed-forward network, average pooling and a small head. Adam at
1e-3, batch 64, 10 epochs, 10% of the training set held out for validation;
the checkpoint with the best validation accuracy is scored on the 25,000 test
reviews. Five seeds per variant, plus Keras' MultiHeadAttention as an outside
reference.

    python tutorials/sentiment_imdb.py --data-dir ../shared/data   # full run
    python tutorials/sentiment_imdb.py --quick                     # under a minute

Writes results.json, results.md, results.png, models/*.keras and the best
models as int8 tflite/*.tflite to --out.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from keras_superattn import datasets  # noqa: E402
from keras_superattn import distribution  # noqa: E402
from keras_superattn import layers  # noqa: E402
from keras_superattn import models  # noqa: E402
from keras_superattn import training  # noqa: E402

VARIANTS = (*layers.VARIANTS, "mha")
NUM_WORDS, SEQUENCE_LENGTH = 20000, 32


def main():
    args = _common.parser(__doc__.split("\n")[0], seeds=5, epochs=10, batch_size=64, qat=True).parse_args()
    variants = _common.settle(args, VARIANTS, "sentiment_imdb")
    devices = distribution.use_data_parallel() if args.data_parallel else 1
    config = training.TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, loss="binary_crossentropy",
        validation_split=0.1, verbose=1 if not args.quick else 2, title="IMDB sentiment, l = d = 32, 4 heads",
        record=dict(devices=devices, num_words=NUM_WORDS, sequence_length=SEQUENCE_LENGTH, **_common.recorded(args)),
    )
    data = datasets.imdb_sequences(NUM_WORDS, SEQUENCE_LENGTH, args.data_dir)
    if args.quick:
        data = _common.subset(data, train=512, test=256)

    def build(variant):
        return models.text_classifier(variant, NUM_WORDS, SEQUENCE_LENGTH, attention_kwargs=args.attention_kwargs)

    training.compare_variants(
        build, data, variants, range(args.seeds), args.out, config, qat_epochs=args.qat_epochs or 0
    )


if __name__ == "__main__":
    main()

"""Does Super Attention's lead grow with model size? IMDB at three sizes.

The paper's Figure 4 (Amazon Reviews, 5M-25M parameters) says Super pulls
further ahead of SDPA as models grow. Amazon Reviews cannot be obtained
here, so this study grows the IMDB reference setting (docs/paper.md) instead:
the same data (20,000 words, last 32 tokens), splits and training rules at
every size (Adam 1e-3, batch 64, 10 epochs, 10% of the training set held
out, the best-validation-accuracy checkpoint scored on the 25,000 test
reviews). Models grow in width and depth together, 4 heads and a
feed-forward width equal to the model width at every size, as in the
reference; the token embedding counts in the parameters, as the paper
counts them. One change to the reference at every size: the head has no
6-unit ReLU layer (average pooling, dropout, the sigmoid unit). With it,
the two larger sizes did not train at all (accuracy 50% for 10 epochs; its
six ReLUs die), while the smallest trains alike with or without it.

    python tutorials/scaling_imdb.py --data-dir ../shared/data --out reproduction/scaling
    python tutorials/scaling_imdb.py --sizes large --out reproduction/scaling   # a second process
    python tutorials/scaling_imdb.py --report-only --out reproduction/scaling
    python tutorials/scaling_imdb.py --quick                                     # under two minutes

Every size is a `compare_variants` run in `<out>/<size>/`: each finished
(variant, seed) is recorded in `<size>/runs/` as it ends and an interrupted
run resumes from its last finished epoch, so the study spans sittings and
two processes may share it when they take different `--sizes`. Seeds come
in passes: every size gets its first two seeds before any gets a third.
After each size, `scaling.json` (one record per run), `scaling.md` and
`scaling.png` in `<out>` are rewritten from all the runs recorded so far.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from keras_superattn import datasets  # noqa: E402
from keras_superattn import layers  # noqa: E402
from keras_superattn import models  # noqa: E402
from keras_superattn import training  # noqa: E402
from keras_superattn.training import scaling  # noqa: E402

NUM_WORDS, SEQUENCE_LENGTH, NUM_HEADS = 20000, 32, 4
# Width and depth grow together; the smallest is the paper's reference setting.
SIZES = {
    "small": dict(embedding_dim=32, num_layers=1),
    "medium": dict(embedding_dim=128, num_layers=2),
    "large": dict(embedding_dim=256, num_layers=3),
}
QUICK_SIZES = {"small": dict(embedding_dim=16, num_layers=1), "large": dict(embedding_dim=32, num_layers=2)}
FIRST_PASS_SEEDS = 2


def main():
    parser = _common.parser(__doc__.split("\n")[0], seeds=3, epochs=10, batch_size=64)
    parser.add_argument("--sizes", default=None, help=f"comma-separated subset of {list(SIZES)}")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from the recorded runs")
    args = parser.parse_args()
    variants = _common.settle(args, layers.VARIANTS, "scaling_imdb")
    sizes = QUICK_SIZES if args.quick else SIZES
    chosen = args.sizes.split(",") if args.sizes else list(sizes)
    unknown = sorted(set(chosen) - set(sizes))
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; choose from {list(sizes)}")
    if not args.report_only:
        data = datasets.imdb_sequences(NUM_WORDS, SEQUENCE_LENGTH, args.data_dir)
        if args.quick:
            data = _common.subset(data, train=512, test=256)
        passes = sorted({min(FIRST_PASS_SEEDS, args.seeds), args.seeds})
        for seeds in passes:
            for size in chosen:
                train_size(args, data, variants, size, sizes[size], seeds)
                scaling.write_report(args.out, list(sizes))
    scaling.write_report(args.out, list(sizes))


def train_size(args, data, variants, size, shape, seeds):
    config = training.TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3, loss="binary_crossentropy",
        validation_split=0.1, verbose=2, title=f"IMDB sentiment, {size}: d = {shape['embedding_dim']}, "
        f"{shape['num_layers']} block(s), {NUM_HEADS} heads",
        record=dict(
            size=size, num_words=NUM_WORDS, sequence_length=SEQUENCE_LENGTH, num_heads=NUM_HEADS, hidden_dim=0, **shape
        ),
    )

    def build(variant):
        return models.text_classifier(
            variant, NUM_WORDS, SEQUENCE_LENGTH, num_heads=NUM_HEADS, intermediate_dim=shape["embedding_dim"],
            hidden_dim=0, attention_kwargs=args.attention_kwargs, **shape,
        )

    training.compare_variants(build, data, variants, range(seeds), os.path.join(args.out, size), config, int8=False)


if __name__ == "__main__":
    main()

"""A Vision Transformer on CIFAR-10: every attention variant side by side.

32 x 32 x 3 images cut into 4 x 4 patches (64 patches, a 64 x 64 alignment
kernel for Super Attention), embedding width 64, 4 heads, 4 pre-norm blocks
with a 128-wide GELU feed-forward network. Adam at 1e-3, batch 128, 10% of
the training set for validation. With the local `cifar10.npz` only the first
20,000 training images exist, so accuracies are below full-data numbers.

    python tutorials/vit_cifar10.py --data-dir ../shared/data
    python tutorials/vit_cifar10.py --quick
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from keras_superattn import datasets  # noqa: E402
from keras_superattn import experiments  # noqa: E402
from keras_superattn import models  # noqa: E402

VARIANTS = ("standard", "optimized", "efficient", "super")


def main():
    args = _common.parser(__doc__.split("\n")[0], seeds=3, epochs=10, batch_size=128).parse_args()
    variants = _common.settle(args, VARIANTS, "vit_cifar10")
    devices = experiments.use_data_parallel() if args.data_parallel else 1
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(args.data_dir)
    data = (datasets.images_as_floats(x_train), y_train), (datasets.images_as_floats(x_test), y_test)
    if args.quick:
        data = _common.subset(data, train=512, test=256)

    def build(variant):
        return models.vit_classifier(variant, (32, 32, 3), patch_size=4, num_classes=10)

    experiments.compare_variants(
        build, data, variants, range(args.seeds), args.out,
        title="CIFAR-10 ViT, 64 patches, d = 64, 4 heads, 4 blocks", epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=1e-3, loss="sparse_categorical_crossentropy",
        validation_split=0.1, verbose=1 if not args.quick else 2, devices=devices, patch_size=4,
    )


if __name__ == "__main__":
    main()

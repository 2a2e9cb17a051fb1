"""A Vision Transformer on MNIST: every attention variant side by side.

28 x 28 images cut into 7 x 7 patches (16 patches, so Super Attention's
alignment kernel is 16 x 16), embedding width 64, 4 heads, 4 pre-norm
encoder blocks with a 128-wide GELU feed-forward network, average pooling,
softmax. Adam at 1e-3, batch 128, 10% of the training set held out for
validation, best-validation checkpoint scored on the 10,000 test images.
Sized so a full run fits a 2-core CPU.

    python tutorials/vit_mnist.py --data-dir ../shared/data
    python tutorials/vit_mnist.py --quick
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
    args = _common.parser(__doc__.split("\n")[0], seeds=3, epochs=5, batch_size=128).parse_args()
    variants = _common.settle(args, VARIANTS, "vit_mnist")
    devices = experiments.use_data_parallel() if args.data_parallel else 1
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(args.data_dir)
    data = (datasets.images_as_floats(x_train), y_train), (datasets.images_as_floats(x_test), y_test)
    if args.quick:
        data = _common.subset(data, train=512, test=256)

    def build(variant):
        return models.vit_classifier(variant, (28, 28, 1), patch_size=7, num_classes=10)

    experiments.compare_variants(
        build, data, variants, range(args.seeds), args.out,
        title="MNIST ViT, 16 patches, d = 64, 4 heads, 4 blocks", epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=1e-3, loss="sparse_categorical_crossentropy",
        validation_split=0.1, verbose=1 if not args.quick else 2, devices=devices, patch_size=7,
    )


if __name__ == "__main__":
    main()

"""A Vision Transformer on CIFAR-10: every attention variant side by side.

32 x 32 x 3 images cut into 4 x 4 patches (64 patches, a 64 x 64 alignment
kernel for Super Attention), embedding width 64, 4 heads, 4 pre-norm blocks
with a 128-wide GELU feed-forward network. Adam at 1e-3 with a cosine decay
to zero, batch 128, 10 epochs, 10% of the training set for validation. With
the local `cifar10.npz` only the first 20,000 training images exist, so
accuracies are below full-data numbers.
A full run (4 variants x 3 seeds) takes about 35 minutes on 2 CPU cores;
its results are in REPRODUCTION.md.

    python tutorials/vit_cifar10.py --data-dir ../shared/data
    python tutorials/vit_cifar10.py --quick
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from keras_superattn import datasets  # noqa: E402

if __name__ == "__main__":
    _common.vit_tutorial(
        __doc__, "vit_cifar10", datasets.load_cifar10, image_shape=(32, 32, 3), patch_size=4,
        epochs=10, title="CIFAR-10 ViT, 64 patches, d = 64, 4 heads, 4 blocks",
    )

"""A Vision Transformer on MNIST: every attention variant side by side.

28 x 28 images cut into 7 x 7 patches (16 patches, so Super Attention's
alignment kernel is 16 x 16), embedding width 64, 4 heads, 4 pre-norm
encoder blocks with a 128-wide GELU feed-forward network, average pooling,
softmax. Adam at 1e-3 with a cosine decay to zero, batch 128, 12 epochs,
10% of the training set held out for validation, best-validation checkpoint
scored on the 10,000 test images. Sized so a full run (4 variants x 3 seeds)
takes about 35 minutes on 2 CPU cores; its results are in REPRODUCTION.md.

    python tutorials/vit_mnist.py --data-dir ../shared/data
    python tutorials/vit_mnist.py --quick
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from keras_superattn import datasets  # noqa: E402

if __name__ == "__main__":
    _common.vit_tutorial(
        __doc__, "vit_mnist", datasets.load_mnist, image_shape=(28, 28, 1), patch_size=7,
        epochs=12, title="MNIST ViT, 16 patches, d = 64, 4 heads, 4 blocks",
    )

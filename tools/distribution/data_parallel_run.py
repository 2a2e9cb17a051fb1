"""Trains the scaling study's smallest IMDB model a few steps with DataParallel,
in one process or as one of several (`distribution.initialize_processes`);
prints the losses as JSON. Run by tests/training/test_distribution.py:

    python tools/distribution/data_parallel_run.py                    # one process, the whole batch
    python tools/distribution/data_parallel_run.py 127.0.0.1:1234 2 0 # rank 0 of 2 (and rank 1 beside it)

Every process builds the same seeded model and draws the same batches; each
trains on its slice of every global batch, and DataParallel averages the
gradients, so the losses are those of one process on the whole batch.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_superattn import distribution  # noqa: E402
from keras_superattn import models  # noqa: E402

STEPS, BATCH, WORDS, LENGTH = 4, 32, 20000, 32


def main(arguments):
    rank, processes = 0, 1
    if arguments:
        address, processes, rank = arguments[0], int(arguments[1]), int(arguments[2])
        distribution.initialize_processes(address, processes, rank)
    distribution.use_data_parallel()
    keras.utils.set_random_seed(0)
    # The scaling study's smallest size (tutorials/scaling_imdb.py), without dropout so
    # that the processes' random streams do not matter.
    model = models.text_classifier("super", WORDS, LENGTH, embedding_dim=32, hidden_dim=0, dropout=0.0)
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(1, WORDS, (STEPS * BATCH, LENGTH)).astype("int32")
    y = rng.integers(0, 2, (STEPS * BATCH, 1)).astype("float32")
    share = BATCH // processes
    losses = []
    for step in range(STEPS):
        rows = slice(step * BATCH + rank * share, step * BATCH + (rank + 1) * share)
        losses.append(float(model.train_on_batch(x[rows], y[rows])))
    print(json.dumps({"rank": rank, "processes": processes, "devices": len(keras.distribution.list_devices()),
                      "losses": losses}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

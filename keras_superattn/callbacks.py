"""Training callbacks of the experiments: epoch timing and safe best checkpoints."""

import math
import os
import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each training epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever `val_accuracy` beats its best so far.

    Like `keras.callbacks.ModelCheckpoint(save_best_only=True)`, but each
    file is written under a temporary name beside `path` and then renamed
    onto it, so an interrupted save never replaces a good checkpoint with a
    partial one. `best` is the best validation accuracy seen.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.best = -math.inf

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy")
        if accuracy is None:
            raise ValueError("BestCheckpoint needs `val_accuracy`: fit with validation data")
        if accuracy > self.best:
            self.best = float(accuracy)
            save_model_atomically(self.model, self.path)


def save_model_atomically(model, path):
    """`model.save(path)` that leaves either the old file or the new one."""
    directory, name = os.path.split(os.path.abspath(path))
    partial = os.path.join(directory, f".{name}.partial.keras")
    try:
        model.save(partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)

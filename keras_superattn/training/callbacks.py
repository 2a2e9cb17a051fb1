"""Training callbacks of the experiments: epoch timing and safe best checkpoints."""

import json
import math
import os
import time

import keras

from keras_superattn._files import save_model_atomically
from keras_superattn._files import write_json_atomically


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each training epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever the `monitor` metric beats its best so far.

    Like `keras.callbacks.ModelCheckpoint(save_best_only=True)`, but each
    file is written under a temporary name beside `path` and then renamed
    onto it, so an interrupted save never replaces a good checkpoint with a
    partial one. `best` is the best value seen: the highest, or the lowest
    for a loss (a `monitor` ending in `loss`). It is kept beside the
    checkpoint (`<path>.best.json`) until training ends, so that a run that
    `keras.callbacks.BackupAndRestore` resumes (`resume=True`) only replaces
    the checkpoint with a better epoch.
    """

    def __init__(self, path, monitor="val_accuracy", resume=False):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.sign = -1.0 if monitor.endswith("loss") else 1.0
        self.best = -self.sign * math.inf
        self.state_path = f"{path}.best.json"
        if resume and os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.best = json.load(f)["best"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"BestCheckpoint needs `{self.monitor}`: fit with validation data")
        if self.sign * value > self.sign * self.best:
            self.best = float(value)
            save_model_atomically(self.model, self.path)
            write_json_atomically({"best": self.best}, self.state_path)

    def on_train_end(self, logs=None):
        if os.path.exists(self.state_path):
            os.remove(self.state_path)


class EpochScore(keras.callbacks.Callback):
    """Records `score(model)` after every epoch in a JSON file, `{epoch: value}`
    with epochs counted from 1, e.g. a learning curve of validation BLEU.

    The file is read back first, so a run resumed in a later sitting adds
    its epochs to the earlier ones (an epoch run again replaces its value).
    """

    def __init__(self, path, score):
        super().__init__()
        self.path = path
        self.score = score

    def on_epoch_end(self, epoch, logs=None):
        scores = read_scores(self.path)
        scores[str(epoch + 1)] = float(self.score(self.model))
        write_json_atomically(scores, self.path)


def read_scores(path):
    """The `{epoch: value}` an `EpochScore` wrote to `path`; empty if none."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)

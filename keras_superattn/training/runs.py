"""One training run of a comparison: its config, its fit with the best
checkpoint kept, and the record that lets a comparison resume."""

import dataclasses
import json
import math
import os

import keras
import numpy as np

from keras_superattn._files import write_json_atomically
from keras_superattn._validation import check_positive_int
from keras_superattn.generation import token_crossentropy
from keras_superattn.layers.transformer_block import TransformerBlock
from keras_superattn.training.callbacks import BestCheckpoint
from keras_superattn.training.callbacks import EpochTimer

# The package's own losses, by the name a `TrainingConfig` gives them.
LOSSES = {"token_crossentropy": token_crossentropy}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How every run of a comparison trains; checked when it is made.

    Args:
        epochs: int. Epochs per run.
        batch_size: int.
        learning_rate: float. Adam's (initial) learning rate.
        loss: a Keras loss name, e.g. `"binary_crossentropy"`, or
            `"token_crossentropy"` (`generation.token_crossentropy`).
        validation_split: float in `(0, 1)`. Share of the training data held
            out to choose each run's best epoch and each variant's best run.
        learning_rate_schedule: `"constant"`, or `"cosine"` to decay the
            learning rate to zero over exactly the steps of the run.
        verbose: `fit`'s verbosity.
        tensorflow_xla: bool. On TensorFlow, compile the training step with
            XLA (`jit_compile=True`), which Keras leaves off on a CPU; other
            backends keep Keras' default (JAX compiles anyway).
        title: title of the table and plot.
        record: further settings to record in `results.json`, e.g. the
            model's sizes; they do not change the training.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    loss: str
    validation_split: float = 0.1
    learning_rate_schedule: str = "constant"
    verbose: int = 2
    tensorflow_xla: bool = False
    title: str = "results"
    record: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if not self.learning_rate > 0:
            raise ValueError(
                f"Argument `learning_rate` must be positive. Received: learning_rate={self.learning_rate!r}"
            )
        if not 0 < self.validation_split < 1:
            raise ValueError(
                "Argument `validation_split` must be in (0, 1): the best checkpoint is chosen on it. "
                f"Received: validation_split={self.validation_split!r}"
            )
        if self.learning_rate_schedule not in ("constant", "cosine"):
            raise ValueError(
                "Argument `learning_rate_schedule` must be 'constant' or 'cosine'. "
                f"Received: learning_rate_schedule={self.learning_rate_schedule!r}"
            )

    def as_record(self):
        """The settings as `results.json` records them (flat, without `verbose`)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del fields["verbose"], fields["record"]
        if not self.tensorflow_xla:  # recorded only when set: runs recorded before it existed resume
            del fields["tensorflow_xla"]
        return {**fields, **self.record}


def attention_params(model):
    """Parameters of the attention layers inside a model's transformer blocks."""
    return sum(
        attention.count_params()
        for layer in model.layers
        if isinstance(layer, TransformerBlock)
        for attention in layer.attention_layers
    )


def adam(config, train_samples, split=True):
    """Adam at `config.learning_rate`, which the `"cosine"` schedule decays
    to zero along a cosine over exactly the steps `fit` will take (on
    `train_samples` less the validation split when `split`)."""
    learning_rate = config.learning_rate
    if config.learning_rate_schedule == "cosine":
        fit_samples = int(train_samples * (1 - config.validation_split)) if split else train_samples  # as fit()
        steps = config.epochs * math.ceil(fit_samples / config.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    return keras.optimizers.Adam(learning_rate)


def fit_best(build_model, variant, seed, config, out_dir, train, validation, metrics, callbacks=()):
    """Fits one model, keeping the checkpoint of its best validation epoch
    (by accuracy with metrics, else by loss; `validation` None: the
    config's split of `train`). Returns `(run record, best model)`.

    The state after each epoch is backed up in `out_dir/backup/`, so a run
    that was interrupted continues from its last finished epoch (Keras'
    `BackupAndRestore`); the backup is removed when the run ends."""
    keras.utils.set_random_seed(seed)
    model = build_model(variant)
    samples = len(keras.tree.flatten(train[0])[0])
    loss = LOSSES.get(config.loss, config.loss)
    xla = config.tensorflow_xla and keras.backend.backend() == "tensorflow"
    model.compile(
        optimizer=adam(config, samples, split=validation is None), loss=loss, metrics=metrics,
        jit_compile=True if xla else "auto",
    )
    path = os.path.join(out_dir, "models", f"{variant}_seed{seed}.keras")
    backup_dir = os.path.join(out_dir, "backup", f"{variant}_seed{seed}")
    resume = os.path.isdir(backup_dir)
    timer = EpochTimer()
    checkpoint = BestCheckpoint(path, monitor="val_accuracy" if metrics else "val_loss", resume=resume)
    print(f"\n--- {variant}, seed {seed}{' (resumed)' if resume else ''} ---", flush=True)
    split = dict(validation_split=config.validation_split) if validation is None else dict(validation_data=validation)
    model.fit(
        *train, batch_size=config.batch_size, epochs=config.epochs, verbose=config.verbose,
        callbacks=[checkpoint, timer, *callbacks, keras.callbacks.BackupAndRestore(backup_dir)], **split,
    )
    run = {
        "best": checkpoint.best,
        # Of this sitting's epochs (a resumed run's earlier ones were timed before).
        "epoch_seconds": float(np.mean(timer.seconds)) if timer.seconds else math.nan,
        "attention_params": attention_params(model),
        "total_params": model.count_params(),
        "checkpoint": os.path.relpath(path, out_dir),
    }
    return run, keras.saving.load_model(path)


class RunRecord:
    """Each finished (variant, seed) run of a comparison, kept in
    `out_dir/runs/<variant>_seed<k>.json` as soon as it ends, so that a rerun
    with the same `out_dir` skips it. The folder also keeps the config: runs
    under another config are not mixed in."""

    def __init__(self, out_dir, config):
        self.directory = os.path.join(out_dir, "runs")
        os.makedirs(self.directory, exist_ok=True)
        os.makedirs(os.path.join(out_dir, "models"), exist_ok=True)
        settings = os.path.join(self.directory, "config.json")
        # Through JSON, so that tuples and lists compare alike.
        wanted = json.loads(json.dumps(config.as_record()))
        if os.path.exists(settings):
            with open(settings) as f:
                recorded = json.load(f)
            if recorded != wanted:
                raise ValueError(
                    f"The runs recorded in {self.directory} were trained with another config; resume them with "
                    f"that config or choose another `out_dir`. Recorded: {recorded}, received: {wanted}"
                )
        write_json_atomically(wanted, settings)

    def __call__(self, variant, seed, train):
        """The record of run (variant, seed): read, or made by `train(variant, seed)` and written."""
        path = os.path.join(self.directory, f"{variant}_seed{seed}.json")
        if os.path.exists(path):
            print(f"\n--- {variant}, seed {seed}: recorded in {path} ---", flush=True)
            with open(path) as f:
                return json.load(f)
        run = train(variant, seed)
        write_json_atomically(run, path)
        return run

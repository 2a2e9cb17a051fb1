"""The small harness the benchmark scripts share: options, scratch space, tables, JSON.

Every script takes `--rounds`, `--out` (also write what it measured as JSON,
with the machine and versions) and `--smoke`: tiny sizes and two rounds, so
that a test (tests/benchmarks/) runs every script whole in seconds; a smoke
run's numbers mean nothing. The scripts import it as `import harness`: a
script's own folder is on Python's path when it runs.
"""

import argparse
import contextlib
import json
import platform
import tempfile
import warnings

import keras

from keras_superattn import datasets
from keras_superattn import models


def parser(doc, rounds=None):
    """The common options; `doc` is the script's docstring, `rounds` its
    default number of timed rounds (None: the script times nothing)."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    if rounds is not None:
        p.add_argument("--rounds", type=_positive, default=rounds, help=f"timed rounds (default {rounds})")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    p.add_argument(
        "--smoke", action="store_true", help="tiny sizes, 2 rounds: checks that the script runs; numbers mean nothing"
    )
    return p


def parse(p):
    args = p.parse_args()
    if args.smoke and "rounds" in args:
        args.rounds = 2
    return args


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


@contextlib.contextmanager
def scratch():
    """A temporary folder for the files a script converts; conversion
    warnings silenced, since untrained models' agreement is not the point."""
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield folder


def table(header, rows):
    """A markdown table of `header` (column names) and `rows` (lists of cells)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write(args, results, **settings):
    """Writes `results`, the settings and the machine and versions to `args.out`, if given."""
    if not args.out:
        return
    report = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "rounds": getattr(args, "rounds", None),
        "smoke": args.smoke,
        **settings,
        "results": results,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)


def mnist(data_dir, train=12000, test=1000):
    """The first `train` training and `test` test MNIST images, as floats, with labels."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir)
    return (
        (datasets.images_as_floats(x_train[:train]), y_train[:train]),
        (datasets.images_as_floats(x_test[:test]), y_test[:test]),
    )


def trained_vit(variant, x_train, y_train, epochs=2):
    """The int8 benchmarks' MNIST ViT, seeded, after `epochs` at Adam 1e-3, batch 64."""
    keras.utils.set_random_seed(0)
    model = models.vit_classifier(variant, (28, 28, 1), patch_size=7, num_classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
    return model

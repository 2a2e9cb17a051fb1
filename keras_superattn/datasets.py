"""IMDB, MNIST, CIFAR-10 and English-Spanish pairs: Keras' downloads, or local files.

Each loader takes `data_dir`. When it is None, the `KERAS_SUPERATTN_DATA`
environment variable is used; when that is unset too, Keras' own loader runs
(and downloads). With a data directory the local files are required: a
missing or unreadable file is an error naming the path, never a silent
download. The local files are those described in the project README:
`mnist.npz`, `cifar10.npz`, `aclImdb_v1_labeled.tar.xz`,
`imdb_word_index.json` and `spa-eng.zip`.
"""

import json
import os
import random
import tarfile
import zipfile

import keras
import numpy as np

DATA_ENV = "KERAS_SUPERATTN_DATA"

# Keras' IMDB encoding: 0 pads, 1 starts a review, 2 is an unknown word, and
# a word of frequency rank r gets id r + index_from.
START_CHAR, OOV_CHAR, INDEX_FROM = 1, 2, 3
# keras.preprocessing.text's default filters: Keras' imdb.npz was tokenised
# this way (its word index keeps apostrophes and splits on hyphens).
_FILTERS = str.maketrans({c: " " for c in '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'})
_SHUFFLE_SEED = 113  # the seed keras.datasets.imdb shuffles with
SPA_ENG_URL = "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"


def data_dir_or_env(data_dir=None):
    """`data_dir`, else `$KERAS_SUPERATTN_DATA`, else None (use Keras' download)."""
    return data_dir if data_dir is not None else os.environ.get(DATA_ENV)


def _local_file(data_dir, name):
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Expected the local dataset file {name} at {path}, but it does not exist.")
    return path


def _load_npz(path, expected):
    """Loads `x_train, y_train, x_test, y_test`, checking keys and shapes."""
    try:
        with np.load(path) as f:
            arrays = {key: f[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"Could not read {path} as an .npz with x_train, y_train, x_test, y_test: {error}"
        ) from error
    for key, shape in expected.items():
        if arrays[key].shape[1:] != shape:
            raise ValueError(
                f"{path}: expected {key} of shape (N, {', '.join(map(str, shape))}). "
                f"Received: {arrays[key].shape}"
            )
    return (arrays["x_train"], arrays["y_train"].reshape(-1)), (arrays["x_test"], arrays["y_test"].reshape(-1))


def load_mnist(data_dir=None):
    """MNIST as uint8 images `(N, 28, 28)` and labels `(N,)`."""
    data_dir = data_dir_or_env(data_dir)
    if data_dir is None:
        return keras.datasets.mnist.load_data()
    return _load_npz(_local_file(data_dir, "mnist.npz"), {"x_train": (28, 28), "x_test": (28, 28)})


def load_cifar10(data_dir=None):
    """CIFAR-10 as uint8 images `(N, 32, 32, 3)` and labels `(N,)`.

    The local `cifar10.npz` holds the full test set but only the first 20,000
    training images; Keras' loader has all 50,000.
    """
    data_dir = data_dir_or_env(data_dir)
    if data_dir is None:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        return (x_train, y_train.reshape(-1)), (x_test, y_test.reshape(-1))
    shapes = {"x_train": (32, 32, 3), "x_test": (32, 32, 3)}
    return _load_npz(_local_file(data_dir, "cifar10.npz"), shapes)


def load_spa_eng(data_dir=None, seed=0):
    """The Anki English-Spanish pairs, split as keras.io's translation example.

    Every line `English<TAB>Spanish` of `spa-eng/spa.txt` is one pair; the
    pairs are shuffled (with `seed`, where keras.io leaves the shuffle
    unseeded) and split 70 / 15 / 15 into train, validation and test.

    Returns:
        `(train, validation, test)`, each a list of `(english, spanish)`
        string pairs, the text as written (case and punctuation kept).
    """
    data_dir = data_dir_or_env(data_dir)
    if data_dir is None:
        path = keras.utils.get_file("spa-eng.zip", origin=SPA_ENG_URL)
    else:
        path = _local_file(data_dir, "spa-eng.zip")
    try:
        with zipfile.ZipFile(path) as archive:
            lines = archive.read("spa-eng/spa.txt").decode("utf-8").splitlines()
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise ValueError(f"Could not read spa-eng/spa.txt from {path}: {error}") from error
    pairs = [tuple(line.split("\t")[:2]) for line in lines if "\t" in line]
    if len(pairs) < 0.99 * len(lines) or not pairs:
        raise ValueError(f"{path}: expected lines `English<TAB>Spanish`; {len(lines) - len(pairs)} are not")
    random.Random(seed).shuffle(pairs)
    held_out = int(0.15 * len(pairs))
    train = len(pairs) - 2 * held_out
    return pairs[:train], pairs[train : train + held_out], pairs[train + held_out :]


def load_imdb_text(data_dir=None):
    """The raw IMDB reviews as English text, for language modelling.

    Returns:
        `(train, test)` lists of reviews: train holds the 25,000 labelled
        training reviews (plus the 50,000 unlabelled ones where the archive
        has them: the download does, the local `aclImdb_v1_labeled.tar.xz`
        does not), test the 25,000 test reviews; archive order, `<br />`
        line breaks as spaces.
    """
    data_dir = data_dir_or_env(data_dir)
    if data_dir is None:
        path = keras.utils.get_file("aclImdb_v1.tar.gz", origin=IMDB_URL)
    else:
        path = _local_file(data_dir, "aclImdb_v1_labeled.tar.xz")
    splits = {"train": [], "test": []}
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                parts = member.name.split("/")  # aclImdb/<split>/<pos|neg|unsup>/<id>_<rating>.txt
                if member.isfile() and len(parts) == 4 and parts[2] in ("pos", "neg", "unsup"):
                    text = archive.extractfile(member).read().decode("utf-8")
                    splits[parts[1]].append(text.replace("<br />", " "))
    except (OSError, tarfile.TarError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f"Could not read the IMDB archive {path}: {error}") from error
    if len(splits["test"]) != 25000 or len(splits["train"]) not in (25000, 75000):
        raise ValueError(
            f"{path}: expected 25000 test and 25000 (+ 50000 unlabelled) training reviews. "
            f"Received: {len(splits['test'])} and {len(splits['train'])}"
        )
    return splits["train"], splits["test"]


def tokenize(text):
    """Lower-cased words, split the way Keras' IMDB word index was built."""
    return text.lower().translate(_FILTERS).split()


def encode_review(text, word_index, num_words=None):
    """A review as Keras IMDB ids: start mark, then `rank + 3` per word."""
    ids = [START_CHAR]
    for word in tokenize(text):
        rank = word_index.get(word)
        token = OOV_CHAR if rank is None else rank + INDEX_FROM
        ids.append(OOV_CHAR if num_words and token >= num_words else token)
    return ids


def load_imdb(num_words=20000, data_dir=None):
    """IMDB reviews as Keras integer sequences, with labels 1 (positive) and 0.

    Returns the format of `keras.datasets.imdb.load_data(num_words=...)`:
    `((x_train, y_train), (x_test, y_test))`, each `x` a list of lists of ids.
    Offline, the raw `aclImdb` reviews are encoded with Keras' own word index
    and shuffled with Keras' seed. Keras' `imdb.npz` cannot be rebuilt byte for
    byte (its tokeniser and order are unpublished), so sequences can differ in
    detail from the downloaded ones; the vocabulary and ids are the same.
    """
    if isinstance(num_words, bool) or not isinstance(num_words, int) or num_words <= INDEX_FROM:
        raise ValueError(
            f"Argument `num_words` must be an integer above {INDEX_FROM}. Received: num_words={num_words!r}"
        )
    data_dir = data_dir_or_env(data_dir)
    if data_dir is None:
        return keras.datasets.imdb.load_data(num_words=num_words)
    index_path = _local_file(data_dir, "imdb_word_index.json")
    archive_path = _local_file(data_dir, "aclImdb_v1_labeled.tar.xz")
    try:
        with open(index_path, encoding="utf-8") as f:
            word_index = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read the Keras IMDB word index JSON at {index_path}: {error}") from error

    splits = {"train": ([], []), "test": ([], [])}
    try:
        with tarfile.open(archive_path) as archive:
            for member in archive:
                parts = member.name.split("/")  # aclImdb/<split>/<pos|neg>/<id>_<rating>.txt
                if not member.isfile() or len(parts) != 4 or parts[2] not in ("pos", "neg"):
                    continue
                text = archive.extractfile(member).read().decode("utf-8")
                splits[parts[1]][0].append(encode_review(text, word_index, num_words))
                splits[parts[1]][1].append(int(parts[2] == "pos"))
    except (OSError, tarfile.TarError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f"Could not read the IMDB archive {archive_path}: {error}") from error

    result = []
    for offset, split in enumerate(("train", "test")):
        x, y = splits[split]
        if len(x) != 25000:
            raise ValueError(f"{archive_path}: expected 25000 {split} reviews. Received: {len(x)}")
        order = np.random.RandomState(_SHUFFLE_SEED + offset).permutation(len(x))
        result.append(([x[i] for i in order], np.asarray(y, "int64")[order]))
    return tuple(result)


def imdb_sequences(num_words=20000, sequence_length=32, data_dir=None):
    """IMDB padded the reference way: `pad_sequences(maxlen=sequence_length)`.

    Returns `((x_train, y_train), (x_test, y_test))` as int32 / float32 arrays.
    """
    (x_train, y_train), (x_test, y_test) = load_imdb(num_words, data_dir)
    pad = keras.utils.pad_sequences
    return (
        (pad(x_train, maxlen=sequence_length).astype("int32"), y_train.astype("float32")),
        (pad(x_test, maxlen=sequence_length).astype("int32"), y_test.astype("float32")),
    )


def images_as_floats(images):
    """uint8 images to float32 in [0, 1], with a channel axis."""
    images = np.asarray(images, "float32") / 255.0
    return images[..., None] if images.ndim == 3 else images

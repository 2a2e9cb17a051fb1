"""Loaders on the real shared datasets, and their errors."""

import json

import numpy as np
import pytest

from keras_superattn import datasets

pytestmark = pytest.mark.slow  # reads and encodes the real datasets


def test_mnist(data_dir):
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8
    np.testing.assert_array_equal(y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    images = datasets.images_as_floats(x_test[:2])
    assert images.shape == (2, 28, 28, 1) and images.max() <= 1.0


def test_cifar10(data_dir):
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(data_dir)
    assert x_train.shape == (20000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert y_test.shape == (10000,)
    np.testing.assert_array_equal(y_test[:10], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])


def test_data_dir_from_environment(data_dir, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV, data_dir)
    (_, y_train), _ = datasets.load_mnist()
    assert y_train[0] == 5


@pytest.fixture(scope="module")
def imdb(data_dir):
    return datasets.load_imdb(num_words=20000, data_dir=data_dir)


def test_imdb_in_keras_format(imdb, data_dir):
    (x_train, y_train), (x_test, y_test) = imdb
    assert len(x_train) == len(x_test) == 25000
    assert y_train.sum() == y_test.sum() == 12500  # balanced, shuffled
    assert 0 < y_train[:100].sum() < 100
    assert all(seq[0] == datasets.START_CHAR for seq in x_train[:100])
    assert max(max(seq) for seq in x_train) == 19999
    with open(f"{data_dir}/imdb_word_index.json") as f:
        word_index = json.load(f)
    # "the" is rank 1, so id 4; unknown words and words past num_words are 2.
    assert datasets.encode_review("The film-maker's <br />zzqqxx", word_index) == [
        1, 4, word_index["film"] + 3, word_index["maker's"] + 3, word_index["br"] + 3, 2,
    ]
    assert datasets.encode_review("the " + "incomprehensibility", word_index, num_words=100) == [1, 4, 2]


def test_imdb_sequences_are_padded_the_reference_way(imdb, data_dir, monkeypatch):
    monkeypatch.setattr(datasets, "load_imdb", lambda num_words, data_dir: imdb)
    (x_train, y_train), (x_test, _) = datasets.imdb_sequences(20000, 32, data_dir)
    assert x_train.shape == (25000, 32) and x_train.dtype == np.int32
    raw = imdb[0][0]
    short = next(i for i, seq in enumerate(raw) if len(seq) < 32)
    long = next(i for i, seq in enumerate(raw) if len(seq) > 32)
    np.testing.assert_array_equal(x_train[short][-len(raw[short]):], raw[short])  # pre-padding
    assert (x_train[short][: 32 - len(raw[short])] == 0).all()
    np.testing.assert_array_equal(x_train[long], raw[long][-32:])  # pre-truncation


def test_missing_files_name_the_path(tmp_path):
    for load in (datasets.load_mnist, datasets.load_cifar10, datasets.load_imdb):
        with pytest.raises(FileNotFoundError, match=str(tmp_path)):
            load(data_dir=str(tmp_path))


def test_corrupt_files_name_the_path(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"mnist.npz"):
        datasets.load_mnist(str(tmp_path))
    np.savez(tmp_path / "cifar10.npz", x_train=np.zeros((2, 28, 28)), y_train=np.zeros(2),
             x_test=np.zeros((2, 28, 28)), y_test=np.zeros(2))
    with pytest.raises(ValueError, match=r"cifar10.npz: expected x_train of shape \(N, 32, 32, 3\)"):
        datasets.load_cifar10(str(tmp_path))


def test_bad_num_words():
    with pytest.raises(ValueError, match=r"`num_words`.*Received: num_words=2"):
        datasets.load_imdb(num_words=2)


def test_spa_eng_pairs_split_as_keras_io(data_dir):
    train, validation, test = datasets.load_spa_eng(data_dir)
    assert (len(train), len(validation), len(test)) == (83276, 17844, 17844)  # 118,964 pairs, 70/15/15
    assert all(isinstance(e, str) and isinstance(s, str) and e and s for e, s in train[:100] + test[-100:])
    assert ("Go.", "Ve.") in train + validation + test
    again, _, _ = datasets.load_spa_eng(data_dir)
    assert again == train  # a fixed seed
    other = datasets.load_spa_eng(data_dir, seed=1)
    assert other[0] != train and sorted(sum(other, [])) == sorted(train + validation + test)
    assert len(set(train) & set(test)) < 0.01 * len(test)  # (a few lines are in the file twice)


def test_imdb_text_for_language_modelling(data_dir):
    train, test = datasets.load_imdb_text(data_dir)
    assert (len(train), len(test)) == (25000, 25000)
    assert train[0].startswith("Bromwell High is a cartoon comedy.")
    assert not any("<br />" in review for review in train[:2000])

"""SubwordTokenizer: round trips, markers, saving, and no [UNK] on real text."""

import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import text

CORPUS = [
    "¿Dónde está el gato?", "El gato está aquí.", "Un perro y un gato.", "Tom no me ha pagado todavía.",
    "Los gatos duermen mucho.", "¡Qué perro tan grande!", "Hay seis personas en la fiesta.",
] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return text.SubwordTokenizer.train(CORPUS, vocabulary_size=50, sequence_length=32)


def test_encoding_and_decoding_give_the_text_back(tokenizer):
    texts = ["¿Dónde está el perro?", "Tom está en la fiesta."]
    ids = tokenizer(texts)
    assert ids.shape == (2, 32) and ids.dtype == np.int32
    assert tokenizer.decode(ids) == texts
    marked = tokenizer(texts, start=True, end=True)
    real = (marked != 0).sum(axis=1)
    np.testing.assert_array_equal(marked[:, 0], tokenizer.token_id(text.START))
    np.testing.assert_array_equal(marked[np.arange(2), real - 1], tokenizer.token_id(text.END))
    assert tokenizer.decode(marked, stop_at=text.END) == texts
    # Markers and padding never show in the text, and decoding stops at [end].
    cut = marked.copy()
    cut[0, 3] = tokenizer.token_id(text.END)
    assert tokenizer.decode(cut, stop_at=text.END)[0] == tokenizer.decode(marked[:1, 1:3])[0]


def test_special_ids_and_cutting(tokenizer):
    assert [tokenizer.token_id(t) for t in ("[UNK]", text.START, text.END)] == [1, 2, 3]
    assert tokenizer.vocabulary_size == 50
    long = tokenizer(["gato " * 40])
    assert long.shape == (1, 32) and (long != 0).all()
    with pytest.raises(ValueError, match=r"Token 'caballo' is not in the vocabulary of 50 pieces"):
        tokenizer.token_id("caballo")


def test_training_is_repeatable_and_the_model_file_loads(tokenizer, tmp_path):
    again = text.SubwordTokenizer.train(CORPUS, vocabulary_size=50, sequence_length=32)
    assert again.model == tokenizer.model
    tokenizer.save(tmp_path / "spanish.model")
    loaded = text.SubwordTokenizer.load(tmp_path / "spanish.model", sequence_length=32)
    np.testing.assert_array_equal(loaded(CORPUS[:7]), tokenizer(CORPUS[:7]))
    import sentencepiece

    plain = tmp_path / "plain"  # SentencePiece's own ids: <unk>, <s>, </s>, no padding
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_prefix=str(plain), vocab_size=40, minloglevel=2
    )
    with pytest.raises(ValueError, match=r"`model` must give ids 0-3 to \['\[pad\]', '\[UNK\]'.*Received"):
        text.SubwordTokenizer.load(f"{plain}.model", 32)


@pytest.mark.slow
@pytest.mark.backend_independent
def test_real_sentences_have_no_unknown_pieces(data_dir):
    train, _, test = datasets.load_spa_eng(data_dir)
    spanish = text.SubwordTokenizer.train([s for _, s in train], vocabulary_size=4000, sequence_length=64)
    references = [s for _, s in test[:1000]]
    ids = spanish(references)
    assert (ids == 1).sum() <= 2  # measured: 0 in the first 1,000 test sentences, 6 in all 17,844
    assert spanish.decode(ids) == references


def test_character_count_is_the_length_of_the_decoded_text(tokenizer):
    texts = ["¿Dónde está el perro?", "Tom está en la fiesta."]
    whole = tokenizer.encode(texts)
    np.testing.assert_array_equal(tokenizer(texts)[0, : len(whole[0])], whole[0])  # encode: no cut, no padding
    for ids, decoded in zip(whole, tokenizer.decode(tokenizer(texts))):
        # Every text's first piece carries SentencePiece's leading space.
        assert tokenizer.character_count(ids) == len(decoded) + 1
    padded = tokenizer(texts, start=True, end=True)  # markers and padding spell nothing
    assert tokenizer.character_count(padded) == sum(len(t) + 1 for t in texts)

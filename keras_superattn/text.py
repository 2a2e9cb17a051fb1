"""Text to token ids and back: whole words (Keras' `TextVectorization`) or
subwords (SentencePiece).

The tokenizers run outside the models, on NumPy arrays: models take int32
token ids, so they and their `.tflite` files work on every backend. Keras'
`TextVectorization` needs TensorFlow installed (the `tflite` extra), whatever
the backend; `SubwordTokenizer` needs `sentencepiece` (the `tutorials` extra).
"""

import io
import json
import os
import string

import keras
import numpy as np

from keras_superattn._files import write_bytes_atomically
from keras_superattn._files import write_json_atomically
from keras_superattn._validation import check_positive_int

PAD, UNKNOWN = "", "[UNK]"  # ids 0 and 1 in every TextVectorization vocabulary
START, END = "[start]", "[end]"
_PIECE_PAD = "[pad]"  # SentencePiece needs a name for id 0
# Punctuation is stripped, as in keras.io's translation example, apart from
# the brackets of the [start] / [end] markers; Spanish adds ¿ and ¡.
_STRIPPED = "".join(c for c in string.punctuation + "¿¡" if c not in "[]")
_STRIP_PATTERN = "[" + "".join("\\" + c if c in string.punctuation else c for c in _STRIPPED) + "]"


def standardize(text):
    """Lower case, punctuation stripped (but `[start]` / `[end]` kept); a
    string tensor in, a string tensor out (TensorFlow ops, as
    TextVectorization runs it)."""
    import tensorflow as tf

    return tf.strings.regex_replace(tf.strings.lower(text), _STRIP_PATTERN, "")


def standardize_text(text):
    """`standardize` on one Python string, words joined by single spaces:
    the form references take when a BLEU score compares them with output."""
    return " ".join(keras.ops.convert_to_numpy(standardize(text)).item().decode("utf-8").split())


class Tokenizer:
    """Texts to fixed-length int32 ids and back, on Keras' TextVectorization.

    Id 0 pads, id 1 is `[UNK]`, the others are words by falling frequency.

    Args:
        vocabulary: list of tokens, the first two `""` and `"[UNK]"`, as
            `TextVectorization.get_vocabulary()` returns it.
        sequence_length: int. Every text is cut or padded to this many ids.

    Example:

    ```python
    tokenizer = Tokenizer.adapt(texts, vocabulary_size=5000, sequence_length=20)
    ids = tokenizer(["[start] hola mundo [end]"])  # (1, 20) int32
    tokenizer.decode(ids)  # ["[start] hola mundo [end]"]
    ```
    """

    def __init__(self, vocabulary, sequence_length):
        vocabulary = [str(token) for token in vocabulary]
        if vocabulary[:2] != [PAD, UNKNOWN]:
            raise ValueError(
                f"Argument `vocabulary` must start with {[PAD, UNKNOWN]}, as TextVectorization's does. "
                f"Received: {vocabulary[:2]}"
            )
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.index = {token: i for i, token in enumerate(vocabulary)}
        self._vectorize = keras.layers.TextVectorization(
            standardize=standardize, output_sequence_length=sequence_length, vocabulary=vocabulary[2:],
        )

    @classmethod
    def adapt(cls, texts, vocabulary_size, sequence_length):
        """A tokenizer of the `vocabulary_size` most frequent tokens of `texts`."""
        vectorize = keras.layers.TextVectorization(max_tokens=vocabulary_size, standardize=standardize)
        vectorize.adapt(list(texts), batch_size=4096)
        return cls(vectorize.get_vocabulary(), sequence_length)

    def __call__(self, texts):
        """`(N, sequence_length)` int32 ids of `texts` (a list of strings)."""
        ids = keras.ops.convert_to_numpy(self._vectorize(list(texts)))
        return np.asarray(ids, np.int32).reshape(len(texts), self.sequence_length)

    def token_id(self, token):
        """The id of one token, e.g. `tokenizer.token_id("[end]")`."""
        if token not in self.index:
            raise ValueError(f"Token {token!r} is not in the vocabulary of {len(self.vocabulary)} tokens")
        return self.index[token]

    def decode(self, ids, stop_at=None):
        """Texts from rows of ids; padding is dropped, and each row ends before
        the first `stop_at` token when one is given."""
        texts = []
        for row in np.asarray(ids):
            words = []
            for token_id in row:
                token = self.vocabulary[int(token_id)]
                if token == stop_at:
                    break
                if token_id:
                    words.append(token)
            texts.append(" ".join(words))
        return texts

    def save(self, path):
        write_json_atomically(
            {"vocabulary": self.vocabulary, "sequence_length": self.sequence_length}, path, indent=None
        )

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        return cls(config["vocabulary"], config["sequence_length"])


class SubwordTokenizer:
    """Texts to fixed-length int32 ids and back, with a SentencePiece model.

    Subwords cover any text, so ordinary sentences have no `[UNK]`, and the
    text keeps its case and punctuation: `decode(encode(text))` gives the
    text back (up to SentencePiece's NFKC normalisation and runs of spaces).
    Ids: 0 pads, 1 is `[UNK]`, 2 `[start]`, 3 `[end]`, then the pieces. The
    model is one `.model` file (`save`), which SentencePiece's C++, Java and
    Python libraries and keras-hub's `SentencePieceTokenizer` read.

    Args:
        model: bytes, a serialized SentencePiece model with those four ids,
            as `train` makes it.
        sequence_length: int. Every text is cut or padded to this many ids.

    Example:

    ```python
    tokenizer = SubwordTokenizer.train(texts, vocabulary_size=4000, sequence_length=24)
    ids = tokenizer(["¿Qué hora es?"], start=True, end=True)  # (1, 24) int32
    tokenizer.decode(ids)  # ["¿Qué hora es?"]
    ```
    """

    def __init__(self, model, sequence_length):
        import sentencepiece

        self.model = bytes(model)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self._processor = sentencepiece.SentencePieceProcessor()
        try:
            self._processor.LoadFromSerializedProto(self.model)
        except (RuntimeError, OSError) as error:
            raise ValueError(
                f"Argument `model` must be a serialized SentencePiece model (a `.model` file's bytes). "
                f"Received: {len(self.model)} bytes that SentencePiece cannot read ({error})"
            ) from None
        special = [self._processor.id_to_piece(i) for i in range(4)]
        if special != [_PIECE_PAD, UNKNOWN, START, END]:
            raise ValueError(
                f"Argument `model` must give ids 0-3 to {[_PIECE_PAD, UNKNOWN, START, END]}, as "
                f"`SubwordTokenizer.train` does. Received: {special}"
            )

    @classmethod
    def train(cls, texts, vocabulary_size, sequence_length, model_type="unigram"):
        """A tokenizer of `vocabulary_size` ids learnt from `texts` (the
        training split only), SentencePiece's `"unigram"` or `"bpe"` model."""
        import sentencepiece

        if isinstance(texts, (str, bytes)):
            raise TypeError("Argument `texts` must be a sequence of texts, not one text. Received a str")
        texts = [text for text in texts if text and text.strip()]
        if not texts:
            raise ValueError("Argument `texts` must hold at least one non-empty text to learn from. Received none")
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=model, vocab_size=vocabulary_size,
                model_type=model_type, pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece=_PIECE_PAD,
                unk_piece=UNKNOWN, bos_piece=START, eos_piece=END, character_coverage=1.0,
                # Whole reviews are one "sentence" each; the default cap (4,192
                # bytes) would leave the long ones out. One thread: the same
                # texts always give the same model.
                max_sentence_length=1 << 20, num_threads=1, minloglevel=2,
            )
        except RuntimeError as error:
            raise ValueError(
                f"SentencePiece could not learn vocabulary_size={vocabulary_size} pieces of "
                f"model_type={model_type!r} from {len(texts)} text(s): {str(error).strip()}"
            ) from None
        return cls(model.getvalue(), sequence_length)

    @property
    def vocabulary_size(self):
        return self._processor.get_piece_size()

    def __call__(self, texts, start=False, end=False):
        """`(N, sequence_length)` int32 ids of `texts`, with `[start]` /
        `[end]` around each when asked, cut to `sequence_length`."""
        pieces = self._processor.encode(list(texts), add_bos=start, add_eos=end)
        ids = np.zeros((len(pieces), self.sequence_length), np.int32)
        for row, piece_ids in enumerate(pieces):
            piece_ids = piece_ids[: self.sequence_length]
            ids[row, : len(piece_ids)] = piece_ids
        return ids

    def encode(self, texts):
        """The ids of each text, whole (no cut, no padding): a list of lists."""
        return self._processor.encode(list(texts))

    def character_count(self, ids):
        """How many characters the pieces of `ids` spell (spaces included;
        padding and markers none, `[UNK]` one): the denominator of
        `generation.bits_per_character`."""
        ids = np.asarray(ids)
        pieces = (self._processor.id_to_piece(i) for i in range(4, self.vocabulary_size))
        lengths = np.array([0, 1, 0, 0] + [len(piece.replace("\u2581", " ")) for piece in pieces])  # by id
        return int(lengths[ids].sum())

    def token_id(self, token):
        """The id of one piece, e.g. `tokenizer.token_id("[end]")`."""
        token_id = self._processor.piece_to_id(token)
        if token_id == self._processor.unk_id() and token != UNKNOWN:
            raise ValueError(f"Token {token!r} is not in the vocabulary of {self.vocabulary_size} pieces")
        return token_id

    def decode(self, ids, stop_at=None):
        """Texts from rows of ids; padding and markers are dropped, and each
        row ends before the first `stop_at` token when one is given."""
        stop_id = None if stop_at is None else self.token_id(stop_at)
        texts = []
        for row in np.asarray(ids).tolist():
            if stop_id in row:
                row = row[: row.index(stop_id)]
            texts.append(self._processor.decode([i for i in row if i > 3 or i == 1]))
        return texts

    def save(self, path):
        """Writes the SentencePiece model (a `.model` file)."""
        write_bytes_atomically(self.model, path)

    @classmethod
    def load(cls, path, sequence_length):
        """The tokenizer of a `.model` file written by `save`."""
        try:
            with open(path, "rb") as f:
                model = f.read()
        except OSError as error:
            raise ValueError(f"Argument `path`: cannot read a SentencePiece model from {path!r} ({error})") from None
        try:
            return cls(model, sequence_length)
        except ValueError as error:
            raise ValueError(f"Argument `path`: {os.fspath(path)!r} is not a SentencePiece model ({error})") from None


def windows(token_lists, length):
    """`(inputs, targets)` int32 arrays `(N, length)`: consecutive windows of
    each list of ids, the targets shifted by one, the last window padded."""
    rows = [ids[begin : begin + length + 1] for ids in token_lists for begin in range(0, len(ids) - 1, length)]
    ids = np.zeros((len(rows), length + 1), np.int32)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
    return ids[:, :-1], ids[:, 1:]

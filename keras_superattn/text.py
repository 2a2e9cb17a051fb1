"""Words to token ids and back, with Keras' `TextVectorization`.

The tokenizer runs outside the models, on NumPy arrays: models take int32
token ids, so they and their `.tflite` files work on every backend. Keras'
`TextVectorization` needs TensorFlow installed (the `tflite` extra), whatever
the backend.
"""

import json
import string

import keras
import numpy as np

PAD, UNKNOWN = "", "[UNK]"  # ids 0 and 1 in every TextVectorization vocabulary
START, END = "[start]", "[end]"
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
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"vocabulary": self.vocabulary, "sequence_length": self.sequence_length}, f)

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        return cls(config["vocabulary"], config["sequence_length"])

"""How good a next-token model is: its training loss, perplexity, bits per character and BLEU.

Position `t` of a model's logits scores the token at `t + 1`; `predict` is
any `ids (N, T) -> logits (N, T, V)` callable, a Keras model's or a
`.tflite` file's (`deploy.TFLiteModel.predict`).
"""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_superattn")
def token_crossentropy(y_true, y_pred):
    """Mean cross-entropy of the logits `y_pred (B, T, V)` over the real
    tokens of `y_true (B, T)`; padding (id 0) is left out of sum and count."""
    real = ops.cast(ops.not_equal(y_true, 0), "float32")  # (B, T)
    losses = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)  # (B, T)
    return ops.sum(losses * real) / ops.maximum(ops.sum(real), 1.0)


def mean_token_loss(predict, ids, labels, batch_size=256):
    """Mean negative log-likelihood (nats) of the real tokens of `labels`
    under `predict`'s logits, batch by batch."""
    total, count = _summed_token_loss(predict, ids, labels, batch_size)
    return total / count


def bits_per_character(predict, ids, labels, characters, batch_size=256):
    """The negative log-likelihood of the real tokens of `labels`, in bits
    per character of the text they spell (`characters` in all, e.g.
    `SubwordTokenizer.character_count(labels)`): a figure that models with
    different vocabularies share."""
    total, _ = _summed_token_loss(predict, ids, labels, batch_size)
    return total / (math.log(2) * characters)


def _summed_token_loss(predict, ids, labels, batch_size):
    """`(summed negative log-likelihood in nats, number)` of the real tokens."""
    total, count = 0.0, 0
    for begin in range(0, len(labels), batch_size):
        batch = slice(begin, begin + batch_size)
        inputs = {name: value[batch] for name, value in ids.items()} if isinstance(ids, dict) else ids[batch]
        logits = np.asarray(predict(inputs), np.float64)  # (b, T, V)
        logits -= logits.max(axis=-1, keepdims=True)
        log_normalizer = np.log(np.exp(logits).sum(axis=-1))  # (b, T)
        target = labels[batch]
        chosen = np.take_along_axis(logits, target[..., None].astype(np.int64), axis=-1)[..., 0]
        real = target != 0
        total += float(((log_normalizer - chosen) * real).sum())
        count += int(real.sum())
    return total, count


def perplexity(predict, ids, labels, batch_size=256):
    """`exp` of `mean_token_loss`: the model's perplexity on the real tokens."""
    return math.exp(mean_token_loss(predict, ids, labels, batch_size))


def sequence_agreement(got, want):
    """Share of the rows of two `(N, T)` id arrays that are equal throughout:
    e.g. greedy continuations of a file against its Keras model's."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.ndim != 2:
        raise ValueError(
            f"Arguments `got` and `want` must be id arrays of one shape (N, T). Received: {got.shape}, {want.shape}"
        )
    return float(np.mean((got == want).all(axis=1)))


def corpus_bleu(hypotheses, references):
    """sacreBLEU's corpus BLEU (0-100) of one hypothesis and one reference
    text per sentence."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(
            f"Need one reference per hypothesis. Received: {len(hypotheses)} hypotheses, "
            f"{len(references)} references"
        )
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)

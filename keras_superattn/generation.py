"""Next-token models: their loss, greedy and sampled decoding, perplexity, BLEU.

Decoding takes a `predict` callable, `ids (N, T) -> logits (N, T, V)`, so the
same loop runs a Keras model and its `.tflite` file (see
`deploy.TFLiteModel.predict`): static shapes, the whole sequence scored at
every step, position `t` predicting the token at `t + 1`.
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


def decode(predict, ids, start, stop_id=None, temperature=0.0, seed=None):
    """Fills `ids[:, start:]` one token at a time.

    Args:
        predict: `ids (N, T) -> logits (N, T, V)`, e.g. `model.predict` or a
            `TFLiteModel`'s.
        ids: int array `(N, T)`; the first `start` columns are the prompt
            (e.g. the start token), the rest is overwritten.
        start: int. Number of given tokens, at least 1.
        stop_id: optional token id that ends a sequence; after it a row gets
            padding (0). Decoding stops early once every row has stopped.
        temperature: 0 for greedy decoding (argmax), else the softmax
            temperature of sampling.
        seed: seed of the sampling.

    Returns:
        The filled int32 array `(N, T)`.
    """
    ids = np.array(ids, dtype=np.int32)
    if not 1 <= start <= ids.shape[1]:
        raise ValueError(f"Argument `start` must be in [1, {ids.shape[1]}]. Received: start={start}")
    rng = np.random.default_rng(seed)
    stopped = np.zeros(len(ids), bool)
    if stop_id is not None:
        stopped = (ids[:, :start] == stop_id).any(axis=1)
    for position in range(start, ids.shape[1]):
        ids[:, position:] = 0
        logits = np.asarray(predict(ids))[:, position - 1]  # (N, V)
        if temperature:
            scaled = logits / temperature
            probabilities = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
            probabilities /= probabilities.sum(axis=-1, keepdims=True)
            chosen = np.array([rng.choice(len(p), p=p) for p in probabilities])
        else:
            chosen = logits.argmax(axis=-1)
        ids[:, position] = np.where(stopped, 0, chosen)
        if stop_id is not None:
            stopped |= chosen == stop_id
            if stopped.all():
                ids[:, position + 1 :] = 0
                break
    return ids


def mean_token_loss(predict, ids, labels, batch_size=256):
    """Mean negative log-likelihood (nats) of the real tokens of `labels`
    under `predict`'s logits, batch by batch."""
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
    return total / count


def perplexity(predict, ids, labels, batch_size=256):
    """`exp` of `mean_token_loss`: the model's perplexity on the real tokens."""
    return math.exp(mean_token_loss(predict, ids, labels, batch_size))


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

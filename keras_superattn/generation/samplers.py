"""Token samplers with keras-hub's interface, and full-sequence decoding.

A sampler fills a batch of prompts one position at a time from a `next`
callable, `next(prompt, cache, index) -> (logits (B, V), hidden_states,
cache)`: the scores of the token at `index`, given the tokens before it. A
`Generator` provides a cached `next`; `full_sequence_next` one for any
`predict(ids) -> logits (B, T, V)` (a Keras model or a `.tflite` file) that
scores the whole sequence at every step. The choice of each token runs in
NumPy, so a seeded sampler picks the same tokens on every backend.
"""

import keras
import numpy as np
from keras import ops

from keras_superattn.generation import checks


class Sampler:
    """Base sampler: softmax of `logits / temperature`, then `get_next_token`.

    Args:
        temperature: float > 0. Divides the logits before the softmax.
        seed: optional int; the same seed gives the same tokens.

    Call arguments:
        next: `next(prompt, cache, index) -> (logits (B, V), hidden_states,
            cache)`.
        prompt: int array `(B, T)`; the positions where `mask` is True are
            kept, the others filled.
        cache: the cache `next` starts from (None for `full_sequence_next`).
        index: int >= 1. The first position to fill.
        mask: optional bool `(B, T)`, True for given tokens; prompts of
            different lengths are right-padded and keep their own tokens
            until they end. Default: the first `index` positions.
        stop_token_ids: optional token ids that end a sequence; a row that
            generates one is padded with 0 after it, and decoding stops once
            every row has stopped.
        hidden_states, model: accepted for keras-hub compatibility; unused.

    Returns:
        The filled int32 NumPy array `(B, T)`.
    """

    def __init__(self, temperature=1.0, seed=None):
        if not temperature > 0:
            raise ValueError(f"Argument `temperature` must be > 0. Received: temperature={temperature!r}")
        self.temperature = temperature
        self.seed = seed

    def __call__(
        self, next, prompt, cache=None, index=1, mask=None, stop_token_ids=None, hidden_states=None, model=None
    ):
        ids = checks.token_ids("prompt", prompt, shape=(None, None))
        if not isinstance(index, (int, np.integer)) or not 1 <= index <= ids.shape[1]:
            raise ValueError(f"Argument `index` must be in [1, {ids.shape[1]}]. Received: index={index}")
        if mask is None:
            mask = np.arange(ids.shape[1])[None, :] < index
        mask = np.broadcast_to(np.asarray(ops.convert_to_numpy(mask), bool), ids.shape)
        ids = np.where(mask, ids, 0)  # what follows the prompt must not be seen
        stops = np.asarray(checks.stop_token_ids(stop_token_ids) or (), np.int32)
        stopped = np.zeros(len(ids), bool)
        rng = np.random.default_rng(self.seed)
        for position in range(index, ids.shape[1]):
            logits, _, cache = next(ids, cache, position)
            chosen = self.get_next_token(self.compute_probabilities(logits), rng)  # (B,)
            given = mask[:, position]
            ids[:, position] = np.where(given, ids[:, position], np.where(stopped, 0, chosen))
            stopped |= ~given & np.isin(chosen, stops)
            if stopped.all():
                break
        return ids

    def compute_probabilities(self, logits):
        scaled = np.asarray(ops.convert_to_numpy(logits), np.float64) / self.temperature  # (B, V)
        scaled -= scaled.max(axis=-1, keepdims=True)
        probabilities = np.exp(scaled)
        return probabilities / probabilities.sum(axis=-1, keepdims=True)

    def get_next_token(self, probabilities, rng):
        """Token ids `(B,)` drawn from `probabilities (B, V)`."""
        raise NotImplementedError


class GreedySampler(Sampler):
    """The most likely token at every step (deterministic)."""

    def __init__(self):
        super().__init__()

    def compute_probabilities(self, logits):
        # The softmax keeps the order of the logits: greedy picks from them.
        return np.asarray(ops.convert_to_numpy(logits))

    def get_next_token(self, probabilities, rng):
        return probabilities.argmax(axis=-1)


class RandomSampler(Sampler):
    """A token drawn from the whole (tempered) distribution."""

    def get_next_token(self, probabilities, rng):
        return _draw(probabilities, rng)


class TopKSampler(Sampler):
    """A token drawn from the `k` most likely ones.

    Args:
        k: int >= 1.
        temperature, seed: as in `Sampler`.
    """

    def __init__(self, k=5, temperature=1.0, seed=None):
        super().__init__(temperature, seed)
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"Argument `k` must be an int >= 1. Received: k={k!r}")
        self.k = k

    def get_next_token(self, probabilities, rng):
        return _draw(_keep_top_k(probabilities, self.k), rng)


class TopPSampler(Sampler):
    """Nucleus sampling: a token drawn from the most likely tokens whose
    probabilities add up to `p` (the token that crosses `p` included).

    Args:
        p: float in (0, 1].
        k: optional int; first keep only the `k` most likely tokens.
        temperature, seed: as in `Sampler`.
    """

    def __init__(self, p=0.1, k=None, temperature=1.0, seed=None):
        super().__init__(temperature, seed)
        if not 0 < p <= 1:
            raise ValueError(f"Argument `p` must be in (0, 1]. Received: p={p!r}")
        if k is not None and not (isinstance(k, int) and k >= 1):
            raise ValueError(f"Argument `k` must be None or an int >= 1. Received: k={k!r}")
        self.p = p
        self.k = k

    def get_next_token(self, probabilities, rng):
        if self.k is not None:
            probabilities = _keep_top_k(probabilities, self.k)
        order = np.argsort(-probabilities, axis=-1, kind="stable")  # (B, V), most likely first
        ranked = np.take_along_axis(probabilities, order, axis=-1)
        before = np.cumsum(ranked, axis=-1) - ranked  # mass of the more likely tokens
        kept = np.zeros_like(probabilities)
        np.put_along_axis(kept, order, np.where(before < self.p * ranked.sum(-1, keepdims=True), ranked, 0), -1)
        return _draw(kept, rng)


def full_sequence_next(predict):
    """A sampler's `next` for `predict(ids (B, T)) -> logits (B, T, V)`:
    every step scores the whole sequence, as a model without a cache must."""

    def next(prompt, cache, index):
        logits = np.asarray(ops.convert_to_numpy(predict(prompt)))[:, index - 1]  # (B, V)
        return logits, None, cache

    return next


def batched_predict(model, batch_size=32):
    """`model.predict` for decoding loops, which call it once per token: the
    same batches, so the same numbers, through `predict_on_batch`, without the
    data pipeline that `predict` builds on every call (a quick run spent a
    fifth of its time there)."""
    def predict(inputs):
        count = len(keras.tree.flatten(inputs)[0])
        batches = [slice(start, start + batch_size) for start in range(0, count, batch_size)]
        return np.concatenate([
            model.predict_on_batch(keras.tree.map_structure(lambda x, rows=rows: x[rows], inputs)) for rows in batches
        ])

    return predict


def decode(predict, ids, start, stop_id=None, temperature=0.0, seed=None):
    """Fills `ids[:, start:]` one token at a time, scoring the whole sequence
    at every step (a model or `.tflite` file without a cache).

    Args:
        predict: `ids (N, T) -> logits (N, T, V)`, e.g. `model.predict` or a
            `TFLiteModel`'s.
        ids: int array `(N, T)`; the first `start` columns are the prompt
            (e.g. the start token), the rest is overwritten.
        start: int. Number of given tokens, at least 1.
        stop_id: optional token id that ends a sequence (padding after it).
        temperature: 0 for greedy decoding, else the sampling temperature.
        seed: seed of the sampling.

    Returns:
        The filled int32 array `(N, T)`.
    """
    ids = checks.token_ids("ids", ids, shape=(None, None))
    if not isinstance(start, (int, np.integer)) or not 1 <= start <= ids.shape[1]:
        raise ValueError(f"Argument `start` must be an int in [1, {ids.shape[1]}]. Received: start={start!r}")
    if stop_id is not None and (isinstance(stop_id, bool) or not isinstance(stop_id, (int, np.integer))):
        raise TypeError(f"Argument `stop_id` must be None or an integer token id. Received: stop_id={stop_id!r}")
    sampler = RandomSampler(temperature, seed) if temperature else GreedySampler()
    return sampler(full_sequence_next(predict), ids, index=start, stop_token_ids=None if stop_id is None else [stop_id])


def _keep_top_k(probabilities, k):
    k = min(k, probabilities.shape[-1])
    threshold = np.sort(probabilities, axis=-1)[:, -k, None]  # (B, 1), the k-th largest
    return np.where(probabilities >= threshold, probabilities, 0.0)


def _draw(probabilities, rng):
    """One draw per row from unnormalised `probabilities (B, V)`."""
    cumulative = np.cumsum(probabilities, axis=-1)  # (B, V)
    targets = rng.random(len(probabilities)) * cumulative[:, -1]  # (B,)
    chosen = (cumulative <= targets[:, None]).sum(axis=-1)
    return np.minimum(chosen, probabilities.shape[-1] - 1)

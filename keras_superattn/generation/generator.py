"""Cached, token-by-token generation with the package's generative models."""

import keras
import numpy as np
from keras import ops

from keras_superattn.generation import checks
from keras_superattn.generation.compiled import compile_function
from keras_superattn.generation.samplers import GreedySampler
from keras_superattn.layers import BaseAttention
from keras_superattn.layers import TransformerDecoder


class Generator:
    """Generates with a `models.language_model` or `models.translator`
    (built, trained or loaded from its `.keras` file), one token per step.

    Each decoder block keeps a cache of its self-attention's keys and values
    (and, in a translator, of its cross-attention's over the source), so a
    step runs the blocks on one position instead of the whole sequence. A
    variant's cache holds only what its maths needs, per token and block:
    Standard `X W_K, X W_V`, Optimized `X W_K, X`, Super `X, W_A X` (each
    `2 d` numbers), Efficient `X` (`d`). The methods follow keras-hub's
    `CausalLM`: `build_cache` (the prefill), `call_with_cache` and `next`,
    the callable its samplers take.

    The cache is a dict of tensors:
    - `"self"`: `(B, num_layers, n, T, d)`, `n` the self-attention's
      `cache_streams`, `T` the model's sequence length;
    - translators only: `"cross"`: `(B, num_layers, n, S, d)` of the
      encoded source, computed once, and `"source_mask"`: `(B, S)`.

    The prefill and the step run compiled (`compiled.compile_function`:
    XLA on TensorFlow, `jax.jit` on JAX, no autograd on PyTorch), each
    traced once per batch size; `compiled=False` runs them eagerly, layer
    by layer, for debugging.

    Args:
        model: the generative model.
        compiled: bool. Compile the prefill and the step (default True).

    Example:

    ```python
    model = models.language_model("super", vocabulary_size=100, sequence_length=16)
    prompt = np.zeros((2, 16), "int32")
    prompt[0, :3], prompt[1, :5] = [5, 6, 7], [8, 9, 10, 11, 12]
    ids = Generator(model).generate(prompt, sampler=TopPSampler(0.9, seed=0))
    ```
    """

    def __init__(self, model, compiled=True):
        self.model = model
        self.compiled = compiled
        self.decoders = [layer for layer in model.layers if isinstance(layer, TransformerDecoder)]
        names = {layer.name for layer in model.layers}
        self.is_translator = "source_embedding" in names
        expected = {"final_norm", "logits", "target_embedding" if self.is_translator else "embedding"}
        if not self.decoders or not expected <= names:
            raise ValueError(
                "Argument `model` must be a model of `models.language_model` or `models.translator`, with "
                f"TransformerDecoder blocks and the layers {sorted(expected)}. Received: a model with the layers "
                f"{[layer.name for layer in model.layers]}"
            )
        for decoder in self.decoders:
            for layer in decoder.attention_layers:
                if not isinstance(layer, BaseAttention):
                    raise ValueError(
                        "Cached generation needs attention layers that take a `cache` (the package's variants). "
                        f"Received: a model with a {type(layer).__name__} in {decoder.name}"
                    )
        self.embedding = model.get_layer("target_embedding" if self.is_translator else "embedding")
        self.final_norm = model.get_layer("final_norm")
        self.logits_layer = model.get_layer("logits")
        self.sequence_length = self.embedding.sequence_length
        if self.is_translator:
            source = model.get_layer("source_embedding")
            self.source_vocabulary_size = source.vocabulary_size
            self.encoder = keras.Model(source.input, model.get_layer("encoder_norm").output)
        self._prefill, self._step = self._prefill_eagerly, self._step_eagerly
        if compiled:
            self._prefill = compile_function(self._prefill_eagerly, model.variables)
            self._step = compile_function(self._step_eagerly, model.variables)

    def build_cache(self, token_ids, source=None):
        """The prefill: runs `token_ids (B, T)` (padded to the model's length)
        and fills a cache for every position. A translator also needs its
        `source` ids `(B, S)`. Returns `(logits (B, T, V), hidden_states
        (B, T, d), cache)`; positions after a prompt are overwritten later."""
        if self.is_translator != (source is not None):
            raise ValueError(
                f"Argument `source` must be given exactly for a translator (this model is "
                f"{'a translator' if self.is_translator else 'a language model'}). Received: "
                f"source={'None' if source is None else 'ids'}"
            )
        token_ids = ops.convert_to_tensor(token_ids, "int32")
        if self.is_translator:
            return self._prefill(token_ids, ops.convert_to_tensor(source, "int32"))
        return self._prefill(token_ids)

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Runs `token_ids (B, l)` at positions `cache_update_index...` over
        the cache. Returns `(logits (B, l, V), hidden_states (B, l, d),
        updated cache)`."""
        return self._run(ops.convert_to_tensor(token_ids, "int32"), cache, cache_update_index, None)

    def next(self, prompt, cache, index):
        """keras-hub's sampler callable: the logits `(B, V)` of the token at
        `index`, from the token before it and the cache."""
        # The token is picked inside the step, and the position is a tensor,
        # so the step is one traced computation for every position (a Python
        # 0 would take the prefill's shortcut).
        return self._step(ops.convert_to_tensor(prompt, "int32"), cache, np.int32(index - 1))

    def _prefill_eagerly(self, token_ids, source=None):
        batch = ops.shape(token_ids)[0]
        cache = {"self": self._empty(batch, "self_attention_layer", self.sequence_length)}
        encoded = None
        if self.is_translator:
            encoded = self.encoder(source, training=False)  # (B, S, d)
            cache["cross"] = self._empty(batch, "cross_attention_layer", ops.shape(source)[1])
            cache["source_mask"] = ops.not_equal(source, 0)
        return self._run(token_ids, cache, 0, encoded)

    def _step_eagerly(self, prompt, cache, position):
        position = ops.convert_to_tensor(position, "int32")
        token = ops.slice(prompt, (0, position), (ops.shape(prompt)[0], 1))  # (B, 1)
        logits, hidden_states, cache = self._run(token, cache, position, None)
        return logits[:, 0], hidden_states[:, 0], cache

    def generate(self, prompt, padding_mask=None, source=None, sampler=None, stop_token_ids=None):
        """Completes each prompt to the model's sequence length.

        Args:
            prompt: int `(B, T)`, each row's prompt followed by padding (0).
            padding_mask: optional bool `(B, T)`, True for prompt tokens;
                default: the non-zero ids. Rows may differ in length.
            source: the source ids `(B, S)` of a translator.
            sampler: a `Sampler`; default `GreedySampler()`.
            stop_token_ids: optional ids that end a row (padding after).

        Returns:
            The int32 NumPy array `(B, T)`.
        """
        vocabulary = self.embedding.vocabulary_size
        prompt, mask = checks.prompt_and_mask(prompt, padding_mask, self.sequence_length, vocabulary)
        stop_token_ids = checks.stop_token_ids(stop_token_ids, vocabulary)
        sampler = checks.sampler(sampler)
        if self.is_translator and source is not None:
            source = checks.token_ids("source", source, self.source_vocabulary_size, (len(prompt), None))
        lengths = mask.sum(axis=1)
        _, hidden_states, cache = self.build_cache(prompt, source)
        sampler = GreedySampler() if sampler is None else sampler
        return sampler(
            self.next, prompt, cache, int(lengths.min()), mask=mask, stop_token_ids=stop_token_ids,
            hidden_states=hidden_states, model=self,
        )

    def _empty(self, batch, attention, length):
        caches = [getattr(decoder, attention).empty_cache(batch, length) for decoder in self.decoders]
        return ops.stack(caches, axis=1)  # (B, num_layers, n, length, d)

    def _run(self, token_ids, cache, index, encoded):
        self_caches = [cache["self"][:, layer] for layer in range(len(self.decoders))]
        cross_caches = [cache["cross"][:, layer] for layer in range(len(self.decoders))] if self.is_translator else None
        logits, hidden_states, self_caches, cross_caches = self.run_blocks(
            token_ids, self_caches, cross_caches, cache.get("source_mask"), index, encoded
        )
        cache = {**cache, "self": ops.stack(self_caches, axis=1)}
        if self.is_translator:
            cache["cross"] = ops.stack(cross_caches, axis=1)
        return logits, hidden_states, cache

    def run_blocks(self, token_ids, self_caches, cross_caches, source_mask, index, encoded):
        """The model on `token_ids (B, l)` at positions `index...`, with the
        caches as separate tensors: the form `deploy` exports.

        Args:
            token_ids: int tensor `(B, l)`.
            self_caches: per block, its self-attention cache `(B, n, T, d)`
                or a tuple of `n` tensors `(B, T, d)`.
            cross_caches: a translator's per-block cross-attention caches
                (filled from `encoded` when it is given); None otherwise.
            source_mask: a translator's `(B, S)` source padding mask, or None.
            index: the position of the first token (int or scalar tensor).
            encoded: a translator's encoded source `(B, S, d)` to fill the
                cross caches from (the prefill), or None to use them as given.

        Returns:
            `(logits (B, l, V), hidden states (B, l, d), updated self caches,
            updated cross caches or None)`.
        """
        x = self.embedding(token_ids, start_index=index, training=False)  # (B, l, d)
        new_self, new_cross = [], []
        for layer, decoder in enumerate(self.decoders):
            caches = dict(self_attention_cache=self_caches[layer], self_attention_cache_update_index=index)
            if self.is_translator:
                caches.update(
                    encoder_padding_mask=source_mask, cross_attention_cache=cross_caches[layer],
                    cross_attention_cache_update_index=None if encoded is None else 0,
                )
            x, *updated = decoder(x, encoded, training=False, **caches)
            new_self.append(updated[0])
            new_cross.extend(updated[1:])
        hidden_states = self.final_norm(x)  # (B, l, d)
        return self.logits_layer(hidden_states), hidden_states, new_self, new_cross or None

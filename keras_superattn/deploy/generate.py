"""Generation on LiteRT: greedy decoding with a full-sequence next-token file,
and any sampler with a cached file of `convert_generator`."""

import os
import time

import numpy as np

from keras_superattn.deploy import flatbuffer
from keras_superattn.deploy.runtime import Interpreter
from keras_superattn.deploy.runtime import OpResolverType
from keras_superattn.deploy.runtime import TFLiteModel
from keras_superattn.generation import GreedySampler
from keras_superattn.generation import checks
from keras_superattn.generation import decode

# The signatures of a cached generator file (`deploy.cached`).
PREFILL, DECODE = "prefill", "decode"


def decode_greedy(model, ids, start, stop_id=None, inputs=None, ids_name=None):
    """Greedy decoding on LiteRT, one invocation per generated token.

    The file has static shapes, so each step scores the whole (padded)
    sequence; with a causal model the padding after the current position
    changes nothing before it.

    Args:
        model: a `TFLiteModel` or the path of a `.tflite` file whose output
            is next-token logits `(batch, T, V)`.
        ids: int array `(N, T)`, the prompt in its first `start` columns.
        start, stop_id: as in `generation.decode`.
        inputs: optional dict of the file's other inputs, `(N, ...)` each,
            e.g. `{"source": source_ids}` for a translator.
        ids_name: the input that takes `ids`; default: the only input not
            in `inputs`.

    Returns:
        `(ids, seconds per step)`: the filled `(N, T)` ids, and the mean
        wall time of one step per sequence (one generated token).
    """
    model = model if isinstance(model, TFLiteModel) else TFLiteModel(model)
    inputs = dict(inputs or {})
    if ids_name is None:
        free = [name for name in model.inputs if name not in inputs]
        if len(free) != 1:
            raise ValueError(
                f"Pass `ids_name`: the inputs of {model.path} not given in `inputs` are {free}. "
                f"Received: inputs with keys {list(inputs)}"
            )
        (ids_name,) = free
    calls = []

    def predict(batch):
        began = time.perf_counter()
        logits = model.predict({**inputs, ids_name: batch})
        calls.append(time.perf_counter() - began)
        return logits

    filled = decode(predict, ids, start, stop_id=stop_id)
    return filled, float(np.sum(calls)) / max(1, len(calls) * len(filled))


def generate_greedy(path, prompt, start, stop_id=None, source=None):
    """Greedy generation with either kind of next-token file: a cached one of
    `convert_generator` (one `decode` step a token) or a full-sequence one
    (`decode_greedy`), so that the two are scored alike.

    Args:
        path: the `.tflite` file.
        prompt: int array `(N, T)`, the prompt in its first `start` columns.
        start, stop_id: as in `generation.decode`.
        source: for a translator, the source ids `(N, S)`.

    Returns:
        `(ids, seconds per token)`, as `decode_greedy`.
    """
    prompt = np.asarray(prompt, np.int32)
    if set(Interpreter(model_path=os.fspath(path)).get_signature_list()) == {PREFILL, DECODE}:
        mask = np.broadcast_to(np.arange(prompt.shape[1]) < start, prompt.shape)
        return TFLiteGenerator(path).generate(
            prompt, padding_mask=mask, source=source, stop_token_ids=None if stop_id is None else [stop_id]
        )
    return decode_greedy(path, prompt, start, stop_id=stop_id, inputs=None if source is None else {"source": source})


class TFLiteGenerator:
    """Runs a file of `convert_generator` with LiteRT: the prompt once
    (`prefill`), then one `decode` step per token, the cache kept here.

    Args:
        path: the `.tflite` file.
        num_threads: int. CPU threads.
        use_xnnpack: bool. Use LiteRT's default XNNPACK delegate.

    Example:

    ```python
    generator = TFLiteGenerator("language_model_super_cached_int8.tflite")
    ids, seconds_per_token = generator.generate(prompt_ids)  # greedy
    ```
    """

    def __init__(self, path, num_threads=1, use_xnnpack=True):
        resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.path = os.fspath(path)
        self.interpreter = Interpreter(model_path=self.path, num_threads=num_threads,
                                       experimental_op_resolver_type=resolver)
        signatures = self.interpreter.get_signature_list()
        if set(signatures) != {PREFILL, DECODE}:
            raise ValueError(
                f"{self.path} is not a cached generator file: it needs the signatures {[PREFILL, DECODE]}. "
                f"Received: {sorted(signatures)}"
            )
        self.prefill = self.interpreter.get_signature_runner(PREFILL)
        self.decode = self.interpreter.get_signature_runner(DECODE)
        self.sequence_length = int(self.prefill.get_input_details()["tokens"]["shape"][1])
        logits = self.decode.get_output_details()["logits"]
        self.vocabulary_size = int(logits["shape"][-1])
        self._logits_scale, self._logits_zero_point = logits["quantization"]
        self.is_translator = "source" in self.prefill.get_input_details()
        if self.is_translator:
            self.source_length = int(self.prefill.get_input_details()["source"]["shape"][1])
            self.source_vocabulary_size = _source_vocabulary_size(self.path, self.vocabulary_size)
        self.step_seconds = []

    def generate(self, prompt, padding_mask=None, source=None, sampler=None, stop_token_ids=None):
        """Completes each prompt row by row (the file's batch is 1), as
        `generation.Generator.generate` does. Returns `(ids (B, T), mean
        seconds of one decoding step)`."""
        prompt, mask = checks.prompt_and_mask(prompt, padding_mask, self.sequence_length, self.vocabulary_size)
        stop_token_ids = checks.stop_token_ids(stop_token_ids, self.vocabulary_size)
        sampler = GreedySampler() if checks.sampler(sampler) is None else sampler
        if self.is_translator != (source is not None):
            raise ValueError(
                f"Argument `source` must be given exactly for a translator file ({self.path} is "
                f"{'one' if self.is_translator else 'a language model'}). Received: "
                f"source={'None' if source is None else 'ids'}"
            )
        if source is not None:
            shape = (len(prompt), self.source_length)
            source = checks.token_ids("source", source, self.source_vocabulary_size, shape)
        self.step_seconds = []
        rows = []
        for row in range(len(prompt)):
            inputs = {"tokens": prompt[row : row + 1]}
            if self.is_translator:
                inputs["source"] = source[row : row + 1]
            cache = self.prefill(**inputs)
            cache.pop("logits")
            if self.is_translator:
                cache["source"] = inputs["source"]
            rows.append(sampler(self.next, prompt[row : row + 1], cache, int(mask[row].sum()),
                                mask=mask[row : row + 1], stop_token_ids=stop_token_ids))
        return np.concatenate(rows), float(np.mean(self.step_seconds)) if self.step_seconds else 0.0

    def next(self, prompt, cache, index):
        """A sampler's `next` for one row: runs `decode` on the token before
        `index` and writes its cache entries."""
        began = time.perf_counter()
        outputs = self.decode(token=prompt[:, index - 1 : index], index=np.array([index - 1], np.int32), **cache)
        self.step_seconds.append(time.perf_counter() - began)
        for name, entries in outputs.items():
            if name.startswith("entries_"):
                cache[name.replace("entries", "cache", 1)][:, index - 1] = entries[:, 0]
        logits = outputs["logits"].astype(np.float32)
        if self._logits_scale:
            logits = (logits - self._logits_zero_point) * self._logits_scale
        return logits, None, cache


def _source_vocabulary_size(path, target_vocabulary_size):
    """The rows of a translator file's source embedding: of the two GATHER
    tables of its `prefill` graph, the one that `decode` (the target side
    alone) does not have; the target's size when both are alike."""
    graph = flatbuffer.read_model(path)
    rows = {}
    for signature in graph.signatureDefs:
        ops = flatbuffer.operators(graph, signature.subgraphIndex)
        rows[signature.signatureKey.decode()] = [op.inputs[0][1][0] for op in ops if op.name == "GATHER"]
    source = list(rows[PREFILL])
    for size in rows[DECODE]:
        source.remove(size)
    return int(source[0]) if source else target_vocabulary_size

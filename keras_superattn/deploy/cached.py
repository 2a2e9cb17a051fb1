"""A generative model as one `.tflite` file with a cached decoding step.

The file has two signatures, as LiteRT's generative examples:

- `prefill`: `tokens (1, T)` int32 (a translator also `source (1, S)`) ->
  `logits (1, T, V)` and the cache of every block `i`: `cache_k_i` and
  `cache_v_i`, `(1, T, d)` each (a translator also its cross-attention's
  `cross_k_i`, `cross_v_i`, `(1, S, d)`);
- `decode`: `token (1, 1)` int32, `index (1,)` int32 (the token's position)
  and the caches (a translator also `source` and the cross caches) ->
  `logits (1, V)` and the new token's entries `entries_k_i`, `entries_v_i`
  `(1, 1, d)`, which the caller writes at `index` (`TFLiteGenerator` does).

What a block caches follows its attention (`cache_streams`): keys `k` and
values `v`; Efficient Attention, whose keys are its values, has `k` only
(half the bytes). The decoding step returns entries rather than the updated
cache because TFLite's integer kernels have no dynamic update of a slice;
the step's graph is then full-integer int8 like the rest. Each cache tensor
has its own int8 scale, the same in both signatures and for its entries, so
the caller copies int8 entries into the int8 cache as they are.
"""

import os

import keras
import numpy as np

from keras_superattn._files import atomic_path
from keras_superattn.deploy import bridge
from keras_superattn.deploy import flatbuffer
from keras_superattn.deploy.full_integer import check_full_integer
from keras_superattn.deploy.generate import DECODE
from keras_superattn.deploy.generate import PREFILL
from keras_superattn.deploy.generate import TFLiteGenerator
from keras_superattn.deploy.inputs import as_arrays
from keras_superattn.deploy.inputs import check_choice
from keras_superattn.deploy.inputs import model_samples
from keras_superattn.deploy.results import CachedConversion
from keras_superattn.deploy.tensorflow_converter import to_tflite
from keras_superattn.generation import Generator
from keras_superattn.generation import sequence_agreement

CACHED_QUANTIZATIONS = ("int8", "float32")


def convert_generator(
    model,
    output_path,
    quantization="int8",
    representative_data=None,
    num_calibration_samples=32,
    validation_data=None,
    verbose=True,
):
    """Converts a `models.language_model` or `models.translator` to one
    `.tflite` file with `prefill` and `decode` signatures (module docstring).

    The int8 file is full-integer (`check_full_integer` runs on both
    signatures). It is calibrated on `representative_data`, the model's
    own training inputs: each sequence is prefilled, and decoded at every
    position from the Keras model's cache. Before the file is written its
    greedy continuations are compared with the Keras model's.

    Args:
        model: the generative model, or the path of its `.keras` file.
        output_path: where to write the file.
        quantization: `"int8"` or `"float32"`.
        representative_data: the model's inputs `(N, T)` token ids, or for a
            translator `{"source": (N, S), "target": (N, T)}`; required for
            int8.
        num_calibration_samples: int. Sequences that calibrate; each gives
            one prefill and `T - 1` decoding steps.
        validation_data: optional inputs as `representative_data`; the first
            token of each target (a translator's start token) or the first
            quarter of each sequence (a language model) is the prompt whose
            greedy continuation is compared. Default: the calibration data.
        verbose: bool. Print the agreement.

    Returns:
        A `CachedConversion`.
    """
    check_choice("quantization", quantization, CACHED_QUANTIZATIONS)
    if keras.backend.backend() != "tensorflow":
        return bridge.run_in_tensorflow(
            f"{__name__}:convert_generator", model, output_path, quantization=quantization,
            representative_data=as_arrays(representative_data), num_calibration_samples=num_calibration_samples,
            validation_data=as_arrays(validation_data), verbose=verbose,
        )
    if isinstance(model, (str, os.PathLike)):
        model = keras.saving.load_model(model, compile=False)
    # Eager: the calibration caches and the check's reference come from the
    # Keras layers as they are, not from an XLA fusion that rounds otherwise
    # (same files from the same checkpoint, whatever compiles generation).
    generator = Generator(model, compiled=False)
    samples = None
    if quantization == "int8":
        samples = model_samples("representative_data", representative_data, model)
        samples = {name: x[:num_calibration_samples] for name, x in samples.items()}
    checked = samples if validation_data is None else model_samples("validation_data", validation_data, model)
    if checked is None:
        raise ValueError(
            "Argument `validation_data` is required for a float32 file (int8 checks its calibration data). "
            "Received: None"
        )
    tflite_bytes = _convert(generator, quantization, samples)
    prompts, sources = _prompts(generator, checked)
    want = generator.generate(prompts, source=sources)
    with atomic_path(output_path, suffix=".tflite.part") as temporary:
        with open(temporary, "wb") as f:
            f.write(tflite_bytes)
        got, decode_seconds = TFLiteGenerator(temporary).generate(prompts, source=sources)
    conversion = CachedConversion(
        os.fspath(output_path), quantization, sequence_agreement(got, want), len(prompts),
        _cache_bytes_per_token(generator, quantization), decode_seconds,
    )
    if verbose:
        print(f"{output_path}: greedy continuations as the Keras model's on "
              f"{100 * conversion.greedy_agreement:.1f}% of {conversion.num_checked} prompts")
    return conversion


def _cache_bytes_per_token(generator, quantization):
    numbers = sum(d.self_attention_layer.cache_streams * d.self_attention_layer.head_dim
                  * d.self_attention_layer.num_heads for d in generator.decoders)
    return numbers * (1 if quantization == "int8" else 4)


def _prompts(generator, inputs):
    """Prompts `(N, T)` (and sources) from model inputs, as documented above."""
    if generator.is_translator:
        targets = np.asarray(inputs["target"])
        prompts = np.zeros_like(targets)
        prompts[:, 0] = targets[:, 0]
        return prompts, np.asarray(inputs["source"])
    tokens = np.asarray(next(iter(inputs.values())))
    prompts = np.where(np.arange(tokens.shape[1]) < max(1, tokens.shape[1] // 4), tokens, 0)
    return prompts.astype("int32"), None


def _streams(generator, attention):
    """Per block, the names of its cache tensors: `k` (keys) and `v`
    (values), or `k` alone where they are the same (Efficient Attention)."""
    return [("k", "v")[: getattr(decoder, attention).cache_streams] for decoder in generator.decoders]


def _split(caches, prefix, streams):
    """The blocks' caches (tuples of `(B, T, d)` streams) as named tensors
    `{prefix}_{k|v}_{block}`: each gets its own int8 scale (stacked, all
    would share one)."""
    return {
        f"{prefix}_{name}_{block}": cache[stream]
        for block, (cache, names) in enumerate(zip(caches, streams))
        for stream, name in enumerate(names)
    }


def _join(inputs, prefix, streams):
    """The inverse of `_split`."""
    return [tuple(inputs[f"{prefix}_{name}_{block}"] for name in names) for block, names in enumerate(streams)]


def _empty(batch, length, width, streams):
    return [tuple(keras.ops.zeros((batch, length, width)) for _ in names) for names in streams]


def _signatures(generator):
    """`{signature key: (function, {input name: (shape, dtype)})}` of the file."""
    length, width = generator.sequence_length, generator.embedding.embedding_dim
    self_streams = _streams(generator, "self_attention_layer")
    prefill_specs = {"tokens": ((1, length), "int32")}
    decode_specs = {
        "token": ((1, 1), "int32"),
        # Shape (1,), not a scalar: arm64 LiteRT crashes on a 0-d input.
        "index": ((1,), "int32"),
    }
    for name in _names("cache", self_streams):
        decode_specs[name] = ((1, length, width), "float32")
    if generator.is_translator:
        cross_streams = _streams(generator, "cross_attention_layer")
        source_length = generator.model.get_layer("source_embedding").sequence_length
        prefill_specs["source"] = decode_specs["source"] = ((1, source_length), "int32")
        for name in _names("cross", cross_streams):
            decode_specs[name] = ((1, source_length, width), "float32")

    def prefill(inputs):
        tokens = inputs["tokens"]
        empty = _empty(1, length, width, self_streams)
        encoded = source_mask = cross = None
        if generator.is_translator:
            encoded = generator.encoder(inputs["source"], training=False)  # (1, S, d)
            source_mask = keras.ops.not_equal(inputs["source"], 0)
            cross = _empty(1, source_length, width, cross_streams)
        logits, _, caches, cross = generator.run_blocks(tokens, empty, cross, source_mask, 0, encoded)
        outputs = {"logits": logits, **_split(caches, "cache", self_streams)}
        if generator.is_translator:
            outputs.update(_split(cross, "cross", cross_streams))
        return outputs

    def decode(inputs):
        cross = source_mask = None
        if generator.is_translator:
            cross = _join(inputs, "cross", cross_streams)
            source_mask = keras.ops.not_equal(inputs["source"], 0)
        caches = _join(inputs, "cache", self_streams)
        index = inputs["index"][0]
        logits, _, entries, _ = generator.run_blocks(inputs["token"], caches, cross, source_mask, index, None)
        return {"logits": logits[:, 0], **_split(entries, "entries", self_streams)}

    return {PREFILL: (prefill, prefill_specs), DECODE: (decode, decode_specs)}


def _names(prefix, streams):
    return [f"{prefix}_{name}_{block}" for block, names in enumerate(streams) for name in names]


def _calibration_samples(generator, samples):
    """`{signature: {input: array}}`: each sequence prefilled, and decoded at
    each position from the Keras model's cache of the whole sequence.

    Position 0 too: a sampler's first step decodes the prompt's last token
    again (`Generator.next`), so a translation's first step runs there
    (uncalibrated, a small translator's file followed Keras on 89 % of
    sentences instead of 97 %). The steps at padding calibrate the later
    positions, which a greedy output longer than its sequence reaches."""
    tokens = samples["target"] if generator.is_translator else next(iter(samples.values()))
    source = samples["source"] if generator.is_translator else None
    _, _, cache = generator.build_cache(tokens, source)  # every row at once
    named = _split(_blocks(cache["self"]), "cache", _streams(generator, "self_attention_layer"))
    if generator.is_translator:
        named.update(_split(_blocks(cache["cross"]), "cross", _streams(generator, "cross_attention_layer")))
        named["source"] = source
    positions = tokens.shape[1] - 1  # the last position is never decoded
    # One decoding sample per row and position, row by row.
    decode = {
        "token": tokens[:, :positions].reshape(-1, 1),  # (B * positions, 1)
        "index": np.tile(np.arange(positions, dtype=np.int32), len(tokens)),  # (B * positions,)
        **{name: np.repeat(keras.ops.convert_to_numpy(value), positions, axis=0) for name, value in named.items()},
    }
    prefill = {"tokens": tokens, **({"source": source} if generator.is_translator else {})}
    return {PREFILL: prefill, DECODE: decode}


def _blocks(stacked):
    """`(B, layers, n, T, d)` -> per block, a tuple of its `(B, T, d)` streams."""
    return [tuple(stacked[:, block, i] for i in range(stacked.shape[2])) for block in range(stacked.shape[1])]


def _convert(generator, quantization, samples):
    calibration_samples = _calibration_samples(generator, samples) if samples is not None else None
    # The decoding step's cache input first: its scale is the one XNNPACK's
    # int8 concatenation of cache and new entries insists on.
    tied = [
        [(DECODE, name), (PREFILL, name), (DECODE, name.replace("cache", "entries", 1))]
        for name in _names("cache", _streams(generator, "self_attention_layer"))
    ]
    if generator.is_translator:
        cross_names = _names("cross", _streams(generator, "cross_attention_layer"))
        tied += [[(DECODE, name), (PREFILL, name)] for name in cross_names]
    converted = to_tflite(
        generator.model, _signatures(generator), quantization, calibration_samples, tied=tied,
        cache_returns_entries=True,
    )
    if quantization == "float32":
        return converted
    check_full_integer(converted, model=generator.model)
    return _same_quantization(converted, tied)


def _same_quantization(tflite_bytes, tied):
    """Gives each group of tied tensors the first one's scale and zero point.
    From the same range the quantizer's scales can still differ by a float32
    rounding step between signatures; the int8 kernels take their
    multipliers from the tensors' scales, so this changes no result."""
    model = flatbuffer.read_model(tflite_bytes)
    for group in tied:
        first, *others = [flatbuffer.signature_tensor(model, key, name).quantization for key, name in group]
        for quantization in others:
            quantization.scale, quantization.zeroPoint = first.scale, first.zeroPoint
    return flatbuffer.write_model(model)

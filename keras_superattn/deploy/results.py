"""What the converters return: the written file and how closely it follows Keras."""

import dataclasses
import warnings

import numpy as np

from keras_superattn.deploy.runtime import decisions

# Below this top-1 agreement with the Keras model, `convert` warns.
MIN_AGREEMENT = 0.97


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What `convert` wrote, and how closely the file follows the Keras model.

    Usable wherever a path is (`os.fspath(conversion)`, `str(conversion)`).

    Attributes:
        path: the written `.tflite` file.
        quantization: the quantization mode.
        agreement: share of checked samples on which the file and the Keras
            model take the same decision (argmax, or `p > 0.5` for one
            sigmoid unit; for a sequence output, such as next-token
            logits, the share of positions); None when no samples were
            given to check.
        mean_absolute_difference: mean |file output - Keras output|; None
            when no samples were given.
        num_checked: number of samples compared.
        near_ties: share of the differing decisions on which the Keras
            model scores its own choice and the file's within one step of
            the file's integer output (for one sigmoid unit: scores within
            a step of 0.5): ties at the file's output resolution, which no
            calibration removes. None for a file with float outputs, or
            when no decision differs.
    """

    path: str
    quantization: str
    agreement: float | None
    mean_absolute_difference: float | None
    num_checked: int
    near_ties: float | None = None

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path


@dataclasses.dataclass(frozen=True)
class CachedConversion:
    """What `convert_generator` wrote, and how closely it follows Keras.

    Attributes:
        path: the written `.tflite` file.
        quantization: `"int8"` or `"float32"`.
        greedy_agreement: share of the checked prompts whose greedy
            continuation by the file equals the Keras model's (cached).
        num_checked: number of prompts checked.
        cache_bytes_per_token: bytes of self-attention cache per token,
            all layers: `layers * n * d` times 1 (int8) or 4 (float32).
        decode_seconds: mean seconds of one `decode` invocation (one
            generated token) during the check, on LiteRT's default threads.
    """

    path: str
    quantization: str
    greedy_agreement: float
    num_checked: int
    cache_bytes_per_token: int
    decode_seconds: float

    def __fspath__(self):
        return self.path


def near_ties(want, got, step):
    """Share of the decisions where `got` differs from `want` on which `want`
    scores both choices within `step` of each other (see `Conversion`)."""
    want_decisions, got_decisions = decisions(want), decisions(got)
    differ = want_decisions != got_decisions
    if step is None or not differ.any():
        return None
    if want.shape[-1] == 1:
        margin = np.abs(want[..., 0] - 0.5)
    else:
        scores = np.take_along_axis(want, np.stack([want_decisions, got_decisions], -1), -1)  # (..., 2)
        margin = scores[..., 0] - scores[..., 1]
    return float(np.mean(margin[differ] <= step))


def warn_if_disagreeing(conversion, stacklevel=4):
    """Warns when a file takes the Keras model's decision on under 97% of
    samples; `stacklevel` points the warning at the converter's caller."""
    if conversion.agreement is None or conversion.agreement >= MIN_AGREEMENT:
        return
    advice = (
        "Calibrate with more, and more typical, samples, or, for a model with float inputs, use "
        "quantization='int16x8'."
    )
    if conversion.near_ties is not None and conversion.near_ties >= 0.5:
        advice = (
            f"{100 * conversion.near_ties:.0f}% of the differing decisions are near ties: the Keras model scores "
            "both choices within one step of the file's integer output, a resolution that more calibration "
            "does not change. " + advice
        )
    warnings.warn(
        f"The {conversion.quantization} file {conversion.path} takes the Keras model's decision on only "
        f"{100 * conversion.agreement:.1f}% of {conversion.num_checked} samples (below "
        f"{100 * MIN_AGREEMENT:.0f}%). {advice}",
        stacklevel=stacklevel,
    )

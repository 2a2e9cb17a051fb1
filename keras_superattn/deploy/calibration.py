"""Activation ranges for full-integer quantization, measured without buffer sharing.

TensorFlow's calibrator reads each tensor's range while the interpreter runs,
and the interpreter lets an op such as the residual ADD or a MUL write its
result into its input's buffer. The range recorded for that input is then the
range of the op's *output* (upstream TensorFlow issue 127842): in a ViT about
one tensor in fifteen gets a range 1.6-5x too wide, and the int8 file loses
several accuracy points. Here the calibration graph is run by LiteRT with
`experimental_preserve_all_tensors=True`, where every tensor keeps a buffer
of its own, and the ranges measured that way replace the recorded ones before
TensorFlow's MLIR quantizer turns the graph into int8.
"""

import numpy as np

from keras_superattn.deploy import flatbuffer
from keras_superattn.deploy.options import STATISTICS
from keras_superattn.deploy.runtime import signature_inputs

# Activations beyond this magnitude have no useful int8 range; at 1e38 the
# MLIR quantizer aborts the process ("scale out of expressed type range").
LARGEST_ACTIVATION = 1e30


def recalibrate(calibrated_model, samples, batch_size=1, statistic="minmax", tied=()):
    """Returns `calibrated_model` (the converter's calibrate-only output, bytes)
    with every recorded activation range replaced by the measured one.

    Args:
        calibrated_model: bytes of a float `.tflite` carrying min/max statistics.
        samples: `{input name: array (N, *input_shape)}` of calibration inputs;
            for a file with several signatures, `{signature key: {input name:
            array}}`, each signature calibrated on its own samples.
        batch_size: int. The static batch of the graph.
        statistic: `"minmax"`: the minimum and maximum over all samples;
            `"mean_minmax"`: the mean over batches of each batch's minimum
            and maximum, which clips rare outliers;
            `"tensorflow"`: keep the ranges TensorFlow recorded (its stock
            behaviour, for comparison).
        tied: groups of `(signature key, input or output name)` that get one
            range, the union of theirs, and so one int8 scale: e.g. a cache
            that one signature returns and another takes.
    """
    model = flatbuffer.read_model(calibrated_model)
    if statistic != "tensorflow":
        by_signature = samples if _per_signature(samples) else {None: samples}
        for key, signature_samples in by_signature.items():
            subgraph = _subgraph_index(model, key)
            tensors = model.subgraphs[subgraph].tensors
            recorded = [
                i for i, t in enumerate(tensors) if t.quantization is not None and t.quantization.min is not None
            ]
            ranges = measured_ranges(
                calibrated_model, recorded, signature_samples, batch_size, statistic, key, subgraph
            )
            for index, (low, high) in ranges.items():
                tensors[index].quantization.min = [float(low)]
                tensors[index].quantization.max = [float(high)]
    for group in tied:
        quantizations = [flatbuffer.signature_tensor(model, key, name).quantization for key, name in group]
        low = min(q.min[0] for q in quantizations)
        high = max(q.max[0] for q in quantizations)
        for quantization in quantizations:
            quantization.min, quantization.max = [low], [high]
    return flatbuffer.write_model(model)


def _per_signature(samples):
    return all(isinstance(value, dict) for value in samples.values())


def _subgraph_index(model, signature_key):
    if signature_key is None:
        return 0
    for signature in model.signatureDefs:
        if signature.signatureKey.decode() == signature_key:
            return signature.subgraphIndex
    raise ValueError(f"The model has no signature {signature_key!r}")


def measured_ranges(model_bytes, tensor_indices, samples, batch_size, statistic, signature_key=None, subgraph=0):
    """`{tensor index: (min, max)}` over the batches of `samples`, for the
    tensors of `subgraph`, run through the signature `signature_key` (None:
    the file's first)."""
    if statistic not in ("minmax", "mean_minmax"):
        raise ValueError(
            f"Argument `calibration_statistic` must be one of {STATISTICS}. "
            f"Received: calibration_statistic={statistic!r}"
        )
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    interpreter = Interpreter(
        model_content=bytes(model_bytes),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    if signature_key is None:
        inputs = signature_inputs(interpreter)

        def run(batch):
            for name, values in batch.items():
                interpreter.set_tensor(inputs[name]["index"], values)
            interpreter.invoke()

    else:
        runner = interpreter.get_signature_runner(signature_key)

        def run(batch):
            runner(**batch)

    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details(subgraph)}
    lows, highs = {i: [] for i in tensor_indices}, {i: [] for i in tensor_indices}
    for start in range(0, len(next(iter(samples.values()))), batch_size):
        run({name: values[start : start + batch_size] for name, values in samples.items()})
        for index in tensor_indices:
            values = interpreter.get_tensor(index, subgraph)
            low, high = values.min(), values.max()
            if not max(abs(low), abs(high)) <= LARGEST_ACTIVATION:  # also catches NaN
                raise ValueError(
                    f"Calibration samples {start}..{start + batch_size - 1} drive tensor "
                    f"{names.get(index, index)!r} to {high if abs(high) > abs(low) else low:g}: an int8 "
                    f"range needs finite values below {LARGEST_ACTIVATION:g}. Remove or fix those samples."
                )
            lows[index].append(low)
            highs[index].append(high)
    reduce_low, reduce_high = (np.mean, np.mean) if statistic == "mean_minmax" else (np.min, np.max)
    return {i: (reduce_low(lows[i]), reduce_high(highs[i])) for i in tensor_indices}


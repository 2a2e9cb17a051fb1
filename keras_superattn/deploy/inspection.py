"""What a .tflite file holds, and whether it fits the Coral Edge TPU."""

import collections
import os
import shutil
import subprocess

from keras_superattn.deploy import flatbuffer

# Ops the Edge TPU compiler maps, from Coral's "TensorFlow models on the Edge
# TPU" page (the supported-operations table), as recorded in docs/stack.md:
# the head of the list was checked against a mirror of that table, its tail
# is from memory. TRANSPOSE and BATCH_MATMUL are not in it; google-coral/edgetpu
# issues #24, #193 and #342 show them falling back to the CPU.
EDGE_TPU_OPS = frozenset(
    """ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D EXPAND_DIMS
    FULLY_CONNECTED HARD_SWISH L2_NORMALIZATION LOGISTIC LSTM MAXIMUM MAX_POOL_2D
    MEAN MINIMUM MUL PACK PAD PRELU QUANTIZE REDUCE_MAX REDUCE_MIN RELU RELU6
    RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SLICE
    SOFTMAX SPACE_TO_DEPTH SPLIT SQUEEZE STRIDED_SLICE SUB SUM SQUARED_DIFFERENCE
    TANH TRANSPOSE_CONV""".split()
)
_EDGE_TPU_TYPES = {"INT8", "UINT8"}
# int32 is allowed for biases and shape / axis operands (read-only constants).
_CONSTANT_TYPES = {"INT8", "UINT8", "INT32"}


def _edge_tpu_problem(op):
    """Why the Edge TPU would not run `op`, or None."""
    if op.name not in EDGE_TPU_OPS:
        return f"{op.name} is not an Edge TPU op"
    types = {t for t, _ in op.outputs} | {t for t, _ in op.inputs[:1]}
    if not types <= _EDGE_TPU_TYPES or not {t for t, _ in op.inputs} <= _CONSTANT_TYPES:
        return f"{op.name} has tensors of type {sorted(op.types() - _EDGE_TPU_TYPES)}"
    for _, shape in op.inputs[:1] + op.outputs:
        if len(shape) > 3 and any(d > 1 for d in shape[:-3]):
            return f"{op.name} has a tensor {list(shape)} with more than 3 dimensions above 1"
    return None


def inspect(path):
    """Reports on a `.tflite` file from its flatbuffer alone.

    Returns a dict: file size, inputs and outputs (name, shape, shape
    signature, type, quantization), signature names, op histogram, tensor type histogram,
    whether shapes are static and the batch is 1, whether the graph is fully
    integer (and the float ops if not), and an Edge TPU section: whether the
    file meets the requirements, the first op that would fall back to the CPU
    with its reason, and the share of ops and multiply-accumulates before it
    (the compiler maps only the part of the graph before the first
    unsupported op). If `edgetpu_compiler` is on the PATH, its own log is
    added under `edgetpu_compiler`.
    """
    model = flatbuffer.read_model(path)
    graph = model.subgraphs[0]
    ops = flatbuffer.operators(model)

    def tensor(index):
        t = graph.tensors[index]
        shape = [int(d) for d in (t.shape if t.shape is not None else ())]  # a scalar may have none
        signature = [int(d) for d in t.shapeSignature] if t.shapeSignature is not None else shape
        q = t.quantization
        scale = [float(s) for s in q.scale] if q is not None and q.scale is not None else []
        zero = [int(z) for z in q.zeroPoint] if q is not None and q.zeroPoint is not None else []
        return {
            "name": t.name.decode() if isinstance(t.name, bytes) else t.name,
            "shape": shape,
            "shape_signature": signature,
            "type": flatbuffer.TYPE_NAMES[t.type],
            "scale": scale[:1],
            "zero_point": zero[:1],
        }

    def names(items):
        return [item.name.decode() if isinstance(item.name, bytes) else item.name for item in items or []]

    signatures = {
        (definition.signatureKey.decode() if isinstance(definition.signatureKey, bytes) else definition.signatureKey): {
            "inputs": names(definition.inputs), "outputs": names(definition.outputs)
        }
        for definition in model.signatureDefs or []
    }
    tensors = [tensor(i) for i in range(len(graph.tensors))]
    inputs = [tensors[i] for i in graph.inputs]
    outputs = [tensors[i] for i in graph.outputs]
    static = all(-1 not in t["shape_signature"] for t in tensors)
    batch_one = all(t["shape"][:1] == [1] for t in inputs + outputs)
    floats = flatbuffer.float_ops(ops)

    problems = []
    if len(model.subgraphs) != 1:
        problems.append(f"{len(model.subgraphs)} subgraphs; the Edge TPU needs one")
    if not static:
        problems.append("dynamic shapes (a -1 in a shape signature)")
    if not batch_one:
        problems.append("batch size is not 1")
    first = next(((op, reason) for op in ops if (reason := _edge_tpu_problem(op))), None)
    total_macs = sum(op.macs for op in ops) or 1
    mapped = ops[: first[0].index] if first else ops
    report = {
        "path": str(path),
        "size_bytes": os.path.getsize(path),
        "inputs": inputs,
        "outputs": outputs,
        "signatures": signatures,
        "num_ops": len(ops),
        "op_histogram": dict(collections.Counter(op.name for op in ops).most_common()),
        "tensor_types": dict(collections.Counter(t["type"] for t in tensors)),
        "static_shapes": static,
        "batch_one": batch_one,
        "builtin_only": all(op.name != "CUSTOM" for op in ops),  # no Flex or custom ops
        "full_integer": not floats,
        "float_ops": [f"#{op.index} {op.name}" for op in floats],
        "xnnpack_partitions": xnnpack_partitions(path),
        "edge_tpu": {
            "compatible": not problems and first is None,
            "problems": problems + ([first[1]] if first else []),
            "first_cpu_op": None
            if first is None
            else {"index": first[0].index, "op": first[0].name, "reason": first[1]},
            "ops_on_tpu_share": len(mapped) / max(len(ops), 1),
            "macs_on_tpu_share": sum(op.macs for op in mapped) / total_macs,
            "total_macs": sum(op.macs for op in ops),
        },
    }
    compiler = shutil.which("edgetpu_compiler")
    if compiler:
        run = subprocess.run([compiler, "--show_operations", "-o", os.path.dirname(os.path.abspath(path)), str(path)],
                             capture_output=True, text=True)
        report["edgetpu_compiler"] = run.stdout + run.stderr
    return report


def xnnpack_partitions(path):
    """How many pieces LiteRT's XNNPACK delegate cuts the graph into: 1 when it
    takes every op; each op it leaves to LiteRT's own kernels (int8 SOFTMAX,
    GELU, RSQRT, BATCH_MATMUL of two activations, measured by
    benchmarks/int8_delegation.py at 3495e53) splits it further."""
    from keras_superattn.deploy.runtime import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    # A private method, but the only view LiteRT's Python API gives of the
    # delegated graph: each partition is one DELEGATE node.
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def _describe(tensor):
    return f"{tensor['shape']} {tensor['type']} (signature {tensor['shape_signature']})"


def format_report(report):
    """The report as text for people."""
    tpu = report["edge_tpu"]
    lines = [
        f"{report['path']}: {report['size_bytes']:,} bytes, {report['num_ops']} ops",
        *(f"  input  {t['name']}: {_describe(t)}" for t in report["inputs"]),
        *(f"  output {t['name']}: {_describe(t)}" for t in report["outputs"]),
        *(
            f"  signature {key}: inputs {sig['inputs']}, outputs {sig['outputs']}"
            for key, sig in report["signatures"].items()
        ),
        "  ops: " + ", ".join(f"{name} x{count}" for name, count in report["op_histogram"].items()),
        "  tensor types: " + ", ".join(f"{name} x{count}" for name, count in report["tensor_types"].items()),
        f"  builtin ops only: {report['builtin_only']}, static shapes: {report['static_shapes']}, "
        f"batch 1: {report['batch_one']}, full integer: {report['full_integer']}"
        + (f" (float ops: {report['float_ops']})" if report["float_ops"] else ""),
        f"  XNNPACK delegate partitions: {report['xnnpack_partitions']} (1 = XNNPACK runs the whole graph)",
        f"  Edge TPU: {'compatible' if tpu['compatible'] else 'not fully compatible'}",
    ]
    if tpu["first_cpu_op"]:
        first = tpu["first_cpu_op"]
        lines.append(
            f"    first op on the CPU: #{first['index']} {first['op']} ({first['reason']}); before it: "
            f"{100 * tpu['ops_on_tpu_share']:.0f}% of ops, {100 * tpu['macs_on_tpu_share']:.0f}% of "
            f"{tpu['total_macs']:,} multiply-accumulates"
        )
    first_reason = tpu["first_cpu_op"]["reason"] if tpu["first_cpu_op"] else None
    lines += [f"    problem: {p}" for p in tpu["problems"] if p != first_reason]
    if "edgetpu_compiler" in report:
        lines += ["  edgetpu_compiler:", report["edgetpu_compiler"]]
    return "\n".join(lines)

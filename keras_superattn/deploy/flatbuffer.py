"""Reads a .tflite flatbuffer with the schema module that LiteRT ships."""

import dataclasses

import numpy as np

try:
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # pragma: no cover - TensorFlow carries the same module
    from tensorflow.lite.python import schema_py_generated as schema

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
FLOAT_TYPES = {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"}


@dataclasses.dataclass
class Op:
    index: int
    name: str
    inputs: list  # [(type name, shape)], constant tensors included
    outputs: list
    macs: int
    reads_model_input: bool
    writes_model_output: bool

    def types(self):
        return {t for t, _ in self.inputs + self.outputs}


def read_model(source):
    """A `schema.ModelT` from a path or from the file's bytes."""
    if not isinstance(source, (bytes, bytearray)):
        with open(source, "rb") as f:
            source = f.read()
    return schema.ModelT.InitFromPackedBuf(bytearray(source), 0)


def _op_name(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")


def _macs(name, inputs, outputs):
    """Multiply-accumulates of the ops that do the heavy lifting; 0 for the rest."""
    if not outputs:
        return 0
    out = int(np.prod(outputs[0][1])) if len(outputs[0][1]) else 1
    if name == "FULLY_CONNECTED":
        return out * int(inputs[1][1][-1])  # weights (units, features)
    if name == "CONV_2D":
        return out * int(np.prod(inputs[1][1][1:]))  # filter (out, kh, kw, in)
    if name == "DEPTHWISE_CONV_2D":
        return out * int(np.prod(inputs[1][1][1:3]))
    if name == "BATCH_MATMUL":
        return out * int(inputs[0][1][-1])
    return 0


def operators(model, subgraph=0):
    """The ops of one subgraph in execution order."""
    graph = model.subgraphs[subgraph]

    def describe(indices):
        return [
            (TYPE_NAMES[graph.tensors[i].type], tuple(int(d) for d in graph.tensors[i].shape))
            for i in (indices if indices is not None else [])
            if i >= 0
        ]

    model_inputs, model_outputs = set(graph.inputs), set(graph.outputs)
    ops = []
    for index, op in enumerate(graph.operators):
        name = _op_name(model, op)
        inputs, outputs = describe(op.inputs), describe(op.outputs)
        ops.append(
            Op(
                index, name, inputs, outputs, _macs(name, inputs, outputs),
                reads_model_input=bool(model_inputs & set(op.inputs)),
                writes_model_output=bool(model_outputs & set(op.outputs)),
            )
        )
    return ops


def float_ops(ops):
    """Ops that touch a float tensor, apart from quantizing the model's inputs
    and dequantizing its outputs."""
    return [
        op for op in ops
        if op.types() & FLOAT_TYPES
        and not (op.name == "QUANTIZE" and op.reads_model_input)
        and not (op.name == "DEQUANTIZE" and op.writes_model_output)
    ]

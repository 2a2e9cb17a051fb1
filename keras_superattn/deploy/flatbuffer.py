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
    # The converter names an output tensor after the TensorFlow ops it came
    # from, e.g. "sequential/global_average_pooling1d_1/Cast".
    output_names: list = dataclasses.field(default_factory=list)

    def types(self):
        return {t for t, _ in self.inputs + self.outputs}


def read_model(source):
    """A `schema.ModelT` from a path or from the file's bytes."""
    name = "the model bytes"
    if not isinstance(source, (bytes, bytearray)):
        name = repr(str(source))
        with open(source, "rb") as f:
            source = f.read()
    # Every .tflite flatbuffer carries the identifier TFL3 after its root offset.
    if len(source) < 8 or bytes(source[4:8]) != b"TFL3":
        raise ValueError(f"{name} is not a .tflite file: it lacks the TFL3 flatbuffer identifier")
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(source), 0)
    except Exception as error:  # a damaged buffer fails in struct or flatbuffers
        raise ValueError(f"{name} is not a readable .tflite file: {error}") from error


def write_model(model):
    """The bytes of a `schema.ModelT`, with the file identifier LiteRT checks."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


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
        return [(TYPE_NAMES[graph.tensors[i].type], shape(graph.tensors[i])) for i in indices if i >= 0]

    def shape(tensor):
        # A scalar tensor may carry no shape at all.
        return tuple(int(d) for d in tensor.shape) if tensor.shape is not None else ()

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
                output_names=[graph.tensors[i].name.decode("utf-8", "replace") for i in op.outputs if i >= 0],
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


def signature_tensor(model, signature_key, name):
    """The tensor behind input or output `name` of signature `signature_key`."""
    for signature in model.signatureDefs:
        if signature.signatureKey.decode() == signature_key:
            for tensor in (*signature.inputs, *signature.outputs):
                if tensor.name.decode() == name:
                    return model.subgraphs[signature.subgraphIndex].tensors[tensor.tensorIndex]
    raise ValueError(f"The model's signature {signature_key!r} has no tensor {name!r}")

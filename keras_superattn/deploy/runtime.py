"""Runs .tflite files with LiteRT, hiding int8 (de)quantization and batching."""

import threading

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType
except ImportError:  # the older standalone runtime, where that is all there is
    from tflite_runtime.interpreter import Interpreter
    from tflite_runtime.interpreter import OpResolverType

# TensorFlow's own tf.lite.Interpreter is never used: in TF 2.21 its default
# XNNPACK path computes wrong int8 BATCH_MATMUL results (docs/stack.md).


class TFLiteModel:
    """A `.tflite` model with a Keras-like `predict` / `evaluate`.

    Float inputs are quantized with the model's input scale and zero point
    when the model takes int8/uint8, and outputs are dequantized back to
    float, so callers always deal in the Keras model's units. A model with a
    static batch (batch 1 for mobile) is fed slice by slice. A model with
    several inputs (e.g. a translator's `source` and `target` ids) takes a
    dict keyed by its signature's input names, the Keras model's input names.

    Inputs are checked rather than cast blindly: NaN or inf, integers out of
    the input type's range (e.g. token ids >= 2**31 for int32) and integer
    arrays of another type than a quantized input's own (e.g. uint8 images
    for an int8 model, which expects the Keras model's float values) raise.

    Thread safety: one instance may be shared by threads; their calls take
    turns on a lock, as a LiteRT interpreter runs one invocation at a time.
    For parallel inference, give each thread its own `TFLiteModel`.

    Args:
        path: the `.tflite` file.
        num_threads: int. CPU threads; 1 is right for phones and for tests.
        use_xnnpack: bool. Use LiteRT's default XNNPACK delegate, or only the
            builtin reference kernels.

    Attributes:
        inputs: `{signature input name: LiteRT tensor details}`; the names
            are the Keras model's input names.
        input: the details of the first (for most models the only) input.
        output: the details of the output.
        batch_size: the static batch.

    Example:

    ```python
    model = TFLiteModel("tflite_models/imdb_super_int8.tflite")
    probabilities = model.predict(x_test)
    logits = TFLiteModel("translator_int8.tflite").predict({"source": s, "target": t})
    ```
    """

    def __init__(self, path, num_threads=1, use_xnnpack=True):
        resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.path = str(path)
        self.interpreter = Interpreter(
            model_path=self.path, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        self.interpreter.allocate_tensors()
        self._lock = threading.Lock()
        self.inputs = signature_inputs(self.interpreter)
        self.input = next(iter(self.inputs.values()))
        (self.output,) = self.interpreter.get_output_details()
        self.batch_size = int(self.input["shape"][0])

    def quantize(self, x, name=None):
        """Inputs in the type of input `name` (default: the first): float
        values through its scale and zero point when it is quantized,
        integers checked against its range."""
        detail = self.input if name is None else self.inputs[name]
        x = np.asarray(x)
        dtype = np.dtype(detail["dtype"])
        scale, zero_point = detail["quantization"]
        if np.issubdtype(x.dtype, np.floating):
            if not np.isfinite(x).all():
                raise ValueError(f"Argument `x` must be finite for {self.path}. Received values with NaN or inf")
            if np.issubdtype(dtype, np.integer) and scale:
                info = np.iinfo(dtype)
                return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)
            if np.issubdtype(dtype, np.integer):
                raise ValueError(
                    f"{self.path} takes {dtype} values (e.g. token ids). Received: a {x.dtype} array"
                )
            return x.astype(dtype)
        if np.issubdtype(dtype, np.floating):
            return x.astype(dtype)
        if scale and x.dtype != dtype:
            raise ValueError(
                f"{self.path} takes the Keras model's float values (quantized to {dtype} with scale "
                f"{scale:g}), or raw {dtype}. Received: a {x.dtype} array; convert it as the Keras "
                "model expects it, e.g. images scaled to floats."
            )
        info = np.iinfo(dtype)
        if x.size and (x.min() < info.min or x.max() > info.max):
            raise ValueError(
                f"Argument `x` has values outside {dtype}'s range [{info.min}, {info.max}] for "
                f"{self.path}. Received: min {x.min()}, max {x.max()}"
            )
        return x.astype(dtype)

    def dequantize(self, y):
        """Raw outputs as float32."""
        scale, zero_point = self.output["quantization"]
        if np.issubdtype(y.dtype, np.integer) and scale:
            return (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)

    def predict_raw(self, batch):
        """One call on exactly `batch_size` samples; the raw output tensor."""
        return self._invoke({name: self.quantize(x, name) for name, x in self._by_name(batch).items()})

    def _invoke(self, batch):
        """One call on `{input name: batch}` already in the inputs' types."""
        with self._lock:
            for name, x in batch.items():
                self.interpreter.set_tensor(self.inputs[name]["index"], x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output["index"])

    def _by_name(self, x):
        """`x` as `{input name: array}`: a dict with exactly the model's input
        names, or one array for a model with one input."""
        if not isinstance(x, dict):
            if len(self.inputs) != 1:
                raise ValueError(
                    f"{self.path} has {len(self.inputs)} inputs: pass a dict with the keys {list(self.inputs)}. "
                    f"Received: a {type(x).__name__}"
                )
            return {self._single_name: np.asarray(x)}
        if set(x) != set(self.inputs):
            raise ValueError(
                f"Argument `x` must have exactly the keys {list(self.inputs)} for {self.path}. Received: {list(x)}"
            )
        return {name: np.asarray(x[name]) for name in self.inputs}

    @property
    def _single_name(self):
        return next(iter(self.inputs))

    def predict(self, x):
        """Float outputs for every sample of `x`, like `keras.Model.predict`.

        `x`: an array, or for a model with several inputs a dict of arrays
        keyed by input name, all with the same number of samples."""
        x = self._by_name(x)
        counts = {name: len(value) if value.ndim else None for name, value in x.items()}
        for name, value in x.items():
            expected = tuple(self.inputs[name]["shape"][1:])
            if value.shape[1:] != expected or value.ndim == 0:
                label = "`x`" if len(x) == 1 else f"`x[{name!r}]`"
                raise ValueError(
                    f"Argument {label} must have shape (N, {', '.join(map(str, expected))}) for {self.path}. "
                    f"Received: {value.shape}"
                )
        if len(set(counts.values())) != 1:
            raise ValueError(f"The inputs of `x` must have the same number of samples. Received: {counts}")
        samples = next(iter(counts.values()))
        if samples % self.batch_size:
            raise ValueError(
                f"The model's static batch is {self.batch_size}; `x` must hold a multiple of it. "
                f"Received: {samples} samples"
            )
        if samples == 0:
            return np.zeros((0, *self.output["shape"][1:]), np.float32)
        x = {name: self.quantize(value, name) for name, value in x.items()}  # checks every sample first
        outputs = [
            self.dequantize(self._invoke({name: value[start : start + self.batch_size] for name, value in x.items()}))
            for start in range(0, samples, self.batch_size)
        ]
        return np.concatenate(outputs)

    def evaluate(self, x, y):
        """Classification accuracy: sigmoid (one unit) or softmax outputs."""
        return classification_accuracy(self.predict(x), y)


def signature_inputs(interpreter):
    """`{input name: tensor details}` of the file's serving signature (the
    Keras input names), or of its input tensors when it has no signature."""
    signatures = interpreter.get_signature_list()
    if not signatures:
        return {detail["name"]: detail for detail in interpreter.get_input_details()}
    names = signatures[next(iter(signatures))]["inputs"]
    by_index = {detail["index"]: detail for detail in interpreter.get_input_details()}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    return {name: by_index[runner.get_input_details()[name]["index"]] for name in names}


def decisions(probabilities):
    """The class of each row: `p > 0.5` for one sigmoid unit, else the argmax."""
    probabilities = np.asarray(probabilities)
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] > 0.5).astype(np.int64)
    return probabilities.argmax(-1)


def classification_accuracy(probabilities, labels):
    """Share of right decisions (see `decisions`)."""
    labels = np.asarray(labels).reshape(-1)
    return float(np.mean(decisions(probabilities) == labels))

"""Runs .tflite files with LiteRT, hiding int8 (de)quantization and batching."""

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
    static batch (batch 1 for mobile) is fed slice by slice.

    Args:
        path: the `.tflite` file.
        num_threads: int. CPU threads; 1 is right for phones and for tests.
        use_xnnpack: bool. Use LiteRT's default XNNPACK delegate, or only the
            builtin reference kernels.

    Example:

    ```python
    model = TFLiteModel("tflite_models/imdb_super_int8.tflite")
    probabilities = model.predict(x_test)
    ```
    """

    def __init__(self, path, num_threads=1, use_xnnpack=True):
        resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.path = str(path)
        self.interpreter = Interpreter(
            model_path=self.path, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        self.batch_size = int(self.input["shape"][0])

    def quantize(self, x):
        """Float inputs in the model's input type (int8 / uint8 via its scale and zero point)."""
        dtype = self.input["dtype"]
        scale, zero_point = self.input["quantization"]
        if np.issubdtype(x.dtype, np.floating) and dtype in (np.int8, np.uint8) and scale:
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        return x.astype(dtype)

    def dequantize(self, y):
        """Raw outputs as float32."""
        scale, zero_point = self.output["quantization"]
        if y.dtype in (np.int8, np.uint8) and scale:
            return (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)

    def predict_raw(self, batch):
        """One call on exactly `batch_size` samples; the raw output tensor."""
        self.interpreter.set_tensor(self.input["index"], self.quantize(np.asarray(batch)))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def predict(self, x):
        """Float outputs for every sample of `x`, like `keras.Model.predict`."""
        x = np.asarray(x)
        expected = tuple(self.input["shape"][1:])
        if x.shape[1:] != expected:
            raise ValueError(
                f"Argument `x` must have shape (N, {', '.join(map(str, expected))}) for {self.path}. "
                f"Received: {x.shape}"
            )
        if len(x) % self.batch_size:
            raise ValueError(
                f"The model's static batch is {self.batch_size}; `x` must hold a multiple of it. "
                f"Received: {len(x)} samples"
            )
        outputs = [
            self.dequantize(self.predict_raw(x[start : start + self.batch_size]))
            for start in range(0, len(x), self.batch_size)
        ]
        return np.concatenate(outputs)

    def evaluate(self, x, y):
        """Classification accuracy: sigmoid (one unit) or softmax outputs."""
        return classification_accuracy(self.predict(x), y)


def classification_accuracy(probabilities, labels):
    """Share of right decisions: `p > 0.5` for one sigmoid unit, else argmax."""
    labels = np.asarray(labels).reshape(-1)
    if probabilities.shape[-1] == 1:
        predicted = (probabilities[:, 0] > 0.5).astype(labels.dtype)
    else:
        predicted = probabilities.argmax(-1)
    return float(np.mean(predicted == labels))

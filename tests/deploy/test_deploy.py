"""Keras -> .tflite conversion, the LiteRT runtime wrapper, inspection, CLI."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn import layers
from keras_superattn import models
from keras_superattn.deploy import flatbuffer
from keras_superattn.deploy.options import XNNPACK_FLOAT_OPS

VARIANTS = tuple(layers.VARIANTS)
on_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="conversion runs on TensorFlow; other backends are covered by test_convert_from_any_backend",
)
# Stated tolerance of int8 against float outputs (probabilities in [0, 1]) of
# these small, briefly trained models: mean absolute error, and a correlation
# that a model computing garbage (about 0) could not reach. Measured here: mean
# errors 0.02-0.03 and correlations 0.83-0.99. Trained 4-block ViTs of the MNIST
# tutorial lost 0.1-0.9 accuracy points in int8 after 5 epochs and 0.05-0.42
# after 12 (tflite_models/manifest.json).
INT8_MEAN_ERROR = 0.05
INT8_CORRELATION = 0.8
# These small models are briefly trained or not at all: their near-ties make
# `convert`'s agreement warning (tested in test_deploy_inputs.py) expected here.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The int8(_xnnpack)? file")]


def assert_close_int8(got, want):
    assert np.abs(got - want).mean() <= INT8_MEAN_ERROR, np.abs(got - want).mean()
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] >= INT8_CORRELATION


@pytest.fixture(scope="module")
def mnist_images(data_dir):
    """Calibration images, test images and labels."""
    (x_train, _), (x_test, y_test) = datasets.load_mnist(data_dir)
    return datasets.images_as_floats(x_train[:64]), datasets.images_as_floats(x_test[:64]), y_test[:64]


@pytest.fixture(scope="module")
def trained_vits(data_dir):
    """Small ViTs after one epoch on 2,048 MNIST images: realistic activations."""
    (x_train, y_train), _ = datasets.load_mnist(data_dir)
    x, y = datasets.images_as_floats(x_train[-2048:]), y_train[-2048:]
    trained = {}
    for variant in VARIANTS:
        model = small_vit(variant)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        trained[variant] = model
    return trained


def small_vit(variant):
    keras.utils.set_random_seed(1)
    return models.vit_classifier(
        variant, (28, 28, 1), patch_size=7, num_classes=10, embedding_dim=32, num_layers=2, intermediate_dim=64
    )


def small_text(variant):
    keras.utils.set_random_seed(1)
    return models.text_classifier(variant, 20000, 32)


def predict(model, x):
    return keras.ops.convert_to_numpy(model.predict(x, verbose=0))


def check_int8(tmp_path, model, calibration, x):
    path = tmp_path / "model.tflite"
    deploy.convert(model, path, representative_data=calibration, num_calibration_samples=64, verbose=False)
    report = deploy.inspect(path)
    assert report["full_integer"], report["float_ops"]
    assert report["static_shapes"] and report["batch_one"] and report["builtin_only"]
    assert set(report["tensor_types"]) <= {"INT8", "INT32", "BOOL"}
    want = predict(model, x)
    outputs = {}
    for xnnpack in (True, False):
        outputs[xnnpack] = deploy.TFLiteModel(path, use_xnnpack=xnnpack).predict(x)
        assert_close_int8(outputs[xnnpack], want)
    # XNNPACK and the builtin kernels round differently inside; both must
    # stay within the same tolerance of each other as of the float model.
    assert_close_int8(outputs[True], outputs[False])
    return path


@on_tensorflow
@pytest.mark.parametrize("variant", VARIANTS)
def test_vit_int8_is_integer_and_close(tmp_path, mnist_images, trained_vits, variant):
    calibration, x, _ = mnist_images
    check_int8(tmp_path, trained_vits[variant], calibration, x)


@on_tensorflow
@pytest.mark.parametrize("variant", VARIANTS + ("mha",))
def test_text_int8_is_integer_and_close(tmp_path, imdb_test_sequences, variant):
    tokens = imdb_test_sequences[0]
    path = check_int8(tmp_path, small_text(variant), tokens[64:128], tokens[:64])
    signature = deploy.inspect(path)["signatures"]["serving_default"]
    assert signature == {"inputs": ["tokens"], "outputs": ["probability"]}


@on_tensorflow
@pytest.mark.parametrize("variant", VARIANTS)
def test_int8_xnnpack_keeps_only_the_undelegated_ops_in_float(tmp_path, mnist_images, trained_vits, variant):
    calibration, x, _ = mnist_images
    model = trained_vits[variant]
    files = {}
    for mode in ("int8", "int8_xnnpack"):
        files[mode] = tmp_path / f"{mode}.tflite"
        deploy.convert(model, files[mode], quantization=mode, representative_data=calibration, verbose=False)
    report = deploy.inspect(files["int8_xnnpack"])
    float_ops = {entry.split()[1] for entry in report["float_ops"]}  # "#12 SOFTMAX"
    assert float_ops <= {*XNNPACK_FLOAT_OPS, "QUANTIZE", "DEQUANTIZE"}
    assert {"SOFTMAX", "BATCH_MATMUL"} <= float_ops  # every attention has them
    assert report["static_shapes"] and report["builtin_only"]
    assert report["xnnpack_partitions"] < deploy.inspect(files["int8"])["xnnpack_partitions"]
    runtime = deploy.TFLiteModel(files["int8_xnnpack"])
    assert runtime.input["dtype"] == np.int8  # int8 in, int8 out, as the full-integer file
    assert_close_int8(runtime.predict(x), predict(model, x))


@on_tensorflow
def test_super_alignment_is_a_fully_connected_op(tmp_path, mnist_images, trained_vits):
    # Keras computes W_A X as a broadcast matmul; a file gets X^T W_A^T, a
    # FULLY_CONNECTED (which XNNPACK runs in int8) instead of a BATCH_MATMUL.
    model = trained_vits["super"]
    path = tmp_path / "super.tflite"
    deploy.convert(model, path, representative_data=mnist_images[0], verbose=False)
    kernels = [tuple(w.shape) for w in model.weights if w.path.endswith("alignment")]
    assert len(kernels) == 2 and kernels[0] != (32, 32)  # no projection (width 32) has W_A's shape
    ops = flatbuffer.operators(flatbuffer.read_model(path))
    mixing = [op for op in ops if op.name == "FULLY_CONNECTED" and op.inputs[1][1] == kernels[0]]
    assert len(mixing) == len(kernels)
    assert all(op.types() <= {"INT8", "INT32"} for op in mixing)


@on_tensorflow
@pytest.mark.parametrize("quantization, atol", [("float32", 1e-5), ("float16", 1e-2), ("dynamic", 0.05)])
def test_float_and_dynamic_modes(tmp_path, mnist_images, quantization, atol):
    _, x, _ = mnist_images
    model = small_vit("super")
    path = deploy.convert(model, tmp_path / "m.tflite", quantization=quantization)
    runtime = deploy.TFLiteModel(path)
    assert runtime.input["dtype"] == np.float32
    np.testing.assert_allclose(runtime.predict(x), predict(model, x), atol=atol)


@on_tensorflow
def test_uint8_io_for_coral(tmp_path, mnist_images):
    calibration, x, _ = mnist_images
    model = small_vit("efficient")
    path = deploy.convert(
        model, tmp_path / "m.tflite", representative_data=calibration, io_dtype="uint8", verbose=False
    )
    runtime = deploy.TFLiteModel(path)
    assert runtime.input["dtype"] == np.uint8 and runtime.output["dtype"] == np.uint8
    assert_close_int8(runtime.predict(x), predict(model, x))


@on_tensorflow
def test_keras_layer_normalization_is_refused_and_nothing_is_written(tmp_path, mnist_images):
    calibration, _, _ = mnist_images
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Reshape((28, 28))(inputs)
    x = keras.layers.LayerNormalization()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    path = tmp_path / "m.tflite"
    with pytest.raises(ValueError, match=r"not fully integer.*NEG"):
        deploy.convert(model, path, representative_data=calibration, verbose=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(quantization="int4"), r"`quantization` must be one of .*Received: quantization='int4'"),
        (dict(io_dtype="int16"), r"`io_dtype` must be one of .*Received: io_dtype='int16'"),
        (dict(representative_data=None), r"`representative_data` is required"),
        (dict(representative_data=np.zeros((0, 28, 28, 1))), r"N >= 1.*Received: \(0, 28, 28, 1\)"),
        (dict(representative_data=np.zeros((4, 28, 28))), r"must have shape \(N, 28, 28, 1\).*Received: \(4, 28, 28\)"),
    ],
)
def test_bad_arguments_leave_no_file(tmp_path, kwargs, match):
    path = tmp_path / "m.tflite"
    with pytest.raises(ValueError, match=match):
        deploy.convert(small_vit("standard"), path, verbose=False, **kwargs)
    assert not path.exists()


def test_convert_from_any_backend(tmp_path, mnist_images, trained_vits, data_dir):
    # On JAX and PyTorch this saves the model and converts in a TensorFlow subprocess.
    calibration, _, _ = mnist_images
    model = trained_vits["super"]  # compiled and trained: optimizer state in the file
    model.save(tmp_path / "m.keras")
    path = deploy.convert(
        str(tmp_path / "m.keras"), tmp_path / "m.tflite", representative_data=calibration, verbose=False
    )
    runtime = deploy.TFLiteModel(path)
    _, (x_test, y_test) = datasets.load_mnist(data_dir)
    x, y = datasets.images_as_floats(x_test[:512]), y_test[:512]
    assert_close_int8(runtime.predict(x), predict(model, x))
    # The file scores about what the Keras model scores, far above chance
    # (0.1). Measured: Keras 0.58-0.60, int8 within 0.024 of it.
    keras_accuracy = np.mean(predict(model, x).argmax(-1) == y)
    assert keras_accuracy > 0.4
    assert runtime.evaluate(x, y) == pytest.approx(keras_accuracy, abs=0.05)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="on TensorFlow conversion runs in this process")
def test_the_tensorflow_process_reports_failures_and_serves_on(tmp_path, mnist_images, trained_vits):
    from keras_superattn.deploy import bridge

    calibration, x, _ = mnist_images
    model = trained_vits["optimized"]
    (tmp_path / "broken.keras").write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match=r"(?s)subprocess failed \(see the error output\):\nTraceback.*broken"):
        deploy.convert(str(tmp_path / "broken.keras"), tmp_path / "x.tflite", verbose=False)
    first = deploy.convert(model, tmp_path / "a.tflite", quantization="float32", verbose=False)
    process = bridge._server["process"]
    process.kill()  # as if it had crashed: the next conversion starts another
    process.wait()
    second = deploy.convert(model, tmp_path / "b.tflite", quantization="float32", verbose=False)
    assert bridge._server["process"].pid != process.pid
    for conversion in (first, second):
        np.testing.assert_allclose(deploy.TFLiteModel(conversion.path).predict(x), predict(model, x), atol=1e-5)


@on_tensorflow
def test_inspect_reports_where_attention_leaves_the_edge_tpu(tmp_path, mnist_images):
    calibration, _, _ = mnist_images
    path = tmp_path / "m.tflite"
    deploy.convert(small_vit("standard"), path, representative_data=calibration, verbose=False)
    report = deploy.inspect(path)
    tpu = report["edge_tpu"]
    assert not tpu["compatible"]
    assert tpu["first_cpu_op"]["op"] in ("TRANSPOSE", "BATCH_MATMUL")
    assert 0 < tpu["ops_on_tpu_share"] < 1 and 0 < tpu["macs_on_tpu_share"] < 1
    # The patch projection (a CONV_2D: 16 patches x 32 units x 49 pixels) precedes attention.
    assert tpu["total_macs"] > 16 * 32 * 49
    assert report["op_histogram"]["CONV_2D"] == 1
    text = deploy.format_report(report)
    assert report["size_bytes"] == path.stat().st_size
    assert "first op on the CPU" in text and f"{path.stat().st_size:,} bytes" in text


@on_tensorflow
def test_command_line(tmp_path, mnist_images):
    calibration, _, _ = mnist_images
    np.save(tmp_path / "calibration.npy", calibration)
    small_vit("efficient").save(tmp_path / "m.keras")

    def cli(*args):
        command = [sys.executable, "-m", "keras_superattn", *args]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout

    out = tmp_path / "m.tflite"
    cli("convert", str(tmp_path / "m.keras"), "--calibration", str(tmp_path / "calibration.npy"), "--out", str(out))
    assert json.loads(cli("inspect", str(out), "--json"))["full_integer"]
    bench = json.loads(cli("bench", str(out), "--runs", "5", "--json"))
    assert bench["median_ms"] > 0 and bench["size_bytes"] == out.stat().st_size


def readme_example(pooling):
    """README's Example model, with the given pooling layer."""
    return keras.Sequential([
        keras.Input((32,), dtype="int32"),
        keras.layers.Embedding(20000, 32, mask_zero=True),
        layers.SuperAttention(num_heads=4),
        pooling,
        keras.layers.Dense(1, activation="sigmoid"),
    ])


@pytest.fixture(scope="module")
def imdb_masked(data_dir):
    """IMDB as the reference pads it: short reviews start with padding (id 0)."""
    (x_train, y_train), (x_test, y_test) = datasets.imdb_sequences(data_dir=data_dir)
    return (x_train, y_train), (x_test[:2048], y_test[:2048])


@on_tensorflow
def test_a_masked_keras_pooling_is_named_with_its_replacement(tmp_path, imdb_masked):
    (x_train, _), _ = imdb_masked
    model = readme_example(keras.layers.GlobalAveragePooling1D())
    for quantization in ("int8", "int8_xnnpack"):
        with pytest.raises(
            ValueError,
            match=r"#\d+ CAST \['BOOL', 'FLOAT32'\] in layer 'global_average_pooling1d\w*' \(GlobalAveragePooling1D\).*"
            r"keras_superattn.layers.MaskedAveragePooling\(\) instead of keras.layers.GlobalAveragePooling1D\(\)",
        ):
            deploy.convert(model, tmp_path / "m.tflite", quantization, representative_data=x_train[:64], verbose=False)
    assert os.listdir(tmp_path) == []


@on_tensorflow
@pytest.mark.parametrize(
    "build",
    [
        lambda: readme_example(layers.MaskedAveragePooling()),
        lambda: models.text_classifier("super", 20000, 32, mask_zero=True),
    ],
    ids=["readme_example", "text_classifier"],
)
def test_masked_text_classifiers_convert_and_keep_their_accuracy(tmp_path, imdb_masked, build):
    (x_train, y_train), (x_test, y_test) = imdb_masked
    assert (x_test == 0).any()  # the mask has padding to hide
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.7  # it learnt something for int8 to keep
    for quantization in ("int8", "int8_xnnpack"):
        path = tmp_path / f"{quantization}.tflite"
        deploy.convert(model, path, quantization, representative_data=x_train[:256], verbose=False)
        if quantization == "int8":
            assert deploy.inspect(path)["full_integer"]
        int8_accuracy = deploy.TFLiteModel(path).evaluate(x_test, y_test)
        # Measured: within 0.3 points of the float accuracy (0.75-0.77) on these 2,048 reviews.
        assert abs(int8_accuracy - accuracy) <= 0.01, (quantization, int8_accuracy, accuracy)


@keras.saving.register_keras_serializable(package="tests")
class FloatGate(keras.layers.Layer):
    """Casts a comparison to float: an op no int8 kernel computes."""

    def call(self, x):
        return x * keras.ops.cast(keras.ops.greater(x, 0.5), "float32")


@on_tensorflow
def test_a_custom_float_op_is_traced_to_its_layer(tmp_path):
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2)(FloatGate(name="gate")(inputs)))
    calibration = np.random.default_rng(0).random((32, 8)).astype("float32")
    with pytest.raises(ValueError, match=r"CAST \['BOOL', 'FLOAT32'\] in layer 'gate' \(FloatGate\).*Use keras.ops"):
        deploy.convert(model, tmp_path / "m.tflite", representative_data=calibration, verbose=False)

"""Bad inputs to the deploy path: each gets a clear error, nothing is lost or guessed."""

import dataclasses
import os
import stat
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

from keras_superattn import deploy
from keras_superattn import models
from keras_superattn.deploy.results import near_ties
from keras_superattn.deploy.results import warn_if_disagreeing

on_tensorflow = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="conversion runs on TensorFlow")
# Conversions and subprocesses: the slow lane. Untrained models have near-ties, hence the filter.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The int8 file")]


def tiny_vit():
    keras.utils.set_random_seed(2)
    return models.vit_classifier("super", (8, 8, 1), patch_size=4, num_classes=3, embedding_dim=8, num_layers=1,
                                 intermediate_dim=8, num_heads=2)


def tiny_text():
    keras.utils.set_random_seed(2)
    return models.text_classifier("efficient", 50, 8, embedding_dim=8, num_heads=2, intermediate_dim=8)


def images(count, seed=0):
    return np.random.default_rng(seed).random((count, 8, 8, 1)).astype("float32")


@pytest.fixture(scope="module")
def int8_files(tmp_path_factory):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("conversion runs on TensorFlow")
    folder = tmp_path_factory.mktemp("int8")
    vit, text = folder / "vit.tflite", folder / "text.tflite"
    deploy.convert(tiny_vit(), vit, representative_data=images(16), verbose=False)
    tokens = np.random.default_rng(0).integers(1, 50, (16, 8)).astype("int32")
    deploy.convert(tiny_text(), text, representative_data=tokens, verbose=False)
    return vit, text


@on_tensorflow
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_calibration_data_is_refused_naming_the_sample(tmp_path, bad):
    data = images(8)
    data[5, 3, 3, 0] = bad
    before = set(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=r"`representative_data` must hold finite values only; samples \[5\]"):
        deploy.convert(tiny_vit(), tmp_path / "m.tflite", representative_data=data, verbose=False)
    assert set(os.listdir(tmp_path)) == before


@on_tensorflow
def test_huge_calibration_values_are_refused_naming_the_samples(tmp_path):
    # 1e38 is finite, but no int8 range holds it: the quantizer used to abort the process.
    data = images(8)
    data[5, 3, 3, 0] = 1e38
    with pytest.raises(ValueError, match=r"Calibration samples 5..5 drive tensor .* to 1e\+38"):
        deploy.convert(tiny_vit(), tmp_path / "m.tflite", representative_data=data, verbose=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_calibration_samples=0), r"`num_calibration_samples` must be a positive integer.*=0"),
        (dict(batch_size=0), r"`batch_size` must be a positive integer.*=0"),
        (dict(batch_size=16), r"whole batches of batch_size=16. Received: 8 samples"),
        (dict(batch_size=3), r"whole batches of batch_size=3. Received: 8 samples"),
        (dict(calibration_statistic="median"), r"`calibration_statistic` must be one of"),
    ],
)
def test_calibration_counts(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        deploy.convert(tiny_vit(), tmp_path / "m.tflite", representative_data=images(8), verbose=False, **kwargs)
    assert not (tmp_path / "m.tflite").exists()


@on_tensorflow
def test_every_calibration_sample_is_used_with_a_larger_batch(tmp_path):
    path = deploy.convert(
        tiny_vit(), tmp_path / "m.tflite", representative_data=images(8), batch_size=4, verbose=False
    )
    runtime = deploy.TFLiteModel(path)
    assert runtime.batch_size == 4 and runtime.predict(images(8, seed=1)).shape == (8, 3)


@on_tensorflow
def test_sequential_model_converts_and_computes_the_same(tmp_path):
    # The README's own example, as a user would convert it.
    keras.utils.set_random_seed(0)
    from keras_superattn.layers import SuperAttention

    model = keras.Sequential([
        keras.Input((8,), dtype="int32"),
        keras.layers.Embedding(50, 8),
        SuperAttention(num_heads=2),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    tokens = np.random.default_rng(0).integers(0, 50, (32, 8)).astype("int32")
    conversion = deploy.convert(model, tmp_path / "m.tflite", quantization="float32", validation_data=tokens)
    assert conversion.mean_absolute_difference < 1e-5 and conversion.agreement == 1.0
    want = keras.ops.convert_to_numpy(model(tokens))
    np.testing.assert_allclose(deploy.TFLiteModel(conversion).predict(tokens), want, atol=1e-5)


@on_tensorflow
def test_written_files_honour_the_umask(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    old = os.umask(0o022)
    try:
        deploy.convert(tiny_vit(), path, quantization="float32", verbose=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@on_tensorflow
def test_conversion_reports_agreement_and_warns_when_low(tmp_path):
    model = tiny_vit()
    good = deploy.convert(model, tmp_path / "a.tflite", quantization="float16", validation_data=images(32))
    assert good.agreement == 1.0 and good.num_checked == 32 and good.mean_absolute_difference < 1e-2
    # Calibrated on blank images, checked on real ones: the ranges are useless.
    with pytest.warns(UserWarning, match=r"decision on only .*% of 32 samples \(below 97%\)"):
        bad = deploy.convert(
            model, tmp_path / "b.tflite", representative_data=np.zeros((8, 8, 8, 1), "float32"),
            validation_data=images(32) * 50, verbose=False,
        )
    assert bad.agreement < 0.97
    # The ranges are wrong, not the output's resolution: few differing decisions are near ties.
    assert good.near_ties is None and bad.near_ties < 0.5, (good.near_ties, bad.near_ties)


def test_near_ties_are_differing_decisions_within_one_output_step():
    want = np.array([[0.50, 0.45, 0.05], [0.90, 0.05, 0.05], [0.40, 0.35, 0.25]])
    got = np.array([[0.40, 0.50, 0.10], [0.90, 0.05, 0.05], [0.30, 0.30, 0.40]])
    # Rows 0 and 2 differ; there the Keras model scores its choice 0.05 and 0.15 above the file's.
    assert near_ties(want, got, 0.1) == 0.5
    assert near_ties(want, got, 0.2) == 1.0
    assert near_ties(np.stack([want, want]), np.stack([got, want]), 0.1) == 0.5  # per position of a sequence
    assert near_ties(want, got, None) is None  # float outputs
    assert near_ties(want, want, 0.1) is None  # nothing differs
    # One sigmoid unit: 0.52 is within 0.05 of 0.5, 0.9 is not.
    assert near_ties(np.array([[0.52], [0.9], [0.3]]), np.array([[0.48], [0.1], [0.2]]), 0.05) == 0.5


def test_low_agreement_warning_says_when_the_differences_are_near_ties():
    conversion = deploy.Conversion("m.tflite", "int8", 0.94, 0.3, 1000, near_ties=0.9)
    with pytest.warns(UserWarning, match=r"94\.0% of 1000 samples .* 90% of the differing decisions are near ties"):
        warn_if_disagreeing(conversion)
    with pytest.warns(UserWarning, match="Calibrate with more") as caught:
        warn_if_disagreeing(dataclasses.replace(conversion, near_ties=0.2))
    assert "near ties" not in str(caught[0].message)


@on_tensorflow
def test_int16x8_runs_and_follows_the_float_model(tmp_path):
    model = tiny_vit()
    conversion = deploy.convert(
        model, tmp_path / "m.tflite", quantization="int16x8", representative_data=images(32),
        validation_data=images(64, seed=3), verbose=False,
    )
    report = deploy.inspect(conversion)
    assert report["full_integer"] and "INT16" in report["tensor_types"]
    runtime = deploy.TFLiteModel(conversion)
    assert runtime.input["dtype"] == np.int16
    want = keras.ops.convert_to_numpy(model(images(64, seed=3)))
    got = runtime.predict(images(64, seed=3))
    assert conversion.mean_absolute_difference == pytest.approx(np.abs(got - want).mean(), rel=1e-5)
    int8 = deploy.convert(
        model, tmp_path / "int8.tflite", representative_data=images(32), validation_data=images(64, seed=3),
        verbose=False,
    )
    # Both keep int8 weights; int16 activations still cut the error. Measured
    # on this model: int8 0.0088, int16x8 0.0054 mean difference.
    assert conversion.mean_absolute_difference < 0.8 * int8.mean_absolute_difference


@on_tensorflow
def test_int16x8_refuses_a_token_model_by_name(tmp_path):
    tokens = np.ones((8, 8), "int32")
    expected = r"int16x8.*float inputs.*'int8'.*Received: .*integer inputs 'tokens' \(int32\)"
    with pytest.raises(ValueError, match=expected):
        deploy.convert(tiny_text(), tmp_path / "t.tflite", quantization="int16x8", representative_data=tokens)
    assert not os.listdir(tmp_path)


def test_token_ids_out_of_int32_range_are_refused(int8_files):
    runtime = deploy.TFLiteModel(int8_files[1])
    tokens = np.ones((1, 8), np.int64)
    tokens[0, 3] = 2**32 + 7  # would wrap to 7
    with pytest.raises(ValueError, match=r"outside int32's range"):
        runtime.predict(tokens)
    assert runtime.predict(tokens % 50).shape == (1, 1)


def test_nan_input_is_refused(int8_files):
    x = images(2)
    x[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"must be finite"):
        deploy.TFLiteModel(int8_files[0]).predict(x)


def test_uint8_images_are_not_reinterpreted_as_int8(int8_files):
    runtime = deploy.TFLiteModel(int8_files[0])
    with pytest.raises(ValueError, match=r"takes the Keras model's float values.*Received: a uint8 array"):
        runtime.predict((images(2) * 255).astype(np.uint8))
    raw = runtime.quantize(images(2))
    np.testing.assert_array_equal(runtime.predict(raw), runtime.predict(images(2)))


def test_empty_batch_gives_empty_output(int8_files):
    assert deploy.TFLiteModel(int8_files[0]).predict(np.zeros((0, 8, 8, 1), "float32")).shape == (0, 3)


def test_one_instance_shared_by_threads(int8_files):
    runtime = deploy.TFLiteModel(int8_files[0])
    x = images(8)
    want = runtime.predict(x)
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(runtime.predict(x))
        except Exception as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 80
    for got in results:
        np.testing.assert_array_equal(got, want)


def test_inspect_of_a_file_that_is_not_tflite(tmp_path):
    path = tmp_path / "garbage.tflite"
    path.write_bytes(b"this is not a flatbuffer at all")
    with pytest.raises(ValueError, match=r"garbage.tflite' is not a .tflite file"):
        deploy.inspect(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["inspect", "GARBAGE"], "error: "),
        (["bench", "GARBAGE", "--runs", "0"], "--runs: must be a positive integer"),
        (
            ["convert", "missing.keras", "--out", "m.tflite", "--quantization", "float32"],
            "no .keras file at 'missing.keras'",
        ),
        (["convert", "MODEL", "--out", "m.tflite", "--calibration", "missing.npy"], "missing.npy"),
    ],
)
def test_command_line_user_errors_print_one_line(tmp_path, args, message):
    (tmp_path / "GARBAGE").write_bytes(b"0123456789abcdef")
    tiny_vit().save(tmp_path / "MODEL.keras")
    args = [str(tmp_path / "MODEL.keras") if a == "MODEL" else a for a in args]
    run = subprocess.run(
        [sys.executable, "-m", "keras_superattn", *args], capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env=dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]


def test_inspect_counts_xnnpack_partitions(int8_files, tmp_path):
    # XNNPACK takes a float32 ViT whole; in int8 it leaves SOFTMAX, GELU,
    # RSQRT and activation BATCH_MATMULs to LiteRT, cutting the graph apart.
    float32 = deploy.convert(tiny_vit(), tmp_path / "f.tflite", quantization="float32", verbose=False)
    assert deploy.inspect(float32)["xnnpack_partitions"] == 1
    assert deploy.inspect(int8_files[0])["xnnpack_partitions"] > 1

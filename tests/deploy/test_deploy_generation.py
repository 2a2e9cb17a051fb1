"""Next-token models as int8 files: causality, several named inputs, decoding."""

import functools

import numpy as np
import pytest

from keras_superattn import deploy
from keras_superattn import generation
from keras_superattn import models
from tests.helpers import CONVERTED_HERE
from tests.helpers import VOCABULARY
from tests.helpers import counting_sequences
from tests.helpers import trained

pytestmark = pytest.mark.slow  # trains, converts or spawns processes

LENGTH = 10


@pytest.fixture(scope="module")
def language_model_files(tmp_path_factory):
    """A briefly trained language model per variant, and its int8 file."""
    rng = np.random.default_rng(0)
    sequences = counting_sequences(rng, 512, LENGTH)
    files = {}
    for variant in CONVERTED_HERE:
        build = functools.partial(models.language_model, variant, VOCABULARY, LENGTH, embedding_dim=32, num_layers=1)
        model = trained(build, sequences[:, :-1], sequences[:, 1:])
        path = tmp_path_factory.mktemp(variant) / "lm_int8.tflite"
        conversion = deploy.convert(
            model, path, representative_data=sequences[:200, :-1], validation_data=sequences[200:300, :-1],
            verbose=False,
        )
        files[variant] = (model, deploy.TFLiteModel(path), conversion)
    return files


@pytest.mark.parametrize("variant", CONVERTED_HERE)
def test_int8_language_model_does_not_see_the_future(language_model_files, variant):
    _, file, conversion = language_model_files[variant]
    assert conversion.agreement >= 0.97  # the file computes what the model does
    rng = np.random.default_rng(1)
    ids = rng.integers(1, VOCABULARY, size=(8, LENGTH)).astype("int32")
    logits = file.predict(ids)
    for t in range(LENGTH - 1):
        changed = ids.copy()
        changed[:, t + 1 :] = rng.integers(1, VOCABULARY, size=(8, LENGTH - t - 1))
        got = file.predict(changed)
        # Integer arithmetic: the earlier positions are bit for bit the same.
        np.testing.assert_array_equal(got[:, : t + 1], logits[:, : t + 1], err_msg=f"{variant}, position {t}")
        assert not np.array_equal(got[:, t + 1 :], logits[:, t + 1 :])


@pytest.mark.parametrize("variant", CONVERTED_HERE)
def test_int8_language_model_continues_as_keras(language_model_files, variant):
    model, file, _ = language_model_files[variant]
    prompts = np.zeros((16, LENGTH), "int32")
    prompts[:, :2] = counting_sequences(np.random.default_rng(2), 16, 1)
    want = generation.decode(lambda ids: model.predict(ids, verbose=0), prompts, 2)
    got, seconds = deploy.decode_greedy(file, prompts, 2)
    assert generation.sequence_agreement(got, want) >= 0.9 and seconds > 0
    assert np.mean(got[:, 1:] == (got[:, :-1] % (VOCABULARY - 1)) + 1) >= 0.9  # it learned to count


def test_int8_translator_takes_named_inputs_and_decodes_as_keras(translator_file):
    model, path, conversion, source, target = translator_file
    file = deploy.TFLiteModel(path)
    assert set(file.inputs) == {"source", "target"}
    assert conversion.agreement >= 0.97
    prompt = np.zeros((len(source), 7), "int32")
    prompt[:, 0] = 1
    want = generation.decode(lambda t: model.predict({"source": source, "target": t}, verbose=0), prompt, 1, 2)
    got, _ = deploy.decode_greedy(path, prompt, 1, stop_id=2, inputs={"source": source})
    assert generation.sequence_agreement(got, want) >= 0.9
    assert generation.sequence_agreement(want, target[:, :-1]) >= 0.8  # it learned the task: the check means something


def test_named_inputs_are_checked(translator_file):
    model, path, _, source, target = translator_file
    file = deploy.TFLiteModel(path)
    with pytest.raises(ValueError, match=r"has 2 inputs: pass a dict with the keys"):
        file.predict(source)
    with pytest.raises(ValueError, match=r"must have exactly the keys .*Received: \['source'\]"):
        file.predict({"source": source})
    with pytest.raises(ValueError, match=r"same number of samples. Received: \{'source': 4, 'target': 3\}"):
        file.predict({"source": source[:4], "target": target[:3, :-1]})
    with pytest.raises(ValueError, match=r"`x\['target'\]` must have shape \(N, 7\)"):
        file.predict({"source": source, "target": target})
    with pytest.raises(ValueError, match=r"`ids_name`: the inputs .* not given in `inputs` are \['source', 'target'\]"):
        deploy.decode_greedy(file, target[:, :-1], 1)
    with pytest.raises(ValueError, match=r"model has 2 inputs: pass `representative_data` as a dict"):
        deploy.convert(model, path.parent / "x.tflite", representative_data=source)
    with pytest.raises(ValueError, match=r"`validation_data` must have exactly the keys \['source', 'target'\]"):
        deploy.convert(model, path.parent / "x.tflite", quantization="float32", validation_data={"source": source})
    with pytest.raises(ValueError, match=r"`representative_data\['target'\]` must have shape \(N, 7\)"):
        deploy.convert(model, path.parent / "x.tflite", representative_data={"source": source, "target": target})


def test_cli_benchmarks_and_inspects_a_file_with_several_inputs(translator_file):
    import json
    import subprocess
    import sys

    _, path, _, _, _ = translator_file

    def cli(*args):
        run = subprocess.run([sys.executable, "-m", "keras_superattn", *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads(run.stdout)

    assert cli("bench", str(path), "--runs", "5", "--json")["median_ms"] > 0
    signature = cli("inspect", str(path), "--json")["signatures"]["serving_default"]
    assert sorted(signature["inputs"]) == ["source", "target"] and signature["outputs"] == ["logits"]

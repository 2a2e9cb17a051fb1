"""Every script in benchmarks/ runs whole at its --smoke size, so a change that breaks one fails here."""

import glob
import json
import os
import subprocess
import sys

import keras
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # each script is a process of its own

SCRIPTS = sorted(
    os.path.basename(path) for path in glob.glob(os.path.join(ROOT, "benchmarks", "*.py"))
    if not path.endswith("harness.py")
)
# Scripts that time the layers or generation on the active backend run on every backend;
# the others convert or start their own backends' processes: once, on TensorFlow.
ON_EVERY_BACKEND = {"layers.py", "generation_speed.py"}
NEEDS_DATA = {"int8_fidelity.py", "qat.py"}


def run_smoke(script, backend, tmp_path, data_dir=None):
    arguments = ["--smoke", "--out", str(tmp_path / "out.json")]
    if script in NEEDS_DATA:
        arguments += ["--data-dir", data_dir, "--variants", "super"]
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", script), *arguments], capture_output=True, text=True,
        timeout=900, env=dict(os.environ, KERAS_BACKEND=backend),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert any(line.startswith("| ") for line in run.stdout.splitlines()), run.stdout[-2000:]
    with open(tmp_path / "out.json") as f:
        report = json.load(f)
    assert report["smoke"] is True and report["backend"] == backend and report["results"]


@pytest.mark.parametrize("script", sorted(ON_EVERY_BACKEND))
def test_layer_benchmark_runs_on_this_backend(script, tmp_path):
    run_smoke(script, keras.backend.backend(), tmp_path)


@pytest.mark.backend_independent
@pytest.mark.parametrize("script", [s for s in SCRIPTS if s not in ON_EVERY_BACKEND])
def test_benchmark_runs_at_its_smoke_size(script, tmp_path, request):
    data_dir = request.getfixturevalue("data_dir") if script in NEEDS_DATA else None
    run_smoke(script, "tensorflow", tmp_path, data_dir)


def test_the_special_cases_name_scripts_that_exist():
    assert NEEDS_DATA | ON_EVERY_BACKEND <= set(SCRIPTS), "a benchmark was renamed: update the sets above"

"""The scaling study's report: one record per recorded run, means, gaps to Standard and their errors."""

import json
import math

import pytest

from keras_superattn.training import scaling

ACCURACIES = {  # size -> variant -> test accuracy per seed
    "small": {"standard": [0.70, 0.72], "super": [0.74, 0.76]},
    "large": {"standard": [0.80, 0.84], "super": [0.83], "efficient": [0.81, 0.79]},
}
PARAMS = {"small": 1000, "large": 5000}


def write_runs(folder):
    for size, variants in ACCURACIES.items():
        runs = folder / size / "runs"
        runs.mkdir(parents=True)
        (runs / "config.json").write_text(json.dumps({"embedding_dim": 8 if size == "small" else 32, "num_layers": 1}))
        for variant, accuracies in variants.items():
            for seed, accuracy in enumerate(accuracies):
                record = dict(seed=seed, validation_accuracy=accuracy, test_accuracy=accuracy, test_loss=1 - accuracy,
                              epoch_seconds=2.0, attention_params=10, total_params=PARAMS[size], checkpoint="x")
                (runs / f"{variant}_seed{seed}.json").write_text(json.dumps(record))


def test_the_report_gathers_every_run_with_its_gap_to_standard(tmp_path):
    write_runs(tmp_path)
    summary = scaling.write_report(str(tmp_path), ["small", "large"])
    with open(tmp_path / "scaling.json") as f:
        report = json.load(f)
    assert len(report["runs"]) == 9
    large = [r["variant"] for r in report["runs"] if r["size"] == "large"]
    assert large == ["standard", "standard", "efficient", "efficient", "super"]  # the registry's order
    assert summary["small"]["super"]["gap"] == pytest.approx(0.04)
    # Unpaired standard error sqrt(s_a^2 / n_a + s_b^2 / n_b), with sample standard deviations:
    # two values 0.02 apart have s = 0.02 / sqrt(2).
    s = 0.02 / math.sqrt(2)
    assert summary["small"]["super"]["std"] == pytest.approx(s)
    assert summary["small"]["super"]["gap_error"] == pytest.approx(math.sqrt(s**2 / 2 + s**2 / 2))
    assert summary["large"]["standard"]["std"] == pytest.approx(0.0282843, rel=1e-4)
    assert math.isnan(summary["large"]["super"]["std"])  # one seed: no spread
    assert summary["large"]["efficient"]["gap"] == pytest.approx(-0.02)
    assert (tmp_path / "scaling.png").stat().st_size > 0
    table = (tmp_path / "scaling.md").read_text()
    assert "| large | super | 5,000 | 10 | 1 | 83.00 % | +1.00 |" in table

"""The report of a scaling study: several `compare_variants` runs, one per model size.

A study's folder holds one `compare_variants` folder per size; each finished
run is recorded there in `runs/<variant>_seed<k>.json` beside the size's
settings (`runs/config.json`). `write_report` gathers every recorded run,
finished sizes or not, into `scaling.json` (one flat record per run),
`scaling.md` (a table per size and each variant's gap to Standard) and
`scaling.png` (accuracy, and the gaps with error bars, against parameters).
"""

import glob
import json
import math
import os
import re

import numpy as np

from keras_superattn._files import write_json_atomically
from keras_superattn._files import write_text_atomically
from keras_superattn.layers import VARIANTS

_RUN_FILE = re.compile(r"(?P<variant>\w+)_seed(?P<seed>\d+)\.json$")
BASELINE = "standard"


def recorded_runs(out_dir, sizes):
    """One flat record per finished run of the sizes, in their order:
    size, variant, seed, the size's recorded settings and the run's results."""
    records = []
    order = {variant: index for index, variant in enumerate(VARIANTS)}
    for size in sizes:
        run_dir = os.path.join(out_dir, size, "runs")
        settings_path = os.path.join(run_dir, "config.json")
        if not os.path.exists(settings_path):
            continue
        with open(settings_path) as f:
            settings = json.load(f)
        paths = glob.glob(os.path.join(run_dir, "*_seed*.json"))
        matches = sorted((_RUN_FILE.search(os.path.basename(p)) for p in paths),
                         key=lambda m: (order.get(m["variant"], len(order)), int(m["seed"])))
        for match in matches:
            path = os.path.join(run_dir, match.group(0))
            with open(path) as f:
                run = json.load(f)
            records.append({
                "size": size,
                "variant": match["variant"],
                "seed": run["seed"],
                "embedding_dim": settings.get("embedding_dim"),
                "num_layers": settings.get("num_layers"),
                "total_params": run["total_params"],
                "attention_params": run["attention_params"],
                "test_accuracy": run["test_accuracy"],
                "test_loss": run["test_loss"],
                "validation_accuracy": run["validation_accuracy"],
                "epoch_seconds": run["epoch_seconds"],
            })
    return records


def summarize(records, metric="test_accuracy"):
    """`{size: {variant: {...}}}`: parameters, mean and sample standard
    deviation of `metric` over seeds, and the gap of the mean to Standard's
    with its standard error (unpaired: seeds are not shared draws)."""
    table = {}
    for record in records:
        table.setdefault(record["size"], {}).setdefault(record["variant"], []).append(record)
    summary = {}
    for size, variants in table.items():
        summary[size] = {}
        for variant, runs in variants.items():
            values = np.array([run[metric] for run in runs])
            summary[size][variant] = {
                "total_params": runs[0]["total_params"],
                "attention_params": runs[0]["attention_params"],
                "seeds": len(runs),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "test_loss_mean": float(np.mean([run["test_loss"] for run in runs])),
                "epoch_seconds_mean": float(np.mean([run["epoch_seconds"] for run in runs])),
            }
        baseline = summary[size].get(BASELINE)
        for entry in summary[size].values():
            if baseline is None:
                entry["gap"] = entry["gap_error"] = math.nan
                continue
            entry["gap"] = entry["mean"] - baseline["mean"]
            entry["gap_error"] = math.sqrt(
                entry["std"] ** 2 / entry["seeds"] + baseline["std"] ** 2 / baseline["seeds"]
            )
    return summary


def markdown(records, summary):
    lines = [
        "| size | variant | total params | attention params | seeds | test accuracy (mean ± std) "
        "| gap to standard (± s.e.) | test loss | s / epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, variants in summary.items():
        for variant, s in variants.items():
            lines.append(
                f"| {size} | {variant} | {s['total_params']:,} | {s['attention_params']:,} | {s['seeds']} "
                f"| {100 * s['mean']:.2f}{_spread(s['std'])} % | {100 * s['gap']:+.2f}{_spread(s['gap_error'])} "
                f"| {s['test_loss_mean']:.4f} | {s['epoch_seconds_mean']:.1f} |"
            )
    return f"{len(records)} recorded runs.\n\n" + "\n".join(lines) + "\n"


def _spread(value):
    """` ± value` in points, or nothing where one seed gives no spread."""
    return "" if math.isnan(value) else f" ± {100 * value:.2f}"


def plot(summary, path):
    """Accuracy, and each variant's gap to Standard with standard errors, against total parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = sorted({v for size in summary.values() for v in size})
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for variant in variants:
        points = [s[variant] for s in summary.values() if variant in s]
        params = [p["total_params"] for p in points]
        left.errorbar(params, [100 * p["mean"] for p in points], yerr=[100 * np.nan_to_num(p["std"]) for p in points],
                      marker="o", capsize=3, label=variant)
        if variant != BASELINE:
            right.errorbar(params, [100 * p["gap"] for p in points],
                           yerr=[100 * np.nan_to_num(p["gap_error"]) for p in points], marker="o", capsize=3,
                           label=variant, linewidth=2.5 if variant == "super" else 1)
    right.axhline(0, color="gray", linewidth=0.8)
    for axis, label in ((left, "test accuracy (%), mean ± std over seeds"),
                        (right, "gap to standard (points), ± standard error")):
        axis.set_xscale("log")
        axis.set_xlabel("total parameters")
        axis.set_ylabel(label)
        axis.legend()
    figure.suptitle("IMDB sentiment as the model grows")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(out_dir, sizes):
    """Writes `scaling.json`, `scaling.md` and `scaling.png` of the runs recorded so far."""
    records = recorded_runs(out_dir, sizes)
    if not records:
        return None
    summary = summarize(records)
    write_json_atomically({"runs": records, "summary": summary}, os.path.join(out_dir, "scaling.json"))
    write_text_atomically(markdown(records, summary), os.path.join(out_dir, "scaling.md"))
    plot(summary, os.path.join(out_dir, "scaling.png"))
    return summary

"""The report of a comparison: a markdown table and a plot of `results.json`."""

import os

from keras_superattn._files import write_text_atomically


def markdown_table(results):
    seeds = len(results["seeds"])
    qat = any("best_qat_int8_test_accuracy" in s for s in results["summary"].values())
    lines = [
        f"### {results['config'].get('title', 'results')} ({results['backend']}, {seeds} seed(s))",
        "",
        "| variant | attention params | total params | test accuracy (mean ± std) "
        "| test loss | s / epoch | ms / batch | best run: float / int8 accuracy |"
        + (" quantization-aware int8: accuracy, agreement with float |" if qat else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if qat else ""),
    ]
    for variant, s in results["summary"].items():
        lines.append(
            f"| {variant} | {s['attention_params']:,} | {s['total_params']:,} "
            f"| {100 * s['test_accuracy_mean']:.2f} ± {100 * s['test_accuracy_std']:.2f} % "
            f"| {s['test_loss_mean']:.4f} | {s['epoch_seconds_mean']:.2f} | {s['batch_latency_ms']:.2f} "
            f"| {_percent(s.get('best_test_accuracy'))} / {_percent(s.get('best_int8_test_accuracy'))} |"
            + (
                f" {_percent(s.get('best_qat_int8_test_accuracy'))}, {_percent(s.get('best_qat_int8_agreement'))} |"
                if qat else ""
            )
        )
    return "\n".join(lines) + "\n"


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f} %"


def plot(results, path):
    """Test accuracy against attention parameters, and inference time per batch."""
    points = {
        name: (s["attention_params"], 100 * s["test_accuracy_mean"], 100 * s["test_accuracy_std"])
        for name, s in results["summary"].items()
    }
    _plot(results, points, "test accuracy (%)", path)


def _plot(results, points, ylabel, path):
    """Left: `points` `{variant: (attention params, score, its std)}`; right:
    each variant's inference milliseconds per batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    names = list(summary)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (x, y, error) in points.items():
        left.errorbar(x, y, yerr=error, fmt="o", capsize=4, label=name)
    left.set_xlabel("attention parameters")
    left.set_ylabel(ylabel)
    left.legend()
    right.bar(names, [summary[n]["batch_latency_ms"] for n in names])
    right.set_ylabel("inference ms per batch")
    figure.suptitle(results["config"].get("title", ""))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def generative_table(results, metric, also=()):
    """The markdown table of a `compare_generators` run, for its `metric`
    and the test metrics named in `also` (mean ± std columns)."""
    seeds = len(results["seeds"])
    present = set().union(*(set(s.get("int8") or {}) for s in results["summary"].values()))
    xnnpack, qat = "xnnpack" in present, "qat" in present
    extra = "".join(f" test {name} (mean ± std) |" for name in also)
    lines = [
        f"### {results['config'].get('title', 'results')} ({results['backend']}, {seeds} seed(s))",
        "",
        f"| variant | attention params | total params | test {metric} (mean ± std) |{extra} validation loss "
        f"| s / epoch | ms / batch | best run: float / int8 {metric} | int8 greedy agreement | int8 ms / token "
        "| cached int8: greedy agreement, ms / token |"
        + (f" int8_xnnpack: {metric}, greedy agreement, ms / token |" if xnnpack else "")
        + (f" quantization-aware int8: {metric}, greedy agreement with float |" if qat else ""),
        "|---|---|---|---|" + "---|" * len(also) + "---|---|---|---|---|---|---|" + "---|" * (xnnpack + qat),
    ]
    for variant, s in results["summary"].items():
        int8 = s.get("int8") or {}
        cached = int8.get("cached") or {}
        phone = int8.get("xnnpack") or {}
        quantization_aware = int8.get("qat") or {}
        extra = "".join(f" {s[f'{name}_mean']:.3f} ± {s[f'{name}_std']:.3f} |" for name in also)
        lines.append(
            f"| {variant} | {s['attention_params_mean']:,.0f} | {s['total_params_mean']:,.0f} "
            f"| {s[f'{metric}_mean']:.2f} ± {s[f'{metric}_std']:.2f} |{extra} {s['validation_loss_mean']:.4f} "
            f"| {s['epoch_seconds_mean']:.1f} | {s['batch_latency_ms']:.2f} "
            f"| {s['best_run'][metric]:.2f} / {_number(int8.get(metric))} "
            f"| {_number(int8.get('greedy_agreement'), 100)} % | {_number(int8.get('ms_per_token'))} "
            f"| {_number(cached.get('greedy_agreement'), 100)} %, {_number(cached.get('ms_per_token'))} |"
            + (
                f" {_number(phone.get(metric))}, {_number(phone.get('greedy_agreement'), 100)} %, "
                f"{_number(phone.get('ms_per_token'))} |"
                if xnnpack else ""
            )
            + (
                f" {_number(quantization_aware.get(metric))}, "
                f"{_number(quantization_aware.get('greedy_agreement'), 100)} % |"
                if qat else ""
            )
        )
    return "\n".join(lines) + "\n"


def _number(value, scale=1):
    return "n/a" if value is None else f"{scale * value:.2f}"


def plot_metric(results, metric, higher_is_better, path):
    """Test `metric` against attention parameters, and inference time per batch."""
    points = {
        name: (s["attention_params_mean"], s[f"{metric}_mean"], s[f"{metric}_std"])
        for name, s in results["summary"].items()
    }
    _plot(results, points, f"test {metric} ({'higher' if higher_is_better else 'lower'} is better)", path)


def write_generative_report(results, out_dir, metric, higher_is_better, also=()):
    """results.md and results.png of a `compare_generators` run: `metric`
    (e.g. `"bleu"`) per variant, mean ± std over seeds, with the int8 file's,
    and the further test metrics named in `also`."""
    table = generative_table(results, metric, also)
    write_text_atomically(table, os.path.join(out_dir, "results.md"))
    plot_metric(results, metric, higher_is_better, os.path.join(out_dir, "results.png"))
    print("\n" + table, flush=True)

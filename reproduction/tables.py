"""Markdown tables for REPRODUCTION.md from a tutorial's results.json.

    python reproduction/tables.py reproduction/imdb/results.json [--earlier reproduction/tied_init/imdb_results.json]

Prints the per-seed test accuracies and, with `--earlier`, each variant's
mean next to an earlier run's with the difference.
"""

import argparse
import json


def per_seed(results):
    seeds = results["seeds"]
    lines = [
        "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | best validation run |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for variant, runs in results["runs"].items():
        best = max(runs, key=lambda run: run["validation_accuracy"])["seed"]
        cells = " | ".join(f"{100 * run['test_accuracy']:.2f}" for run in runs)
        lines.append(f"| {variant} | {cells} | seed {best} |")
    return "\n".join(lines)


def against(results, earlier, label):
    lines = [
        f"| variant | this run (mean ± std) | {label} (mean ± std) | difference |",
        "|---|---|---|---|",
    ]
    for variant, now in results["summary"].items():
        then = earlier["summary"].get(variant)
        if then is None:
            continue
        difference = 100 * (now["test_accuracy_mean"] - then["test_accuracy_mean"])
        lines.append(
            f"| {variant} | {100 * now['test_accuracy_mean']:.2f} ± {100 * now['test_accuracy_std']:.2f} "
            f"| {100 * then['test_accuracy_mean']:.2f} ± {100 * then['test_accuracy_std']:.2f} | {difference:+.2f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results")
    parser.add_argument("--earlier", help="an earlier run's results.json to compare with")
    parser.add_argument("--label", default="tied initial weights")
    args = parser.parse_args()
    with open(args.results) as f:
        results = json.load(f)
    print(per_seed(results))
    if args.earlier:
        with open(args.earlier) as f:
            print("\n" + against(results, json.load(f), args.label))


if __name__ == "__main__":
    main()

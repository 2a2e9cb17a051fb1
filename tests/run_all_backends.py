"""Runs the test suite once per Keras backend and fails if any backend fails.

The backend is fixed when keras is imported, so each backend gets its own
pytest process. Extra arguments go to every pytest run, e.g. `-x -k super`.
Set KERAS_SUPERATTN_BACKENDS=jax,torch to run a subset.
"""

import os
import re
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")
COUNTED = ("passed", "failed", "skipped", "error")


def run(backend, pytest_args):
    """Streams one pytest run; returns its exit code and closing counts."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, "-m", "pytest", *pytest_args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last_line = ""
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.strip():
            last_line = line
    counts = {word: 0 for word in COUNTED}
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|error)", last_line):
        counts[word] = int(number)
    return process.wait(), counts


def main(pytest_args):
    backends = os.environ.get("KERAS_SUPERATTN_BACKENDS", ",".join(BACKENDS)).split(",")
    totals = {word: 0 for word in COUNTED}
    broken = []
    for backend in backends:
        print(f"\n===== KERAS_BACKEND={backend} =====", flush=True)
        code, counts = run(backend, pytest_args)
        for word in COUNTED:
            totals[word] += counts[word]
        if code != 0 or counts["passed"] == 0:
            broken.append(f"{backend} (pytest exit {code})")
    failed = totals["failed"] + totals["error"]
    print(f"\nbackends failing: {', '.join(broken) if broken else 'none'}")
    print(f"all backends: {totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

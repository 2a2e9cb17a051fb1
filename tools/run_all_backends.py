"""Runs the test suite once per Keras backend and fails if any backend fails.

The backend is fixed when keras is imported, so each backend gets its own
pytest process. Extra arguments go to every pytest run, e.g. `-x -k super`.
Set KERAS_SUPERATTN_BACKENDS=jax,torch to run a subset.

The tests marked `backend_independent` (committed files, LiteRT runtimes,
emulators: no Keras backend involved) run once, on the first backend.

With two or more cores the backends run side by side, in as many lanes as
there are cores (KERAS_SUPERATTN_TEST_LANES sets it): much of a test's time
is tracing, compiling and conversion on one thread, so two pytest processes
on two cores finish well before one after the other. A lane's output is
printed whole when its backend finishes; with one lane it streams.
"""

import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time

# The longest suite first, so that the others share the other lane; it also
# runs the backend-independent tests, as the two others together take longer.
BACKENDS = ("tensorflow", "jax", "torch")
COUNTED = ("passed", "failed", "skipped", "error")


def run(backend, pytest_args, stream, once_on):
    """One pytest run; returns its exit code, closing counts and seconds.
    Streams its output if `stream`, else prints it whole at the end."""
    env = dict(os.environ, KERAS_BACKEND=backend, KERAS_SUPERATTN_BACKEND_INDEPENDENT_ON=once_on)
    command = [sys.executable, "-m", "pytest", *pytest_args]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE if stream else log, stderr=subprocess.STDOUT, text=True
        )
        print(f"\n===== KERAS_BACKEND={backend} =====" if stream else f"[{backend}] started", flush=True)
        if stream:
            output = []
            for line in process.stdout:
                print(line, end="", flush=True)
                output.append(line)
            output = "".join(output)
        code = process.wait()
        if not stream:
            log.seek(0)
            output = log.read()
            print(f"\n===== KERAS_BACKEND={backend} =====\n{output}", end="", flush=True)
    seconds = time.monotonic() - started
    closing = [line for line in output.splitlines() if line.strip()][-1:] or [""]
    counts = {word: 0 for word in COUNTED}
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|error)", closing[0]):
        counts[word] = int(number)
    return code, counts, seconds


def lanes(backends):
    requested = os.environ.get("KERAS_SUPERATTN_TEST_LANES")
    if requested is not None and not (requested.isdigit() and int(requested) > 0):
        raise SystemExit(f"KERAS_SUPERATTN_TEST_LANES must be a positive integer, got {requested!r}")
    count = int(requested) if requested else (os.cpu_count() or 1)
    return max(1, min(count, len(backends)))


def main(pytest_args):
    backends = os.environ.get("KERAS_SUPERATTN_BACKENDS", ",".join(BACKENDS)).split(",")
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"KERAS_SUPERATTN_BACKENDS: unknown {unknown}; choose from {list(BACKENDS)}")
    workers = lanes(backends)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        runs = pool.map(lambda b: run(b, pytest_args, stream=workers == 1, once_on=backends[0]), backends)
        results = dict(zip(backends, runs))
    totals = {word: 0 for word in COUNTED}
    broken = []
    for backend, (code, counts, seconds) in results.items():
        print(f"{backend}: pytest exit {code}, {counts['passed']} passed, {seconds:.0f} s")
        for word in COUNTED:
            totals[word] += counts[word]
        if code != 0 or counts["passed"] == 0:
            broken.append(f"{backend} (pytest exit {code})")
    failed = totals["failed"] + totals["error"]
    print(f"\nbackends failing: {', '.join(broken) if broken else 'none'} ({workers} lane(s))")
    print(f"all backends: {totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

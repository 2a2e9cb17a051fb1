"""Runs a function in a TensorFlow process, for callers on JAX or PyTorch.

The backend of a process is fixed when keras is imported, and conversion
needs TensorFlow. `run_in_tensorflow("package.module:function", model,
output_path, **arguments)` saves the model and the array arguments to a
temporary folder and sends a JSON request to a TensorFlow process (this
module, KERAS_BACKEND=tensorflow), which imports the function by its name,
calls it and returns its result, a dataclass, as JSON; the class is imported
by name here to rebuild it. The bridge knows no caller.

The process is started by the first request and serves the later ones,
since importing TensorFlow takes about as long as converting a small model.
Each request's output and errors go to files of its own: the output is
printed when `verbose`, the whole error output passed on if the call fails.
"""

import atexit
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings

import numpy as np

# The TensorFlow process, its start-up error output, and a lock so that one
# request at a time is in flight.
_server = {"process": None, "startup_log": None}
_lock = threading.Lock()


def run_in_tensorflow(target, model, output_path, verbose=False, **arguments):
    """`target(model path, output_path, verbose=verbose, **arguments)` in
    the TensorFlow process; returns its dataclass result.

    Args:
        target: `"package.module:function"`, importable in the process.
        model: a `keras.Model` (saved to a `.keras` file) or such a file's path.
        output_path: the file the function writes.
        verbose: bool. Print the function's output.
        **arguments: JSON values, NumPy arrays, or dicts of NumPy arrays.
    """
    with tempfile.TemporaryDirectory() as folder:
        if not isinstance(model, (str, os.PathLike)):
            path = os.path.join(folder, "model.keras")
            model.save(path)
            model = path
        # Absolute paths: the process may have been started in another folder.
        request = {"target": target, "model": os.path.abspath(model), "output_path": os.path.abspath(output_path),
                   "verbose": verbose, "arguments": {}, "arrays": {}}
        for name, value in arguments.items():
            if isinstance(value, np.ndarray) or (isinstance(value, dict) and value and all(
                isinstance(v, np.ndarray) for v in value.values()
            )):
                request["arrays"][name] = _save_arrays(value, os.path.join(folder, name))
            else:
                request["arguments"][name] = value
        paths = {name: os.path.join(folder, name) for name in ("request.json", "result.json", "out.log", "err.log")}
        with open(paths["request.json"], "w") as f:
            json.dump(request, f)
        failure = _ask(paths)
        with open(paths["out.log"]) as out, open(paths["err.log"]) as err:
            output, errors = out.read(), err.read()
        if failure:
            raise ValueError(f"{target} in the TensorFlow subprocess failed ({failure}):\n{errors.strip()}")
        if verbose:
            print(output, end="", flush=True)
        with open(paths["result.json"]) as f:
            result = json.load(f)
    return _resolve(result["type"])(**result["fields"])


def _save_arrays(value, stem):
    """An array as `.npy`, a dict of arrays (a model with several inputs) as `.npz`."""
    if isinstance(value, dict):
        np.savez(f"{stem}.npz", **value)
        return f"{stem}.npz"
    np.save(f"{stem}.npy", value)
    return f"{stem}.npy"


def _resolve(name):
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _ask(paths):
    """Sends one request to the TensorFlow process (starting it if there is
    none); returns why it failed, or None."""
    with _lock:
        process = _server["process"]
        if process is None or process.poll() is not None:
            for stream in (process and process.stdin, process and process.stdout, _server["startup_log"]):
                if stream is not None:
                    stream.close()
            _server["startup_log"] = tempfile.TemporaryFile("w+")
            process = _server["process"] = subprocess.Popen(
                [sys.executable, "-m", __name__],
                env=dict(os.environ, KERAS_BACKEND="tensorflow"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=_server["startup_log"], text=True,
            )
        try:
            process.stdin.write(json.dumps(paths) + "\n")
            process.stdin.flush()
            reply = process.stdout.readline().strip()
        except BrokenPipeError:
            reply = ""
        if reply:
            return None if reply == "ok" else reply
        code = process.wait()
        log = _server["startup_log"]
        log.seek(0)
        with open(paths["err.log"], "a") as err:
            err.write(log.read())
        return f"the process ended with exit code {code}"


@atexit.register
def _stop():
    process = _server["process"]
    if process is not None and process.poll() is None:
        process.stdin.close()  # the server's loop ends
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _run(paths):
    with open(paths["request.json"]) as f:
        request = json.load(f)
    arguments = request["arguments"]
    for name, path in request["arrays"].items():
        loaded = np.load(path)
        arguments[name] = dict(loaded) if path.endswith(".npz") else loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the calling process warns, from the result
        result = _resolve(request["target"])(
            request["model"], request["output_path"], verbose=request["verbose"], **arguments
        )
    kind = type(result)
    with open(paths["result.json"], "w") as f:
        json.dump({"type": f"{kind.__module__}:{kind.__qualname__}", "fields": dataclasses.asdict(result)}, f)


def serve():
    """Runs the requests read from stdin, one per line, until it closes.

    Replies "ok" or why not on the original stdout; file
    descriptors 1 and 2 (TensorFlow's own logs too) go to each request's logs.
    """
    import keras

    replies = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        paths = json.loads(line)
        with open(paths["out.log"], "w") as out, open(paths["err.log"], "w") as err:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            try:
                _run(paths)
                reply = "ok"
            except Exception:
                traceback.print_exc()
                reply = "see the error output"
            sys.stdout.flush()
            sys.stderr.flush()
        keras.backend.clear_session()
        replies.write(reply + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()

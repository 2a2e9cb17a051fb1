"""Conversion from the JAX and PyTorch backends, in a TensorFlow subprocess.

The backend of a process is fixed when keras is imported, and conversion
needs TensorFlow. `convert_in_tensorflow` saves the model and the arrays to a
temporary folder and hands a JSON request holding `convert`'s arguments to a
TensorFlow process (this module, KERAS_BACKEND=tensorflow), then reads the
`Conversion` back. The process is started by the first conversion and serves
the later ones, since importing TensorFlow takes about as long as converting a
small model. Each request's output and errors go to files of its own: the
output is printed when `verbose`, the whole error output passed on if the
conversion fails.
"""

import atexit
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings

import numpy as np

ARRAYS = ("representative_data", "validation_data")
# The TensorFlow process, its start-up error output, and a lock so that one
# request at a time is in flight.
_server = {"process": None, "startup_log": None}
_lock = threading.Lock()


def _functions():
    """`{name: (conversion function, its result class)}`."""
    from keras_superattn.deploy.cached import CachedConversion
    from keras_superattn.deploy.cached import convert_generator
    from keras_superattn.deploy.convert import Conversion
    from keras_superattn.deploy.convert import convert

    return {"convert": (convert, Conversion), "convert_generator": (convert_generator, CachedConversion)}


def convert_in_tensorflow(model, output_path, function="convert", **arguments):
    from keras_superattn.deploy.convert import warn_if_disagreeing

    with tempfile.TemporaryDirectory() as folder:
        if not isinstance(model, (str, os.PathLike)):
            path = os.path.join(folder, "model.keras")
            model.save(path)
            model = path
        # Absolute paths: the process may have been started in another folder.
        request = dict(arguments, model=os.path.abspath(model), output_path=os.path.abspath(output_path),
                       function=function)
        for name in ARRAYS:
            if request.get(name) is not None:
                # A dict of arrays (a model with several inputs) as an .npz.
                data = arguments[name]
                request[name] = os.path.join(folder, f"{name}.{'npz' if isinstance(data, dict) else 'npy'}")
                if isinstance(data, dict):
                    np.savez(request[name], **{key: np.asarray(value) for key, value in data.items()})
                else:
                    np.save(request[name], np.asarray(data))
        paths = {name: os.path.join(folder, name) for name in ("request.json", "result.json", "out.log", "err.log")}
        with open(paths["request.json"], "w") as f:
            json.dump(request, f)
        failure = _ask(paths)
        with open(paths["out.log"]) as out, open(paths["err.log"]) as err:
            output, errors = out.read(), err.read()
        if failure:
            raise ValueError(f"Conversion in the TensorFlow subprocess failed ({failure}):\n{errors.strip()}")
        if arguments["verbose"]:
            print(output, end="", flush=True)
        with open(paths["result.json"]) as f:
            conversion = _functions()[function][1](**json.load(f))
    if function == "convert":
        warn_if_disagreeing(conversion)
    return conversion


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
                [sys.executable, "-m", "keras_superattn.deploy._worker"],
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


def _convert(paths):
    with open(paths["request.json"]) as f:
        request = json.load(f)
    convert = _functions()[request.pop("function")][0]
    for name in ARRAYS:
        if request.get(name) is not None:
            loaded = np.load(request[name])
            request[name] = dict(loaded) if request[name].endswith(".npz") else loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the calling process warns, from the result
        conversion = convert(request.pop("model"), request.pop("output_path"), **request)
    with open(paths["result.json"], "w") as f:
        json.dump(dataclasses.asdict(conversion), f)


def serve():
    """Converts the requests read from stdin, one per line, until it closes.

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
                _convert(paths)
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

"""Conversion from the JAX and PyTorch backends, in a TensorFlow subprocess.

The backend of a process is fixed when keras is imported, and conversion
needs TensorFlow. `convert_in_tensorflow` saves the model and the arrays to a
temporary folder, runs this module with KERAS_BACKEND=tensorflow on a JSON
request holding `convert`'s arguments, and reads the `Conversion` back; the
subprocess's whole error output is passed on if it fails.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

ARRAYS = ("representative_data", "validation_data")


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
        request = dict(arguments, model=os.fspath(model), output_path=os.fspath(output_path), function=function)
        for name in ARRAYS:
            if request.get(name) is not None:
                # A dict of arrays (a model with several inputs) as an .npz.
                data = arguments[name]
                request[name] = os.path.join(folder, f"{name}.{'npz' if isinstance(data, dict) else 'npy'}")
                if isinstance(data, dict):
                    np.savez(request[name], **{key: np.asarray(value) for key, value in data.items()})
                else:
                    np.save(request[name], np.asarray(data))
        request_path, result_path = os.path.join(folder, "request.json"), os.path.join(folder, "result.json")
        with open(request_path, "w") as f:
            json.dump(request, f)
        run = subprocess.run(
            [sys.executable, "-m", "keras_superattn.deploy._worker", request_path, result_path],
            env=dict(os.environ, KERAS_BACKEND="tensorflow"),
            stdout=None if arguments["verbose"] else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        if run.returncode != 0:
            raise ValueError(f"Conversion in the TensorFlow subprocess failed:\n{run.stderr.strip()}")
        with open(result_path) as f:
            conversion = _functions()[function][1](**json.load(f))
    if function == "convert":
        warn_if_disagreeing(conversion)
    return conversion


def main(request_path, result_path):
    with open(request_path) as f:
        request = json.load(f)
    convert = _functions()[request.pop("function")][0]
    for name in ARRAYS:
        if request.get(name) is not None:
            loaded = np.load(request[name])
            request[name] = dict(loaded) if request[name].endswith(".npz") else loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the calling process warns, from the result
        conversion = convert(request.pop("model"), request.pop("output_path"), **request)
    with open(result_path, "w") as f:
        json.dump(dataclasses.asdict(conversion), f)


if __name__ == "__main__":
    main(*sys.argv[1:])

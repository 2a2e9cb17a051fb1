"""Runs .tflite files on raw (already quantized) inputs; saves raw outputs.

Standalone on purpose: it runs inside the emulated arm64 Python, which has
only numpy and ai-edge-litert. The host imports `run` to compute its side of
a comparison with exactly the same code.

    python arm64_runner.py JOBS.json
JOBS.json: [{"model": path, "inputs": path.npy or .npz, "outputs": path.npy}, ...]
An .npz holds one array per input of a model with several, keyed by the
input's signature name. A job of a file with several signatures (a cached
generator's `prefill` and `decode`) also names its "signature" and the
"output" to save.
"""

import json
import platform
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def run(model_path, inputs, signature=None, output=None):
    """Raw outputs of each sample; `inputs` an array, or a dict of arrays
    keyed by signature input name. With `signature`, its `output`."""
    interpreter = Interpreter(model_path=model_path, num_threads=1)
    if signature is not None:
        runner = interpreter.get_signature_runner(signature)
        shapes = {name: tuple(detail["shape"]) for name, detail in runner.get_input_details().items()}
        rows = range(len(next(iter(inputs.values()))))
        return np.stack([
            runner(**{name: values[row].reshape(shapes[name]) for name, values in inputs.items()})[output][0]
            for row in rows
        ])
    interpreter.allocate_tensors()
    (target,) = interpreter.get_output_details()
    if isinstance(inputs, dict):
        signature = interpreter.get_signature_runner().get_input_details()
        indices = {name: signature[name]["index"] for name in inputs}
    else:
        indices = {None: interpreter.get_input_details()[0]["index"]}
        inputs = {None: inputs}
    outputs = []
    for row in range(len(next(iter(inputs.values())))):
        for name, values in inputs.items():
            interpreter.set_tensor(indices[name], values[row][None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0])
    return np.stack(outputs)


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for job in jobs:
        inputs = np.load(job["inputs"])
        inputs = dict(inputs) if job["inputs"].endswith(".npz") else inputs
        np.save(job["outputs"], run(job["model"], inputs, job.get("signature"), job.get("output")))
    print(f"ran {len(jobs)} model(s) on {platform.machine()}")


if __name__ == "__main__":
    main()

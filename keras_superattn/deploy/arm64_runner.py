"""Runs .tflite files on raw (already quantized) inputs; saves raw outputs.

Standalone on purpose: it runs inside the emulated arm64 Python, which has
only numpy and ai-edge-litert. The host imports `run` to compute its side of
a comparison with exactly the same code.

    python arm64_runner.py JOBS.json
JOBS.json: [{"model": path, "inputs": path.npy, "outputs": path.npy}, ...]
"""

import json
import platform
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def run(model_path, inputs):
    interpreter = Interpreter(model_path=model_path, num_threads=1)
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for sample in inputs:
        interpreter.set_tensor(source["index"], sample[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0])
    return np.stack(outputs)


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for job in jobs:
        np.save(job["outputs"], run(job["model"], np.load(job["inputs"])))
    print(f"ran {len(jobs)} model(s) on {platform.machine()}")


if __name__ == "__main__":
    main()

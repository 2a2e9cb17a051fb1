"""Runs .tflite files with `keras_superattn.deploy.runtime.TFLiteModel` in an
environment with only numpy < 2 and `tflite-runtime` (no keras, no
ai-edge-litert), as on a Coral Dev Board or a Raspberry Pi. The module is
loaded from its file, so it takes its fallback import of `tflite_runtime`.

    python tools/tflite_runtime/run_jobs.py JOBS.json
JOBS.json: [{"model": path, "use_xnnpack": bool, "inputs": path.npy or .npz, "outputs": path.npy}, ...]
"""

import importlib.util
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIME = os.path.join(ROOT, "keras_superattn", "deploy", "runtime.py")


def main():
    spec = importlib.util.spec_from_file_location("runtime", RUNTIME)
    runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for job in jobs:
        inputs = np.load(job["inputs"])
        inputs = dict(inputs) if job["inputs"].endswith(".npz") else inputs
        model = runtime.TFLiteModel(job["model"], use_xnnpack=job["use_xnnpack"])
        np.save(job["outputs"], model.predict(inputs))
    import tflite_runtime

    print(json.dumps({"interpreter": runtime.Interpreter.__module__, "tflite_runtime": tflite_runtime.__version__,
                      "numpy": np.__version__, "models": len(jobs)}))


if __name__ == "__main__":
    main()

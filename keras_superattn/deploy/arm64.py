"""Runs .tflite files under qemu-aarch64 (Cortex-A76) with the arm64 LiteRT.

The emulated Python, with numpy and the aarch64 wheel of ai-edge-litert, is
set up by `tools/arm64/setup.sh`; its folder is `$KERAS_SUPERATTN_ARM64_ROOT`.
Never emulate `-cpu max`: its SVE/I8MM features make XNNPACK's int8 results
wrong under qemu 7.2 (docs/stack.md).
"""

import json
import os
import subprocess
import tempfile

import numpy as np

from keras_superattn.deploy import arm64_runner

ROOT_ENV = "KERAS_SUPERATTN_ARM64_ROOT"
CPU = "cortex-a76"
_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "arm64_runner.py")


def emulator_root(root=None):
    """The set-up arm64 root, or None when there is none."""
    root = root or os.environ.get(ROOT_ENV)
    if root and os.path.isfile(os.path.join(root, "usr", "bin", "python3.11")):
        return root
    return None


def run_on_arm64(jobs, root=None, timeout=600):
    """Runs `{model_path: raw_inputs}` on emulated arm64; returns raw outputs.

    Inputs are the model's own input type (already quantized), one sample per
    row, an array or for a model with several inputs a dict keyed by input
    name; each sample runs as one batch-1 invocation with one thread. A key
    `(model_path, signature, output)` runs that signature of a file with
    several and returns that output.
    """
    root = emulator_root(root)
    if root is None:
        raise RuntimeError(f"No arm64 emulator: run tools/arm64/setup.sh and set {ROOT_ENV}")
    with tempfile.TemporaryDirectory() as folder:
        spec = []
        for index, (job, inputs) in enumerate(jobs.items()):
            model, signature, output = _job(job)
            path = os.path.join(folder, f"in{index}.{'npz' if isinstance(inputs, dict) else 'npy'}")
            if isinstance(inputs, dict):
                np.savez(path, **inputs)
            else:
                np.save(path, np.asarray(inputs))
            spec.append({
                "model": os.path.abspath(model),
                "inputs": path,
                "outputs": os.path.join(folder, f"out{index}.npy"),
                "signature": signature,
                "output": output,
            })
        with open(os.path.join(folder, "jobs.json"), "w") as f:
            json.dump(spec, f)
        command = ["qemu-aarch64-static", "-cpu", CPU, "-L", root,
                   os.path.join(root, "usr", "bin", "python3.11"), _RUNNER, os.path.join(folder, "jobs.json")]
        env = dict(os.environ, PYTHONPATH=os.path.join(root, "opt", "site-packages"))
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0 or "aarch64" not in run.stdout:
            raise RuntimeError(f"The arm64 run failed ({run.returncode}): {run.stdout[-500:]} {run.stderr[-1500:]}")
        return {key: np.load(job["outputs"]) for key, job in zip(jobs, spec)}


def run_on_host(jobs):
    """Runs the same jobs as `run_on_arm64` on this machine, with the same code."""
    results = {}
    for job, inputs in jobs.items():
        model, signature, output = _job(job)
        inputs = inputs if isinstance(inputs, dict) else np.asarray(inputs)
        results[job] = arm64_runner.run(os.path.abspath(model), inputs, signature, output)
    return results


def _job(job):
    """`(model path, signature, output)` of a job key."""
    return tuple(job) if isinstance(job, tuple) else (job, None, None)

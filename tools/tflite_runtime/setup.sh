#!/usr/bin/env bash
# Makes a Python environment with the standalone `tflite-runtime`, the runtime
# of Coral Dev Board and Raspberry Pi OS images, to run the committed .tflite
# files as those boards do. Its last release, 2.14.0, needs Python <= 3.11 and
# numpy < 2, so it cannot share the project's environment (numpy 2).
#
#   bash tools/tflite_runtime/setup.sh [VENV]        # default VENV: .venv-tflite-runtime
#   export KERAS_SUPERATTN_TFLITE_RUNTIME_PYTHON=VENV/bin/python   # then its test runs
set -euo pipefail
VENV="${1:-.venv-tflite-runtime}"
python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "tflite-runtime==2.14.0" "numpy<2"
"$VENV/bin/python" -c "import tflite_runtime, numpy; print('tflite-runtime', tflite_runtime.__version__, 'numpy', numpy.__version__)"

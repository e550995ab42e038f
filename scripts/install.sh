#!/usr/bin/env bash
# Installs everything mnv1-tk needs on a fresh Debian machine: system packages, a venv with the
# pinned Python packages, and the MindSpore Lite 2.0 libraries. Safe to run again.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
SUDO=${SUDO:-}

if ! command -v g++ >/dev/null || ! command -v adb >/dev/null || ! command -v javac >/dev/null || ! command -v aapt2 >/dev/null || [ ! -f /usr/share/java/junit4.jar ]; then
  echo "== system packages (adb, JDK, junit4, kotlin, aapt + aapt2)"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    adb default-jdk-headless junit4 kotlin aapt g++ >/dev/null
fi

echo "== python venv in $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -e ".[test]"
# tflite-support's metadata module works beside MindSpore's protobuf 7 only without its own deps.
"$VENV/bin/pip" install -q --no-deps tflite-support==0.4.4
"$VENV/bin/python" -c "import mindspore, ai_edge_litert, onnxruntime, tensorflow_lite_support.metadata" 
echo "== MindSpore Lite 2.0 (wheel from PyPI -> libraries + C++ shim in the user cache)"
"$VENV/bin/mnv1-tk" setup mslite
echo "== done: $("$VENV/bin/python" -c 'import mindspore, numpy; print("mindspore", mindspore.__version__, "numpy", numpy.__version__)' 2>/dev/null)"

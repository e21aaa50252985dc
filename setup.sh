#!/usr/bin/env bash
# Set up .venv with everything the pipeline and the tests need.
#   CPU machine: torch==2.13.0 (CPU wheel) + onnxruntime.      GPU machine: torch (CUDA) + onnxruntime-gpu.
# Overrides: PYTHON=python3.11, TORCH_SPEC="torch==2.13.0", TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu,
#            DEVICE=cpu|gpu (default: gpu when nvidia-smi lists a GPU).
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup.sh: Python >= 3.11 needed ($python is older)" >&2; exit 2; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --disable-pip-version-check)

device=${DEVICE:-cpu}
if [ -z "${DEVICE:-}" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then device=gpu; fi

# torch first and pinned: an unpinned torch (or one pulled in as a dependency) resolves to the
# CUDA build with several GB of packages even on CPU-only machines.
torch_spec=${TORCH_SPEC:-torch==2.13.0}
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "${pip[@]}" "$torch_spec" --index-url "$TORCH_INDEX_URL"
else
  "${pip[@]}" "$torch_spec"
fi
# onnxruntime (cpu) and onnxruntime-gpu must never share an environment.
"${pip[@]}" -e ".[${device},train,export,dev]"
# FFmpeg (a system package) streams a clip over loopback for the live-input tests; they skip without it.
if ! command -v ffmpeg >/dev/null 2>&1; then
  apt_ffmpeg() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ffmpeg >/dev/null 2>&1; }
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt_ffmpeg || { apt-get update -q >/dev/null 2>&1 && apt_ffmpeg; } \
      || echo "setup.sh: could not install ffmpeg with apt-get; the live-stream tests will skip" >&2
  else
    echo "setup.sh: ffmpeg not found: install it with the system's package manager (the live-stream tests skip without it)" >&2
  fi
fi
echo "setup.sh: .venv ready ($device). Run the tests with: .venv/bin/python -m pytest -q"

#!/usr/bin/env bash
# ./pipeline.sh DATASET [--data-root PATH] [--profile tiny|smoke|paper] [--from STAGE] [--only STAGE] [--force]
# The whole product in one command: data -> teacher -> student -> student (IntRA-KD) -> export -> calibrate
# -> engines -> evaluate -> video -> compare -> summary. See pipeline/run.py and README.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; else python="python3"; fi
fi
cd "$here"
exec "$python" -m pipeline.run "$@"

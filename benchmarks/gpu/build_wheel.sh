#!/usr/bin/env bash
# Build, on this machine, a CUDA llama-cpp-python wheel and llama-bench for one GPU architecture, to carry to the
# device machine (benchmarks/README.md, "gpu: the device check"). The CUDA toolkit comes from PyPI (nvcc, headers,
# cudart and cuBLAS as NVIDIA's wheels), so nothing but pip, cmake, ninja and a C++ compiler is needed here.
#
#   benchmarks/gpu/build_wheel.sh [ARCH] [--configure-only]
#
# ARCH: CMAKE_CUDA_ARCHITECTURES without suffix (default 90: H100 and H200). Only that architecture's machine code
# is built (ARCH-real, no PTX), which keeps the wheel small enough to carry. --configure-only stops after cmake's
# configure step and one compiled CUDA object: the check that the toolchain resolves, in a minute or two. The full
# build compiles ggml-cuda's 289 CUDA files, 10-60 s each on one core: 1-1.5 hours on 2 cores (JOBS=N sets the
# parallelism).
#
# Writes .gpu/wheels/llama_cpp_python-VERSION-py3-none-linux_x86_64.whl and .gpu/bin/llama-bench with the one
# library it needs beside the package's (stripped).
# Runtime: the wheel links libcudart.so.13, libcublas.so.13 and libcuda.so.1, which the device machine's image has
# (its PyTorch is built for CUDA 13.0, driver 580); device_check.sh puts their folders on LD_LIBRARY_PATH.
set -euo pipefail

ARCH=${1:-90}
MODE=${2:-full}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
WORK=${GPU_BUILD_DIR:-$HOME/.cache/offline-assistants-gpu}
JOBS=${JOBS:-$(nproc)}
# The version the project runs here (what `pip show llama-cpp-python` says), unless LLAMA_VERSION names one.
LLAMA_VERSION=${LLAMA_VERSION:-$("$PY" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))')}
# CUDA 13.0: the device's driver (580) runs 13.0 and its image holds cuBLAS and cudart 13 for PyTorch cu130.
CUDA_PINS="nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96
           nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14"

say() { echo "[build_wheel] $*" >&2; }
mkdir -p "$WORK"

# 1. The toolkit: NVIDIA's wheels unpacked into one tree (nvidia/cu13: bin/nvcc, nvvm/, include/, lib/).
TK=$WORK/cuda-13.0/nvidia/cu13
if [ ! -x "$TK/bin/nvcc" ]; then
  say "CUDA 13.0 toolkit from PyPI into $WORK/cuda-13.0 (cuBLAS is a 420 MB download; needed to link only)"
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --no-deps --target "$WORK/cuda-13.0" $CUDA_PINS
fi
# CMake's FindCUDAToolkit and the linker look for the unversioned names.
for lib in cudart cublas cublasLt; do ln -sf "lib$lib.so.13" "$TK/lib/lib$lib.so"; done
ln -sfn lib "$TK/lib64"
# libcuda.so comes with the driver, not with any wheel: link against a stub that defines the driver API's names
# (every cu* function cuda.h declares, versioned aliases included), as the toolkit's own stubs/libcuda.so does. At
# run time the driver's real libcuda.so.1 is loaded in its place.
if [ ! -f "$TK/lib/stubs/libcuda.so" ]; then
  mkdir -p "$TK/lib/stubs"
  grep -ohE '\bcu[A-Z][A-Za-z0-9_]*\b' "$TK/include/cuda.h" | sort -u \
    | awk '{print "int " $1 "(void) { return 999; }"}' > "$WORK/libcuda-stub.c"
  cc -shared -fPIC -o "$TK/lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$WORK/libcuda-stub.c"
  say "libcuda stub: $(nm -D --defined-only "$TK/lib/stubs/libcuda.so" | wc -l) symbols"
fi
export PATH="$TK/bin:$PATH" CUDACXX="$TK/bin/nvcc" CUDA_PATH="$TK"
say "nvcc: $("$TK/bin/nvcc" --version | tail -2 | head -1)"

# 2. The flags. LLAMA_BUILD_TOOLS adds llama.cpp's tools (llama-bench among them) to the same build; LLAVA_BUILD
# off because the tools already build mtmd (the package imports it only for image input, which the project does not
# use), no HTTPS in the tools (no libssl needed there). Unversioned sonames: a wheel cannot hold symlinks, so each
# libfoo.so.0.x.y would ship three times.
CMAKE_ARGS="-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${ARCH}-real -DCUDAToolkit_ROOT=$TK
 -DCMAKE_CUDA_COMPILER=$TK/bin/nvcc -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
 -DGGML_CUDA_GRAPHS=ON -DGGML_CUDA_NCCL=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF
 -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAVA_BUILD=OFF -DCMAKE_PLATFORM_NO_VERSIONED_SONAME=ON
 -DCMAKE_BUILD_TYPE=Release"
BUILD=$WORK/build-sm$ARCH

if [ "$MODE" = "--configure-only" ]; then
  SRC=$WORK/llama_cpp_python-$LLAMA_VERSION
  if [ ! -d "$SRC" ]; then
    "$PY" -m pip download -q --no-deps --no-binary :all: -d "$WORK" "llama-cpp-python==$LLAMA_VERSION"
    tar xzf "$WORK/llama_cpp_python-$LLAMA_VERSION.tar.gz" -C "$WORK"
  fi
  # shellcheck disable=SC2086
  cmake -S "$SRC" -B "$BUILD-configure" -G Ninja $CMAKE_ARGS
  obj=$(ninja -C "$BUILD-configure" -t targets all | grep -o '^[^:]*ggml-cuda.dir/acc\.cu\.o' | head -1)
  say "configured; compiling one CUDA object as a check: $obj"
  ninja -C "$BUILD-configure" "$obj"
  say "toolchain OK for sm_$ARCH (configure only: no wheel built)"
  exit 0
fi

# 3. The wheel, through the package's own build (scikit-build-core), its build folder kept for llama-bench. No cache:
# pip's wheel cache would hand back the CPU wheel built earlier from the same sdist.
# A wheel built earlier is reused (FORCE=1 builds again): step 4 can be rerun alone.
if [ -n "${FORCE:-}" ] || ! ls "$WORK"/wheel-sm"$ARCH"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  say "building llama-cpp-python $LLAMA_VERSION for sm_$ARCH with $JOBS jobs (1-1.5 hours on 2 cores)"
  rm -rf "$WORK/wheel-sm$ARCH"
  CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$JOBS "$PY" -m pip wheel --no-deps --no-cache-dir \
    --no-binary llama-cpp-python -C "build-dir=$BUILD" -C install.strip=true -w "$WORK/wheel-sm$ARCH" \
    "llama-cpp-python==$LLAMA_VERSION"
fi

# 4. What travels: the wheel slimmed to llama_cpp/ (llama.cpp's install rules also put a second copy of each library,
# headers and the tools' executables at its root), llama-bench and the library of those it needs that the package
# lacks (libllama-common) in .gpu/bin, all stripped.
mkdir -p "$ROOT/.gpu/wheels" "$ROOT/.gpu/bin"
rm -f "$ROOT"/.gpu/wheels/llama_cpp_python-*.whl "$ROOT"/.gpu/bin/*
"$PY" "$ROOT/benchmarks/gpu/slim_wheel.py" "$WORK"/wheel-sm"$ARCH"/llama_cpp_python-*.whl "$ROOT/.gpu/wheels" \
  --take bin/llama-bench lib/libllama-common.so --to "$ROOT/.gpu/bin"
strip "$ROOT"/.gpu/bin/*
say "done:"
ls -l "$ROOT"/.gpu/wheels/*.whl "$ROOT"/.gpu/bin/* >&2
unzip -l "$ROOT"/.gpu/wheels/*.whl | grep '\.so' >&2

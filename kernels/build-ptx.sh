#!/usr/bin/env bash
# Compiles every kernels/*.cu to PTX for compute_75, declared at PTX ISA 8.0 (compile-ptx.sh: every
# CUDA 12.0+ driver JIT-compiles it for the GPU at hand, sm_75 or newer), into OUT_DIR, which the
# Maven build packs into the jar under dev/kxai/kernels/.
# Without nvcc it builds nothing and says so: the CUDA backend then reports "no PTX in the jar".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build-ptx.sh OUT_DIR}"
nvcc="${NVCC:-$(command -v nvcc || true)}"
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc; fi
if [ -z "$nvcc" ]; then
  echo "kernels: nvcc not found: skipping PTX (the jar will have no CUDA kernels)"
  exit 0
fi
mkdir -p "$out"
for cu in "$here"/*.cu; do
  name="$(basename "$cu" .cu)"
  ptx="$out/$name.ptx"
  if [ ! -f "$ptx" ] || [ "$cu" -nt "$ptx" ] || [ "$here/common.cuh" -nt "$ptx" ] \
      || [ "$here/compile-ptx.sh" -nt "$ptx" ]; then
    NVCC="$nvcc" sh "$here/compile-ptx.sh" "$cu" "$ptx"
  fi
done
echo "kernels: PTX (ISA 8.0, compute_75) for $(ls "$out" | wc -l) kernel files in $out"

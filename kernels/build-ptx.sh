#!/usr/bin/env bash
# Compiles every kernels/*.cu to PTX for compute_75 (JIT-compiled by the driver on any newer GPU)
# into OUT_DIR, which the Maven build packs into the jar under dev/kxai/kernels/.
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
  if [ ! -f "$ptx" ] || [ "$cu" -nt "$ptx" ] || [ "$here/common.cuh" -nt "$ptx" ]; then
    # -fmad=false: no fused multiply-add, so kernels round like their CPU twins
    "$nvcc" -ptx -arch=compute_75 -fmad=false -o "$ptx" "$cu"
  fi
done
echo "kernels: PTX for $(ls "$out" | wc -l) kernel files in $out"

#!/bin/sh
# compile-ptx.sh SOURCE.cu OUT.ptx [NVCC_FLAG...]
#
# One kernel file to the PTX that ships: nvcc -ptx for compute_75 (no FMA contraction, so kernels
# round like their CPU twins), then declared at PTX ISA 8.0, the ISA of CUDA 12.0, so that every
# driver JCuda 12.0 supports (CUDA 12.0, R525 and newer) JIT-compiles it. nvcc has no switch for
# the ISA version it writes (nvcc 13 writes .version 9.0, which only CUDA 13 / R580+ drivers load),
# so the .version line is rewritten; ptxas then assembles the result, and ptxas refuses any
# instruction, type or directive newer than the declared .version (e.g. "Feature 'Type .b128'
# requires PTX ISA .version 8.3 or later"): a kernel that needs a newer ISA fails the build here
# instead of failing on a user's driver. The check covers sm_75 and sm_90, the oldest and newest
# architectures the PTX is meant for (a driver JITs it for whatever GPU it finds).
# Used by kernels/build-ptx.sh (the jar) and native-tests/Makefile (the tests' PTX).
set -eu
src=${1:?usage: compile-ptx.sh SOURCE.cu OUT.ptx [NVCC_FLAG...]}
out=${2:?usage: compile-ptx.sh SOURCE.cu OUT.ptx [NVCC_FLAG...]}
shift 2
isa=8.0
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
ptxas=$(dirname "$nvcc")/ptxas
[ -x "$ptxas" ] || ptxas=$(command -v ptxas || true)
if [ -z "$ptxas" ]; then
    echo "compile-ptx: no ptxas beside $nvcc: cannot prove the PTX valid at ISA $isa" >&2
    exit 1
fi
tmp="$out.tmp.$$"
trap 'rm -f "$tmp" "$tmp.2"' EXIT
"$nvcc" -ptx -arch=compute_75 -fmad=false "$@" -o "$tmp" "$src"
declared=$(sed -n 's/^\.version \([0-9][0-9]*\.[0-9][0-9]*\)[[:space:]]*$/\1/p' "$tmp" | head -n 1)
if [ -z "$declared" ]; then
    echo "compile-ptx: $src: nvcc's PTX has no .version line" >&2
    exit 1
fi
# versions as major*100+minor: 9.0 -> 900, 8.0 -> 800
num() { echo "$1" | awk -F. '{ print $1 * 100 + $2 }'; }
if [ "$(num "$declared")" -gt "$(num "$isa")" ]; then
    sed "s/^\.version $declared[[:space:]]*\$/.version $isa/" "$tmp" > "$tmp.2"
    mv "$tmp.2" "$tmp"
fi
for sm in sm_75 sm_90; do
    if ! "$ptxas" -arch=$sm -o /dev/null "$tmp"; then
        echo "compile-ptx: $src is not valid PTX ISA $isa for $sm (see ptxas above): a kernel uses a feature that drivers older than the ISA cannot JIT" >&2
        exit 1
    fi
done
mv "$tmp" "$out"

#!/bin/sh
# ptx-check.sh NVCC BUILD_DIR SOURCE.cu...
#
# Compiles every kernel source to a cubin for sm_75 with ptxas -v and writes, per kernel,
# registers, shared memory, stack frame and spill bytes to BUILD_DIR/ptxas-report.txt. Fails
# when a source does not compile or any kernel spills (spills on the smallest supported
# architecture mean local-memory traffic on every launch). The PTX itself is built by the
# Makefile (BUILD_DIR/ptx/), with the same flags.
set -eu
nvcc=$1
build=$2
shift 2
mkdir -p "$build/cubin" "$build/ptxas"
status=0
for src in "$@"; do
    name=$(basename "$src" .cu)
    if ! "$nvcc" -cubin -arch=sm_75 -fmad=false -std=c++17 -Werror all-warnings -Xptxas -v \
        -o "$build/cubin/$name.cubin" "$src" > "$build/ptxas/$name.log" 2>&1; then
        cat "$build/ptxas/$name.log" >&2
        echo "ptx-check: $src does not compile" >&2
        status=1
    fi
done
report="$build/ptxas-report.txt"
for src in "$@"; do
    log="$build/ptxas/$(basename "$src" .cu).log"
    [ -f "$log" ] || continue
    awk -v src="$(basename "$src")" '
        /Compiling entry function/ { kernel = $0; sub(/.*function .\047?/, "", kernel); sub(/\047.*/, "", kernel) }
        /bytes stack frame/ { stack = $1; spill_stores = $5; spill_loads = $9 }
        /Used [0-9]+ registers/ {
            regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
            smem = 0
            if ($0 ~ /bytes smem/) { smem = $0; sub(/ bytes smem.*/, "", smem); sub(/.*, /, "", smem) }
            printf("%-28s %-16s %9s %12s %11s %13s %12s\n", kernel, src, regs, smem, stack, spill_stores, spill_loads)
        }' "$log"
done > "$report.rows"
{
    echo "# ptxas -v, sm_75, nvcc -fmad=false, CUDA $("$nvcc" --version | sed -n "s/.*release \([0-9.]*\).*/\1/p")"
    printf "%-28s %-16s %9s %12s %11s %13s %12s\n" kernel source registers shared_bytes stack_bytes spill_stores spill_loads
    cat "$report.rows"
} > "$report"
rm -f "$report.rows"
cat "$report"
if awk 'NR > 2 && ($6 != 0 || $7 != 0) { bad = 1 } END { exit !bad }' "$report"; then
    echo "ptx-check: FAILED: a kernel spills registers (see $report)" >&2
    status=1
fi
exit $status

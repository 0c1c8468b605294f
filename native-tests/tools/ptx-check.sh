#!/bin/sh
# ptx-check.sh NVCC BUILD_DIR KERNEL.ptx...
#
# Checks the PTX that ships (built by kernels/compile-ptx.sh into BUILD_DIR/ptx/, the same script
# as the jar's):
#  1. every file declares PTX ISA <= 8.0 (.version), the ISA of CUDA 12.0, and .target sm_75:
#     what every driver JCuda 12.0 supports (R525+) JIT-compiles;
#  2. ptxas refuses what is newer than a file's declared .version (self-test: a .b128 load, ISA 8.3,
#     declared at 8.0 must be refused), so
#  3. ptxas -v assembling each file at its declared version for sm_75 proves it valid at ISA 8.0,
#     and gives per kernel registers, shared memory, stack frame and spill bytes, written to
#     BUILD_DIR/ptxas-report.txt. Spills on the smallest supported architecture mean local-memory
#     traffic on every launch: any spill fails the check.
set -eu
nvcc=$1
build=$2
shift 2
isa=8.0
ptxas=$(dirname "$nvcc")/ptxas
[ -x "$ptxas" ] || ptxas=$(command -v ptxas)
mkdir -p "$build/ptxas"
status=0

# 2. the self-test: ptxas must enforce the declared ISA version
selftest="$build/ptxas/isa-selftest.ptx"
cat > "$selftest" <<PTX
.version $isa
.target sm_75
.address_size 64
.visible .entry isa_selftest(.param .u64 p)
{
    .reg .b64 %rd<2>;
    .reg .b128 %q<2>;
    ld.param.u64 %rd1, [p];
    ld.global.b128 %q1, [%rd1];
    st.global.b128 [%rd1], %q1;
    ret;
}
PTX
if "$ptxas" -arch=sm_75 -o /dev/null "$selftest" > "$build/ptxas/isa-selftest.log" 2>&1; then
    echo "ptx-check: FAILED: ptxas accepted a .b128 load (PTX ISA 8.3) declared at .version $isa: it does not enforce the declared version, so it proves nothing" >&2
    status=1
elif ! grep -q "requires PTX ISA .version" "$build/ptxas/isa-selftest.log"; then
    cat "$build/ptxas/isa-selftest.log" >&2
    echo "ptx-check: FAILED: ptxas refused the ISA self-test for another reason than its version" >&2
    status=1
fi

# 1. and 3.
num() { echo "$1" | awk -F. '{ print $1 * 100 + $2 }'; }
for ptx in "$@"; do
    name=$(basename "$ptx" .ptx)
    version=$(sed -n 's/^\.version \([0-9.]*\).*/\1/p' "$ptx" | head -n 1)
    target=$(sed -n 's/^\.target \([a-z0-9_]*\).*/\1/p' "$ptx" | head -n 1)
    if [ -z "$version" ] || [ "$(num "$version")" -gt "$(num "$isa")" ]; then
        echo "ptx-check: $ptx declares PTX ISA '${version}', newer than $isa: drivers older than its CUDA release refuse it" >&2
        status=1
    fi
    if [ "$target" != sm_75 ]; then
        echo "ptx-check: $ptx targets '$target', not sm_75" >&2
        status=1
    fi
    if ! "$ptxas" -arch=sm_75 -v -o "$build/ptxas/$name.cubin" "$ptx" > "$build/ptxas/$name.log" 2>&1; then
        cat "$build/ptxas/$name.log" >&2
        echo "ptx-check: $ptx is not valid PTX ISA $version for sm_75" >&2
        status=1
    fi
done
report="$build/ptxas-report.txt"
for ptx in "$@"; do
    log="$build/ptxas/$(basename "$ptx" .ptx).log"
    [ -f "$log" ] || continue
    awk -v src="$(basename "$ptx" .ptx).cu" '
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
    echo "# ptxas -v, sm_75, PTX ISA $isa (nvcc -arch=compute_75 -fmad=false), CUDA $("$nvcc" --version | sed -n "s/.*release \([0-9.]*\).*/\1/p")"
    printf "%-28s %-16s %9s %12s %11s %13s %12s\n" kernel source registers shared_bytes stack_bytes spill_stores spill_loads
    cat "$report.rows"
} > "$report"
rm -f "$report.rows"
cat "$report"
if [ $status -eq 0 ]; then
    echo "ptx-check: $# PTX files declare ISA <= $isa and target sm_75; ptxas assembles each at its declared version and refuses newer features there (self-test)"
fi
if awk 'NR > 2 && ($6 != 0 || $7 != 0) { bad = 1 } END { exit !bad }' "$report"; then
    echo "ptx-check: FAILED: a kernel spills registers (see $report)" >&2
    status=1
fi
exit $status

#!/usr/bin/env bash
# JMH kernel benchmarks (see bench/README.md, "Kernel benchmarks (JMH)"): installs the library
# into the local Maven repository, builds bench/target/benchmarks.jar, runs the benchmarks and
# prints the report table.
#
#   bench/jmh.sh [--no-build] [JMH arguments...]
#
# With no JMH arguments every benchmark runs with the short defaults of its annotations (1 fork,
# 2 × 1 s warm-up, 3 × 1 s measurement). JMH arguments override them and select benchmarks, e.g.
#   bench/jmh.sh -f 3 -wi 5 -i 10 'PathKernels|MemoryCopy'
# (-rf/-rff are set by this script). --no-build reuses the jar of the last build.
# KXAI_CUDA_EMULATOR=<native-tests/build> runs the CUDA benchmarks on the CPU emulator of the
# driver (`make -C native-tests`): a check of the benchmark code, not a measurement.
set -euo pipefail
bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$bench")"
jar="$bench/target/benchmarks.jar"
out="$bench/target/jmh"

build=1
if [ "${1:-}" = "--no-build" ]; then
  build=0
  shift
fi
if [ "$build" = 1 ]; then
  echo "jmh.sh: installing the library (mvn -B -q -DskipTests install in $root)" >&2
  (cd "$root" && mvn -B -q -DskipTests install)
  echo "jmh.sh: building $jar" >&2
  (cd "$bench" && mvn -B -q package)
fi
[ -f "$jar" ] || { echo "jmh.sh: $jar is missing; run without --no-build" >&2; exit 2; }

# The CUDA emulator, as the ./kxai launcher selects it: its libcuda.so.1 and libcublas.so.12
# in front of the dynamic linker (the forked benchmark JVMs inherit the environment).
if [ -n "${KXAI_CUDA_EMULATOR:-}" ]; then
  if [ ! -f "$KXAI_CUDA_EMULATOR/libcuda.so.1" ]; then
    echo "jmh.sh: KXAI_CUDA_EMULATOR=$KXAI_CUDA_EMULATOR holds no libcuda.so.1; build it with 'make -C $root/native-tests'" >&2
    exit 2
  fi
  export LD_LIBRARY_PATH="$KXAI_CUDA_EMULATOR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_BIND_NOW=1
fi

mkdir -p "$out/tmp"
# as ./kxai runs the library: single-threaded OpenBLAS (kxai parallelises itself); the forks get
# --add-modules jdk.incubator.vector from the benchmarks' @Fork
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# JCuda extracts its natives into java.io.tmpdir under fixed names and reuses stale copies: a
# private folder. JMH's forks inherit the host JVM's options.
java_opts=(-Djava.io.tmpdir="$out/tmp")

# Listing and help runs measure nothing: no report.
for a in "$@"; do
  case "$a" in
    -h|-l|-lp|-lrf|-lprof) exec java "${java_opts[@]}" -jar "$jar" "$@" ;;
  esac
done

rm -f "$out/result.json"
args=("$@")
if cuda_note="$(java "${java_opts[@]}" -cp "$jar" dev.kxai.bench.jmh.CudaCheck 2>&1)"; then
  :
else
  cuda_note="${cuda_note:-cuda: no usable device (the probe failed)}; GpuKernels skipped"
  args+=(-e 'GpuKernels')
fi
echo "jmh.sh: $cuda_note" >&2

set +e
java "${java_opts[@]}" -jar "$jar" "${args[@]}" -rf json -rff "$out/result.json" 2>&1 | tee "$out/jmh.log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ] || [ ! -s "$out/result.json" ]; then
  echo "jmh.sh: JMH failed (status $status); log in $out/jmh.log" >&2
  exit 1
fi
if grep -q '<failure>' "$out/jmh.log"; then
  echo "jmh.sh: some benchmarks failed (see <failure> in $out/jmh.log); the table lists the others" >&2
fi
java -cp "$jar" dev.kxai.bench.jmh.Report "$out/result.json" --gpu-note "$cuda_note" | tee "$out/report.md"

#!/usr/bin/env bash
# Builds kxai's JNI binding to oneDNN (kxai_onednn.cpp) into OUT_DIR/libkxai_onednn.so (and the
# OpenMP settings it needs, kxai_ompenv.c, into libkxai_ompenv.so), which the
# Maven build packs into the jar under dev/kxai/native/linux-x86_64/. Needs g++, a JDK's jni.h and
# oneDNN's headers (Debian: apt-get install g++ libdnnl-dev); without them it builds nothing and says
# so: the CPU backend then convolves with im2col + sgemm (kxai info says which it uses).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
java_home="${2:-${JAVA_HOME:-}}"
if [ -z "$java_home" ] || [ ! -f "$java_home/include/jni.h" ]; then
  java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac || command -v java)")")")"
fi
cxx="${CXX:-g++}"
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "onednn: not Linux x86_64: skipping the oneDNN binding (convolutions use im2col + sgemm)"; exit 0
fi
if ! command -v "$cxx" >/dev/null; then
  echo "onednn: $cxx not found: skipping the oneDNN binding (convolutions use im2col + sgemm)"; exit 0
fi
if ! echo '#include <dnnl.hpp>' | "$cxx" -x c++ -fsyntax-only - 2>/dev/null; then
  echo "onednn: dnnl.hpp not found (apt-get install libdnnl-dev): skipping the oneDNN binding (convolutions use im2col + sgemm)"
  exit 0
fi
if [ ! -f "$java_home/include/jni.h" ]; then
  echo "onednn: jni.h not found under $java_home/include: skipping the oneDNN binding"; exit 0
fi
mkdir -p "$out"
so="$out/libkxai_onednn.so"
env_so="$out/libkxai_ompenv.so"
if [ ! -f "$env_so" ] || [ "$here/kxai_ompenv.c" -nt "$env_so" ] || [ "$here/build.sh" -nt "$env_so" ]; then
  # no dependencies: it must be loaded (and set OMP_WAIT_POLICY) before libgomp is
  "$cxx" -x c -O2 -fPIC -shared -Wall -Wextra -I"$java_home/include" -I"$java_home/include/linux" \
    -o "$env_so" "$here/kxai_ompenv.c"
fi
if [ ! -f "$so" ] || [ "$here/kxai_onednn.cpp" -nt "$so" ] || [ "$here/build.sh" -nt "$so" ]; then
  # -fopenmp for omp_set_num_threads (oneDNN's Debian build threads with OpenMP); libdnnl.so.2 is
  # found at run time by the dynamic loader, so the jar works wherever Debian's libdnnl2 is installed
  "$cxx" -std=c++17 -O2 -fPIC -shared -fopenmp -Wall -Wextra \
    -I"$java_home/include" -I"$java_home/include/linux" \
    -o "$so" "$here/kxai_onednn.cpp" -ldnnl -Wl,--as-needed
fi
echo "onednn: built $so and $env_so"

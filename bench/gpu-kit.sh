#!/usr/bin/env bash
# Builds the GPU kit for a device machine that has the CUDA toolkit, a driver, compute-sanitizer and
# Python with PyTorch, but no Java, and takes at most 64 MiB with the working tree:
#
#   bench/gpu-kit.sh [OUT_DIR]        (default bench/out/gpu-kit; bench/out is not tracked)
#
#   runtime.tgz   a jlinked Java runtime with only the modules kxai needs (bench/gpu-kit.modules:
#                 jdeps on the shaded jar, less java.desktop: the kit writes no PNG), packed (the
#                 device script unpacks it)
#   kxai.jar      the shaded jar without JCuda's NVPTX-compiler JNI library (24 MB; the driver
#                 JIT-compiles kxai's PTX itself)
#   reference/    the Captum reference cases (../shared does not travel)
#
# Then checks the kit: its runtime runs `kxai info` and validates the reference on the CPU, and the
# kit plus the tracked tree fit the 64 MiB budget with room to spare. On the device machine, run
# bench/gpu-run.sh (see there) with the kit carried: run(command="bench/gpu-run.sh",
# carry=["bench/out/gpu-kit"]).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="${1:-$root/bench/out/gpu-kit}"
budget=$((64 * 1024 * 1024))
cd "$root"
[ -f target/kxai.jar ] || mvn -B -q -DskipTests package
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"
jlink --add-modules "$(tr -d '[:space:]' < "$here/gpu-kit.modules")" --strip-debug --no-header-files --no-man-pages \
  --compress=2 --output "$tmp/runtime"
tar czf "$out/runtime.tgz" -C "$tmp" runtime
cp target/kxai.jar "$out/kxai.jar"
(cd "$out" && zip -q -d kxai.jar 'lib/libJNvPTXCompiler*' || true)
ref="$root/../shared/reference/captum-0.8.0"
if [ -d "$ref" ]; then
  cp -r "$ref" "$out/reference"
else
  echo "gpu-kit: $ref not found: the kit carries no reference cases" >&2
fi
# self-test: the runtime runs kxai (info, and the reference on the CPU)
java_kit=("$tmp/runtime/bin/java" --add-modules jdk.incubator.vector -jar "$out/kxai.jar")
"${java_kit[@]}" info > "$tmp/info.txt" 2>&1 || { cat "$tmp/info.txt" >&2; echo "gpu-kit: the kit's runtime cannot run kxai info" >&2; exit 1; }
head -1 "$tmp/info.txt"
if [ -d "$out/reference" ]; then
  "${java_kit[@]}" validate "$out/reference" --device cpu 2>&1 | tail -1
fi
kit=$(du -sb "$out" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((kit + tree))
printf 'gpu-kit: runtime %s, jar %s, reference %s; kit %.1f MiB + tracked tree %.1f MiB = %.1f MiB of %d MiB\n' \
  "$(du -h "$out/runtime.tgz" | cut -f1)" "$(du -h "$out/kxai.jar" | cut -f1)" \
  "$(du -sh "$out/reference" 2>/dev/null | cut -f1 || echo none)" \
  "$(echo "$kit / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" "$(echo "$total / 1048576" | bc -l)" 64
if [ "$total" -gt $((budget * 9 / 10)) ]; then
  echo "gpu-kit: over 90% of the 64 MiB budget: trim the kit" >&2
  exit 1
fi
echo "gpu-kit: ready in $out"

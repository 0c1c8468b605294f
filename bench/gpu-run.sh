#!/usr/bin/env bash
# The device half of the GPU kit (bench/gpu-kit.sh builds the other half here): one command, under
# 10 minutes, on a machine with an NVIDIA GPU, the CUDA toolkit (compute-sanitizer), Python with
# PyTorch, and no Java. From the repository root, with bench/out/gpu-kit carried:
#
#   bench/gpu-run.sh            writes everything under $OUT (default /tmp/kxai-gpu-out)
#
# Steps (each with its own time limit; a failing step is recorded and the next one runs):
#   nvidia-smi; kxai info --device cuda; kxai validate on the reference cases, cuda and cpu;
#   the benchmark workloads (bench/make_workloads.py) with kxai bench on cuda and cpu and
#   bench/torch_ig.py on cuda (PyTorch on the same GPU), resnet18 included; compute-sanitizer
#   memcheck and racecheck over one small IG call; report.md summarising the lines that matter.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kit="$root/bench/out/gpu-kit"
out="${OUT:-/tmp/kxai-gpu-out}"
mkdir -p "$out"
[ -f "$kit/kxai.jar" ] && [ -f "$kit/runtime.tgz" ] || { echo "gpu-run: no kit in $kit: run bench/gpu-kit.sh first, carry it" >&2; exit 2; }
rt="$(mktemp -d)"
tar xzf "$kit/runtime.tgz" -C "$rt"
java=("$rt/runtime/bin/java" --add-modules jdk.incubator.vector -jar "$kit/kxai.jar")
py="${KXAI_PYTHON:-python3}"
report="$out/report.md"
echo "# kxai on a GPU ($(date -u +%FT%TZ))" > "$report"

step() { # name, seconds, command...
  local name="$1" secs="$2"; shift 2
  local t0=$(date +%s)
  timeout "$secs" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "- $name: exit $rc in $(( $(date +%s) - t0 )) s" >> "$report"
  return 0
}

step nvidia-smi 20 nvidia-smi
step info 60 "${java[@]}" info --device cuda
grep -E "^backend (cuda|chosen)" "$out/info.txt" | sed 's/^/    /' >> "$report"
if [ -d "$kit/reference" ]; then
  step validate-cuda 180 "${java[@]}" validate "$kit/reference" --device cuda
  step validate-cpu 120 "${java[@]}" validate "$kit/reference" --device cpu
  tail -1 "$out/validate-cuda.txt" | sed 's/^/    cuda: /' >> "$report"
  tail -1 "$out/validate-cpu.txt" | sed 's/^/    cpu: /' >> "$report"
fi
step workloads 180 "$py" "$root/bench/make_workloads.py"
for w in mlp_wide tinyvgg_course resnet18; do
  d="$root/bench/workloads/$w"
  [ -f "$d/model.onnx" ] || continue
  step "bench-$w-cuda" 120 "${java[@]}" bench --model "$d/model.onnx" --input "$d/input.npy" --method ig --device cuda
  step "bench-$w-cpu" 120 "${java[@]}" bench --model "$d/model.onnx" --input "$d/input.npy" --method ig --device cpu
  step "torch-$w-cuda" 120 "$py" "$root/bench/torch_ig.py" "$d" --device cuda --repeats 5
  for f in "bench-$w-cuda" "bench-$w-cpu" "torch-$w-cuda"; do
    tail -1 "$out/$f.txt" | sed "s/^/    $f: /" >> "$report"
  done
done
if command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck; do
    # one small IG call (bench: no PNG, so the runtime needs no java.desktop)
    step "sanitizer-$tool" 240 compute-sanitizer --tool "$tool" --error-exitcode 9 "${java[@]}" bench \
      --model "$kit/reference/digits_cnn/model.onnx" --input "$kit/reference/digits_cnn/input.npy" --method ig \
      --steps 8 --warmup 0 --repeats 1 --device cuda
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Error" "$out/sanitizer-$tool.txt" | tail -2 | sed "s/^/    $tool: /" >> "$report"
  done
fi
cat "$report"

#!/usr/bin/env bash
# kxai against PyTorch autograd on the benchmark workloads; rewrites bench/RESULTS.md.
#
#   bench/compare.sh [workload...] [--threads N] [--repeats R]
#
# Workloads: mlp_wide tinyvgg_course resnet18 (default: all three; missing ones are generated).
# For each workload it runs R rounds; a round is one `kxai bench` process and then one
# torch_ig.py process (kxai, torch, kxai, torch, ...: drift on a shared machine hits both), each
# with 2 untimed warm-ups and 3 timed runs of the workload's steps and rule (the JVM compiles its
# hot loops over the first runs; a service runs warm). The medians of the processes' medians over the
# rounds are compared; the last round's attributions of both are compared element by element,
# and each with an untimed float64 run of torch_ig.py (the reference for rounding).
# Threads: kxai bench --threads N over a single-threaded OpenBLAS (OPENBLAS_NUM_THREADS=1, as ./kxai
# runs it); torch.set_num_threads(N) and OPENBLAS_NUM_THREADS=N for torch (unless already set). Logs and attributions go to bench/out/.
# Needs /usr/bin/python3 with torch, torchvision, onnx (apt-get install python3-torch
# python3-torchvision python3-onnx); KXAI_PYTHON overrides the interpreter.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
py="${KXAI_PYTHON:-/usr/bin/python3}"
threads="$(nproc)"
repeats=3
workloads=()
invocation="bench/compare.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    --threads=*) threads="${1#*=}"; shift ;;
    --repeats) repeats="${2:?--repeats needs a number}"; shift 2 ;;
    --repeats=*) repeats="${1#*=}"; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    *) workloads+=("$1"); shift ;;
  esac
done
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --threads must be a positive integer" >&2; exit 2; }
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --repeats must be a positive integer" >&2; exit 2; }
[ ${#workloads[@]} -gt 0 ] || workloads=(mlp_wide tinyvgg_course resnet18)
"$py" -c 'import torch, torchvision, onnx' 2>/dev/null || {
  echo "compare.sh: $py lacks torch/torchvision/onnx; apt-get install python3-torch python3-torchvision python3-onnx" >&2
  exit 2
}
# torch's Linear layers call OpenBLAS: it gets the N threads; kxai parallelises itself over a
# single-threaded OpenBLAS (as ./kxai runs it), and gets the Vector API module for its SIMD loops
torch_blas_threads="${OPENBLAS_NUM_THREADS:-$threads}"
cd "$root"
out="bench/out"
rm -rf "$out"
mkdir -p "$out"

"$py" bench/make_workloads.py "${workloads[@]}"

# Build once (the launcher builds when sources changed), then run a snapshot of the jar, so that a
# rebuild by someone else during the run cannot change what is measured.
# Other builds may replace target/kxai.jar at any moment: retry until a copy of it runs.
for attempt in 1 2 3 4 5 6; do
  if ./kxai info > /dev/null 2>&1 && cp target/kxai.jar "$out/kxai.jar" \
      && OPENBLAS_NUM_THREADS=1 java --add-modules jdk.incubator.vector -jar "$out/kxai.jar" info > "$out/info.txt" 2>/dev/null; then
    break
  fi
  [ "$attempt" -lt 6 ] || { echo "compare.sh: cannot build a working target/kxai.jar" >&2; cat "$out/info.txt" >&2; exit 2; }
  echo "compare.sh: target/kxai.jar is being rebuilt; retrying in 20 s" >&2
  sleep 20
done
java_cmd=(env OPENBLAS_NUM_THREADS=1 java --add-modules jdk.incubator.vector ${KXAI_JAVA_OPTS:-} -jar "$out/kxai.jar")
: > "$out/commands.txt"

for w in "${workloads[@]}"; do
  dir="bench/workloads/$w"
  read -r steps rule < <("$py" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["steps"], m["rule"])' "$dir/workload.json")
  mkdir -p "$out/$w"
  kx=("${java_cmd[@]}" bench --model "$dir/model.onnx" --input "$dir/input.npy" --method ig --steps "$steps"
      --rule "$rule" --threads "$threads" --repeats 3 --warmup 2 --out "$out/$w/kxai")
  th=(env OPENBLAS_NUM_THREADS="$torch_blas_threads" "$py" bench/torch_ig.py "$dir" --steps "$steps" --rule "$rule" --threads "$threads" --repeats 3 --warmup 2
      --out "$out/$w/torch_attributions.npy")
  printf '%s\t%s\n' "$w, kxai" "${kx[*]}" >> "$out/commands.txt"
  printf '%s\t%s\n' "$w, torch" "${th[*]}" >> "$out/commands.txt"
  for ((r = 1; r <= repeats; r++)); do
    echo "== $w round $r/$repeats: kxai" >&2
    # (the JVM's one-line incubator-module notice is dropped from stderr, as ./kxai does)
    "${kx[@]}" > "$out/$w/kxai_$r.log" 2> >(grep -v -x 'WARNING: Using incubator modules: jdk.incubator.vector' >&2)
    tail -n 1 "$out/$w/kxai_$r.log" >&2
    echo "== $w round $r/$repeats: torch" >&2
    "${th[@]}" > "$out/$w/torch_$r.log"
    tail -n 1 "$out/$w/torch_$r.log" >&2
  done
  # untimed float64 reference: how far each engine's float32 result is from exact arithmetic
  t64=(env OPENBLAS_NUM_THREADS="$torch_blas_threads" "$py" bench/torch_ig.py "$dir" --steps "$steps" --rule "$rule" --threads "$threads" --repeats 1 --warmup 0
       --dtype float64 --out "$out/$w/torch64_attributions.npy")
  printf '%s\t%s\n' "$w, float64 reference (untimed)" "${t64[*]}" >> "$out/commands.txt"
  echo "== $w: float64 reference" >&2
  "${t64[@]}" > "$out/$w/torch64.log"
done

"$py" bench/report.py --out-dir "$out" --threads "$threads" --repeats "$repeats" \
  --invocation "$invocation" --results bench/RESULTS.md "${workloads[@]}"

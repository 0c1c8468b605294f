#!/usr/bin/env bash
# The first-layer saving (ARCHITECTURE.md) on the CPU: one workload with and without it, in one run.
#
#   bench/first_layer_saving.sh [workload] [--rounds R] [--threads N]
#
# Workload: tinyvgg_course by default (any of bench/workloads/; missing ones are generated).
# A round is one `kxai bench` process without the saving, then one with it (alternating, so
# drift on a shared machine hits both); each does 1 untimed warm-up and 3 timed repeats. Prints
# every process's median, the medians over the rounds, the speed-up, and how far the two
# attributions are apart (they differ only by float rounding of the path points).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
py="${KXAI_PYTHON:-/usr/bin/python3}"
workload=tinyvgg_course
rounds=3
threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "first_layer_saving.sh: unknown option $1" >&2; exit 2 ;;
    *) workload="$1"; shift ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "first_layer_saving.sh: --rounds must be a positive integer" >&2; exit 2; }
cd "$root"
dir="bench/workloads/$workload"
[ -f "$dir/model.onnx" ] || "$py" bench/make_workloads.py "$workload"
read -r steps rule < <("$py" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["steps"], m["rule"])' "$dir/workload.json")
out="bench/out/first_layer_saving/$workload"
rm -rf "$out"
mkdir -p "$out"
./kxai info > /dev/null # builds the jar if needed
plain=()
saving=()
for ((r = 1; r <= rounds; r++)); do
  for mode in plain saving; do
    flag=()
    [ "$mode" = saving ] && flag=(--first-layer-saving)
    ./kxai bench --model "$dir/model.onnx" --input "$dir/input.npy" --steps "$steps" --rule "$rule" \
      --threads "$threads" --repeats 3 --warmup 1 --sgemm-seconds 0.1 --out "$out/$mode" "${flag[@]}" > "$out/${mode}_$r.log"
    m="$(sed -n 's/^bench: median_s=\([0-9.]*\).*/\1/p' "$out/${mode}_$r.log")"
    echo "round $r $mode: median_s=$m"
    if [ "$mode" = plain ]; then plain+=("$m"); else saving+=("$m"); fi
  done
done
"$py" - "$out" "${plain[*]}" "${saving[*]}" "$workload" "$steps" "$rule" <<'PY'
import statistics, sys
import numpy as np
out, plain, saving, workload, steps, rule = sys.argv[1:]
p = statistics.median(float(v) for v in plain.split())
s = statistics.median(float(v) for v in saving.split())
a = np.load(f"{out}/plain/attributions.npy").astype(np.float64)
b = np.load(f"{out}/saving/attributions.npy").astype(np.float64)
diff = np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)
print(f"first-layer saving on {workload} ({steps} steps, {rule}): without {p:.3f} s, with {s:.3f} s, "
      f"speed-up {p / s:.2f}x; max rel diff of the attributions {diff:.2e}")
PY

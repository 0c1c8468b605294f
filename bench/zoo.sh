#!/usr/bin/env bash
# The model zoo check: exports what users bring (bench/zoo.py: 14 torchvision architectures with
# random weights, a text transformer over token ids + attention mask, an LSTM classifier, a tiny BERT) with
# PyTorch's reference attributions computed as Captum does (float32 and float64), then runs
# `kxai validate` on each and prints one table row per model.
#
#   bench/zoo.sh [--device cpu|cuda] [--size 224] [--opset 13] [--models a,b,...] [--out DIR] [--fresh]
#
# --device cuda on a machine without a GPU runs on the emulator when KXAI_CUDA_EMULATOR is set
# (use a small --size there: the emulator is slow). A case passes within 1e-4 of the float32
# reference or of the float64 one (FORMAT.md); a failing case's line says how far it is from
# float64 next to how far the float32 reference itself is. Needs /usr/bin/python3 with torch,
# torchvision, onnx (apt-get install python3-torch python3-torchvision python3-onnx); not part of
# `mvn verify`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
py="${KXAI_PYTHON:-/usr/bin/python3}"
device=cpu
size=224
opset=13
models=""
out="$here/out/zoo"
fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="${2:?}"; shift 2 ;;
    --size) size="${2:?}"; shift 2 ;;
    --opset) opset="${2:?}"; shift 2 ;;
    --models) models="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    --fresh) fresh=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "zoo.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
"$py" -c 'import torch, torchvision, onnx' 2>/dev/null || {
  echo "zoo.sh: $py lacks torch/torchvision/onnx; apt-get install python3-torch python3-torchvision python3-onnx" >&2
  exit 2
}
[ "$fresh" = 1 ] && rm -rf "$out"
mkdir -p "$out"
args=(--size "$size" --opset "$opset")
[ -n "$models" ] && args+=(--models "$models")
if [ -z "$(ls -A "$out" 2>/dev/null)" ] || [ "$fresh" = 1 ]; then
  "$py" "$here/zoo.py" "$out" "${args[@]}" 2>/dev/null
fi
dists="$(mktemp)"
trap 'rm -f "$dists"' EXIT
printf '%-22s %-8s %-6s %-6s %-7s %s\n' model loads passed failed kxai_s "failures (vs float32; vs float64; the float32 reference's own distance)"
for dir in "$out"/*/; do
  name="$(basename "$dir")"
  [ -n "$models" ] && [[ ",$models," != *",$name,"* ]] && continue
  if [ ! -f "$dir/manifest.json" ]; then # zoo.py said why it did not export this one (e.g. the size)
    printf '%-22s %-8s\n' "$name" "not exported"
    continue
  fi
  start=$(date +%s.%N)
  log="$("$root/kxai" validate "$dir" --device "$device" --progress off 2>&1 || true)"
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  summary="$(echo "$log" | grep '^validate: [0-9]* passed' | tail -n 1 || true)"
  passed=$(echo "$summary" | sed -n 's/validate: \([0-9]*\) passed.*/\1/p')
  failed=$(echo "$summary" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  loads=yes; echo "$log" | grep -q '/load ' && loads=no
  fails="$(echo "$log" | grep ' fail ' | sed 's/  */ /g' | cut -c1-160 | paste -sd '|' - || true)"
  printf '%-22s %-8s %-6s %-6s %-7.1f %s\n' "$name" "$loads" "${passed:-0}" "${failed:-?}" "$secs" "$fails"
  # each case's distance from the float64 reference, and the float32 reference's own (for the medians)
  echo "$log" | sed -n "s/.*vs float64 rel_l2=\([0-9.e+-]*\), the float32 reference's own \([0-9.e+-]*\).*/\1 \2/p" \
    >> "$dists"
  # kept per case, so that medians over several runs (models run apart) can be taken later
  echo "$log" | sed -n "s/^\([^ ]*\) .*vs float64 rel_l2=\([0-9.e+-]*\), the float32 reference's own \([0-9.e+-]*\).*/\1 \2 \3/p" \
    >> "$out/distances-$device.txt"
done
if [ -s "$dists" ]; then
  sort -g -k1,1 "$dists" | awk '{a[NR]=$1} END {printf "median over %d cases: kxai vs float64 rel_l2 %.2e", NR, (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
  sort -g -k2,2 "$dists" | awk '{a[NR]=$2} END {printf "; the float32 reference (PyTorch, as Captum) vs float64 %.2e\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
fi

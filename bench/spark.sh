#!/usr/bin/env bash
# Rows/s of kxai-spark on local[2] against kxai explain in one process, on the same rows, in one run.
#   bench/spark.sh [K] [REPEATS]   (the ten bundled digits K times: 10*K rows; default 100 and 5)
# 1. one JVM: `kxai spark --master local[2]` (Parquet in, explain, Parquet out) REPEATS times, each followed
#    by kxai explain on the same rows in that JVM (its own reported seconds: model, input, attributions);
# 2. the kxai explain CLI as its own process on the same rows (OUT/digits.npy), REPEATS times: the seconds
#    it reports, and its wall time (JVM start and PNG writing included).
# Both sides use --batch-invariant (kxai-spark's default). Medians; see RESULTS.md, <!-- spark -->.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
k="${1:-100}"
repeats="${2:-5}"
out="$(mktemp -d /tmp/kxai-spark-bench.XXXXXX)"
echo "== kxai spark, local[2], $((10 * k)) rows, and kxai explain in the same JVM (alternating)"
"$root/kxai" spark --master 'local[2]' --digits-repeat "$k" --repeats "$repeats" --vs-explain --out "$out" 2>/dev/null
echo "== kxai explain CLI, one process per run, same rows"
secs=()
walls=()
for i in $(seq "$repeats"); do
  t0=$(date +%s.%N)
  line="$(KXAI_CDS=0 "$root/kxai" explain --batch-invariant --model "$out/bundled-model.onnx" --input "$out/digits.npy" \
    --out "$out/cli" --progress off | head -n 1)"
  t1=$(date +%s.%N)
  secs+=("$(sed -E 's/.*, ([0-9.]+) s$/\1/' <<<"$line")")
  walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ms="$(median "${secs[@]}")"
mw="$(median "${walls[@]}")"
printf 'kxai explain CLI: reported %s s (%s rows/s; runs: %s), wall %s s (runs: %s)\n' "$ms" \
  "$(awk -v n="$((10 * k))" -v s="$ms" 'BEGIN { printf "%.1f", n / s }')" "${secs[*]}" "$mw" "${walls[*]}"
rm -rf "$out"

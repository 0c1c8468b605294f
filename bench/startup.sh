#!/usr/bin/env bash
# Cold start of `./kxai explain` on the bundled digits: median wall time of N runs per variant, the
# variants alternating within each round (so a busy machine slows them alike; read the ratios).
#   bench/startup.sh [--runs 5] [--before DIR]
# Variants: ./kxai as is (the AppCDS archive made by a first, untimed run), ./kxai with KXAI_JIT=full
# (the tiered JIT of a real model's run), ./kxai with KXAI_CDS=0, and with --before DIR a launcher
# DIR/kxai (with its DIR/target/kxai.jar), e.g. an older checkout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=5
before=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --before) before="$2"; shift 2 ;;
    *) echo "startup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
names=("now") ; cmds=("$root/kxai")
names+=("jit-full"); cmds+=("env KXAI_JIT=full $root/kxai")
names+=("no-cds"); cmds+=("env KXAI_CDS=0 $root/kxai")
# the older checkout's archive in a folder of its own (older launchers kept theirs in ~/.cache/kxai/cds,
# where another checkout's first run replaces it)
if [ -n "$before" ]; then names+=("before"); cmds+=("env KXAI_CDS_DIR=$out/cds-before $before/kxai"); fi
for i in "${!names[@]}"; do # builds the jars if needed and dumps the archives
  ${cmds[$i]} explain --out "$out/warm" > /dev/null 2>&1
done
# wall and CPU (user + system, all threads and the launcher's processes) per run, in ms
declare -A walls cpus
for ((r = 1; r <= runs; r++)); do
  for i in "${!names[@]}"; do
    /usr/bin/time -f '%e %U %S' -o "$out/time" ${cmds[$i]} explain --out "$out/run" > /dev/null 2>&1
    read -r e u sy < "$out/time"
    walls[$i]="${walls[$i]:-} $(awk -v e="$e" 'BEGIN { printf "%d", e * 1000 }')"
    cpus[$i]="${cpus[$i]:-} $(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%d", (u + s) * 1000 }')"
  done
done
median() { echo "$@" | tr ' ' '\n' | sort -n | sed -n "$(( (runs + 1) / 2 ))p"; }
echo "load average before: $(cut -d ' ' -f 1-3 /proc/loadavg); $(nproc) cores; $runs runs per variant, alternating"
for i in "${!names[@]}"; do
  printf '%-9s wall median %5d ms  cpu median %5d ms   wall runs:%s   cpu runs:%s\n' "${names[$i]}" \
    "$(median ${walls[$i]})" "$(median ${cpus[$i]})" "${walls[$i]}" "${cpus[$i]}"
done

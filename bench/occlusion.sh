#!/usr/bin/env bash
# Occlusion on resnet18 (issue 11's speed point): kxai against Captum's algorithm in plain torch.
#
#   bench/occlusion.sh [--rounds R] [--threads N] [--ppe P] [--no-f64] [--no-before]
#
# Exports torchvision resnet18 (random weights, BN folded, bench/torch_occlusion.py export) and a
# fixed 1x3x224x224 input once, into bench/out/occlusion/resnet18. Then R rounds (default 3), each
# one process per variant, alternating: torch with perturbations_per_eval=1 (Captum's default),
# kxai (its default chunks), torch with perturbations_per_eval=P (default 64), kxai with
# --internal-batch-size 5 ("before": the rows per call the forward+backward chunk sizing gave for
# this model); each process times one full occlusion (16x16 windows, stride 8, over all 3 channels)
# after one untimed forward (the targets). Then, unless --no-f64, torch_occlusion.py in float64 once
# (untimed), the reference for rounding. Writes bench/out/occlusion/report.md after every round and
# puts the last one into bench/RESULTS.md between the <!-- occlusion --> markers.
# Threads: kxai bench --threads N over OPENBLAS_NUM_THREADS=1; torch.set_num_threads(N).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
py="${KXAI_PYTHON:-/usr/bin/python3}"
threads="$(nproc)"
rounds=3
ppe=64
f64=1
before=1
invocation="bench/occlusion.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?}"; shift 2 ;;
    --threads) threads="${2:?}"; shift 2 ;;
    --ppe) ppe="${2:?}"; shift 2 ;;
    --no-f64) f64=0; shift ;;
    --no-before) before=0; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "occlusion.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$root"
out="bench/out/occlusion"
wl="$out/resnet18"
mkdir -p "$out/logs"
rm -f "$out"/logs/*.log
window="${OCCL_WINDOW:-3,16,16}"   # overrides for a quick check of the script only
strides="${OCCL_STRIDES:-3,8,8}"
[ -f "$wl/model.onnx" ] && [ -f "$wl/input.npy" ] || "$py" bench/torch_occlusion.py export "$wl"
./kxai info > /dev/null
cp target/kxai.jar "$out/kxai.jar"
java_cmd=(env OPENBLAS_NUM_THREADS=1 java --add-modules jdk.incubator.vector -jar "$out/kxai.jar")
torch_cmd=(env OPENBLAS_NUM_THREADS="$threads" "$py" bench/torch_occlusion.py run "$wl" --window "$window"
  --strides "$strides" --threads "$threads" --repeats 1 --warmup 0)
{
  echo "started $(date -u '+%Y-%m-%d %H:%M UTC'); $(uptime)"
  echo "invocation: $invocation"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (+ uncommitted changes)')"
  echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
} > "$out/machine.txt"

report() {
  "$py" - "$out" "$ppe" "$rounds" "$invocation" <<'EOF'
import glob, os, re, statistics, sys
import numpy as np
out, ppe, rounds, invocation = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def grab(pattern, text, conv=float):
    m = re.search(pattern, text)
    return conv(m.group(1)) if m else None
rows = {}
for f in sorted(glob.glob(os.path.join(out, "logs", "r*_*.log"))):
    name = os.path.basename(f)[:-4].split("_", 1)[1]
    t = open(f).read()
    r = rows.setdefault(name, {"s": [], "calls": None, "per": None, "load": [], "start": []})
    if name.startswith("torch"):
        s = grab(r"torch: median_s=([0-9.]+)", t)
        r["calls"] = grab(r"forward_calls=(\d+)", t, int)
        r["per"] = grab(r"rows_per_call=(\d+)", t, int)
        imp, bld = grab(r"import_s=([0-9.]+)", t), grab(r"build_s=([0-9.]+)", t)
        if imp is not None:
            r["start"].append(imp)
            r["load"].append(bld)
    else:
        s = grab(r"bench: median_s=([0-9.]+)", t)
        r["calls"] = grab(r"passes: (\d+) forward calls", t, int)
        r["per"] = grab(r"at most (\d+) rows per call", t, int)
        ld = grab(r"loaded in ([0-9.]+) s", t)
        if ld is not None:
            r["load"].append(ld)
    if s is not None:
        r["s"].append(s)
jvm = []
for f in glob.glob(os.path.join(out, "logs", "r*_jvm.txt")):
    jvm += [float(v) for v in open(f).read().split()]
def med(v):
    return statistics.median(v) if v else float("nan")
label = {"torch_ppe1": "torch, Captum's algorithm, perturbations_per_eval=1 (default)",
         "torch_ppe%s" % ppe: "torch, Captum's algorithm, perturbations_per_eval=%s" % ppe,
         "kxai": "kxai (this commit: forward-only chunk sizing)",
         "kxai_before": "kxai --internal-batch-size 5 (the earlier chunk sizing's rows per call)"}
order = ["torch_ppe1", "torch_ppe%s" % ppe, "kxai", "kxai_before"]
lines = ["<!-- occlusion -->", "## Occlusion on resnet18: kxai against Captum's algorithm in torch", ""]
lines += [l.rstrip() for l in open(os.path.join(out, "machine.txt"))]
end = os.path.join(out, "finished.txt")
if os.path.exists(end):
    lines += [l.rstrip() for l in open(end)]
lines += ["", "Occlusion of one 1x3x224x224 input, sliding window 3x16x16, strides 3x8x8 (27x27 = 729 windows), "
          "zero baseline, target = argmax; torchvision resnet18 with random weights, BN folded (the same model on "
          "both sides). Each process times one full occlusion after one untimed forward; variants alternate "
          "within each round; medians over the rounds.", "",
          "| variant | s per explanation (median) | runs (s) | forward calls | rows per call | "
          "speed-up of kxai (this / kxai) | speed-up of kxai before (this / kxai before) | load (s) |",
          "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
k = med(rows.get("kxai", {}).get("s", []))
kb = med(rows.get("kxai_before", {}).get("s", []))
for name in order:
    r = rows.get(name)
    if not r or not r["s"]:
        continue
    m = med(r["s"])
    lines.append("| %s | %.1f | %s | %s | %s | %.2fx | %.2fx | %.2f |" % (
        label.get(name, name), m, ", ".join("%.1f" % v for v in r["s"]), r["calls"], r["per"], m / k,
        m / kb, med(r["load"])))
lines += ["", "* speed-up > 1: kxai is faster than that variant by that factor (this commit's kxai; the next "
          "column: kxai with the earlier 5 rows per call). Rounds completed: %d of %d." % (
              min(len(r["s"]) for r in rows.values() if r["s"]) if rows else 0, rounds)]
if jvm:
    lines.append("* JVM start (`java -jar kxai.jar --version`, wall): median %.2f s of %s. kxai's load column: "
                 "`Model.load` + reading the input (the bench's `loaded in`)." % (med(jvm), ", ".join("%.2f" % v for v in jvm)))
st = rows.get("torch_ppe1", {}).get("start", [])
if st:
    lines.append("* torch: Python's `import torch, torchvision` median %.2f s; its load column: building resnet18, "
                 "folding the BNs, the targets' forward." % med(st))
def ld(p):
    return np.load(p).astype(np.float64) if os.path.exists(p) else None
kx, tt, t64 = ld(os.path.join(out, "kxai", "attributions.npy")), ld(os.path.join(out, "torch.npy")), \
    ld(os.path.join(out, "torch64.npy"))
kxb = ld(os.path.join(out, "kxai_before", "attributions.npy"))
def cmp(a, b):
    d = a - b
    return "max abs %.2e, rel L2 %.2e" % (np.abs(d).max(), np.linalg.norm(d) / max(np.linalg.norm(b), 1e-300))
if kx is not None and tt is not None:
    lines.append("* Agreement (last round): kxai vs torch float32: %s (max |torch| %.3g)." % (cmp(kx, tt), np.abs(tt).max()))
    if kxb is not None:
        lines.append("* kxai (this commit) vs kxai before: %s." % cmp(kx, kxb))
    if t64 is not None:
        lines.append("* Against torch float64 (untimed, same algorithm): kxai %s; torch float32 %s." % (cmp(kx, t64), cmp(tt, t64)))
    else:
        lines.append("* float64 reference: not run (--no-f64).")
lines.append("<!-- /occlusion -->")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "report.md"), "w").write(text)
res = "bench/RESULTS.md"
cur = open(res).read()
if "<!-- occlusion -->" in cur:
    cur = re.sub(r"<!-- occlusion -->.*?<!-- /occlusion -->\n?", lambda _: text, cur, flags=re.S)
else:
    cur = cur.rstrip("\n") + "\n\n" + text
open(res, "w").write(cur)
print(text)
EOF
}

for ((i = 1; i <= rounds; i++)); do
  last=$([ "$i" -eq "$rounds" ] && echo 1 || echo 0)
  s=$(date +%s.%N); "${java_cmd[@]}" --version > /dev/null 2>&1; e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }' > "$out/logs/r${i}_jvm.txt"
  echo "round $i: torch ppe 1 ($(uptime | sed 's/.*load/load/'))"
  "${torch_cmd[@]}" --perturbations-per-eval 1 $([ "$last" = 1 ] && echo --out "$out/torch.npy") \
    > "$out/logs/r${i}_torch_ppe1.log" 2>&1
  tail -1 "$out/logs/r${i}_torch_ppe1.log"
  echo "round $i: kxai ($(uptime | sed 's/.*load/load/'))"
  "${java_cmd[@]}" bench --model "$wl/model.onnx" --input "$wl/input.npy" --method occlusion --sliding-window "$window" \
    --strides "$strides" --threads "$threads" --repeats 1 --warmup 0 $([ "$last" = 1 ] && echo --out "$out/kxai") \
    2>&1 | grep -v '^WARNING' > "$out/logs/r${i}_kxai.log"
  grep -E '^(passes|bench):' "$out/logs/r${i}_kxai.log"
  echo "round $i: torch ppe $ppe ($(uptime | sed 's/.*load/load/'))"
  "${torch_cmd[@]}" --perturbations-per-eval "$ppe" > "$out/logs/r${i}_torch_ppe${ppe}.log" 2>&1
  tail -1 "$out/logs/r${i}_torch_ppe${ppe}.log"
  if [ "$before" = 1 ]; then
    echo "round $i: kxai before ($(uptime | sed 's/.*load/load/'))"
    "${java_cmd[@]}" bench --model "$wl/model.onnx" --input "$wl/input.npy" --method occlusion --sliding-window "$window" \
      --strides "$strides" --threads "$threads" --repeats 1 --warmup 0 --internal-batch-size 5 \
      $([ "$last" = 1 ] && echo --out "$out/kxai_before") 2>&1 | grep -v '^WARNING' > "$out/logs/r${i}_kxai_before.log"
    grep -E '^(passes|bench):' "$out/logs/r${i}_kxai_before.log"
  fi
  report > /dev/null
done
if [ "$f64" = 1 ]; then
  echo "float64 reference ($(uptime | sed 's/.*load/load/'))"
  "${torch_cmd[@]}" --perturbations-per-eval "$ppe" --dtype float64 --out "$out/torch64.npy" > "$out/logs/torch64.log" 2>&1
  tail -1 "$out/logs/torch64.log"
fi
echo "finished $(date -u '+%Y-%m-%d %H:%M UTC'); $(uptime)" > "$out/finished.txt"
report

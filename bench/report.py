#!/usr/bin/python3
"""Summarises a bench/compare.sh run (logs under bench/out/) and rewrites bench/RESULTS.md.

Per workload: median over the rounds of kxai's and torch's per-process medians, their ratio torch/kxai
(> 1: kxai faster), kxai's peak fraction at its median (GFLOP per run / median / median sgemm
rate of the rounds), and the difference of the last round's attributions: max|a - b| / max|b|
(b = torch) and the relative L2 error ||a - b|| / ||b||, and each side's max relative
difference from the float64 reference run.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess

import numpy as np

CLOSE = re.compile(r"bench: median_s=([0-9.]+) attributions_per_s=([0-9.]+) gflop_per_s=([0-9.]+) "
                   r"peak_fraction=([0-9.]+)")
WORK = re.compile(r"= ([0-9.]+) GFLOP per run")
SGEMM = re.compile(r"sgemm: .*: ([0-9.]+) GFLOP/s")
TORCH = re.compile(r"torch: median_s=([0-9.]+)")
TOLERANCE = 1e-4


def grab(pattern, path):
    with open(path) as f:
        m = pattern.search(f.read())
    if not m:
        raise SystemExit(f"report.py: {path} lacks a line matching {pattern.pattern}")
    return m


def why_incomparable(results):
    """Why the relative differences of these attributions would mean nothing, or None. A NaN or an
    infinity in a result, or a reference that is all zero (the differences are then 0/0: the vit_b_16
    row printed nan in every agreement column while torchvision's zero-initialised head made every
    attribution 0), is reported as such instead of as a number."""
    for name, x in results.items():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            return f"{bad} non-finite values in {name}'s attributions"
    for name in ("torch", "torch float64"):
        if not np.any(results[name]):
            return f"{name}'s attributions are all 0 (a zero-initialised head?)"
    return None


def summarise(out_dir, w):
    d = os.path.join(out_dir, w)
    k_logs = sorted(glob.glob(os.path.join(d, "kxai_*.log")))
    t_logs = sorted(glob.glob(os.path.join(d, "torch_*.log")))
    k_times = [float(grab(CLOSE, p).group(1)) for p in k_logs]
    t_times = [float(grab(TORCH, p).group(1)) for p in t_logs]
    gflop_run = float(grab(WORK, k_logs[0]).group(1))
    sgemm = statistics.median(float(grab(SGEMM, p).group(1)) for p in k_logs)
    k_med = statistics.median(k_times)
    t_med = statistics.median(t_times)
    a = np.load(os.path.join(d, "kxai", "attributions.npy")).astype(np.float64)
    b = np.load(os.path.join(d, "torch_attributions.npy")).astype(np.float64)
    ref = np.load(os.path.join(d, "torch64_attributions.npy")).astype(np.float64)
    with open(os.path.join("bench", "workloads", w, "workload.json")) as f:
        meta = json.load(f)
    if a.shape != b.shape:
        raise SystemExit(f"report.py: {w}: kxai attributions {a.shape} vs torch {b.shape}")
    unusable = why_incomparable({"kxai": a, "torch": b, "torch float64": ref})
    return {
        "workload": w, "batch": meta["batch"], "steps": meta["steps"], "rule": meta["rule"],
        "kxai_s": k_med, "torch_s": t_med, "ratio": t_med / k_med,
        "peak_fraction": gflop_run / k_med / sgemm, "gflop_per_s": gflop_run / k_med, "sgemm": sgemm,
        "unusable": unusable,
        "max_rel": None if unusable else float(np.abs(a - b).max() / np.abs(b).max()),
        "rel_l2": None if unusable else float(np.linalg.norm(a - b) / np.linalg.norm(b)),
        "kxai_f64": None if unusable else float(np.abs(a - ref).max() / np.abs(ref).max()),
        "torch_f64": None if unusable else float(np.abs(b - ref).max() / np.abs(ref).max()),
        "kxai_all": k_times, "torch_all": t_times,
    }


def machine(out_dir, threads):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    info = open(os.path.join(out_dir, "info.txt")).read().splitlines()
    pick = {k: next((l.split(":", 1)[1].strip() for l in info if l.startswith(k + ":")), "?")
            for k in ("kxai", "java", "blas", "max heap")}
    kxai_version = next((l for l in info if l.startswith("kxai ")), "kxai ?")
    import torch
    torch.set_num_threads(threads)  # as torch_ig.py does, so that the setup below is the measured one
    return {"cpu": cpu, "cores": os.cpu_count(), "mem": f"{mem_kib / 2**20:.0f} GiB",
            "os": platform.platform(), "kxai": kxai_version, "java": pick["java"], "blas": pick["blas"],
            "heap": pick["max heap"], "torch": torch.__version__, "torch_config": torch.__config__.parallel_info()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workloads", nargs="+")
    p.add_argument("--out-dir", default="bench/out")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--invocation", default="bench/compare.sh")
    p.add_argument("--results", default="bench/RESULTS.md")
    a = p.parse_args()
    rows = [summarise(a.out_dir, w) for w in a.workloads]
    m = machine(a.out_dir, a.threads)

    head = ("| workload | batch | steps | kxai median s | torch median s | torch/kxai | peak_fraction "
            "| max rel diff | rel L2 diff | kxai vs f64 | torch vs f64 |")
    sep = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    lines = [head, sep]
    for r in rows:
        if r["unusable"]:
            print(f"report.py: {r['workload']}: no agreement figures: {r['unusable']}")
            lines.append(f"| {r['workload']} | {r['batch']} | {r['steps']} ({r['rule']}) | {r['kxai_s']:.3f} "
                         f"| {r['torch_s']:.3f} | {r['ratio']:.2f} | {r['peak_fraction']:.4f} "
                         f"| {r['unusable']} | n/a | n/a | n/a |")
            continue
        flag = "" if r["max_rel"] <= TOLERANCE else " (> 1e-4)"
        lines.append(f"| {r['workload']} | {r['batch']} | {r['steps']} ({r['rule']}) | {r['kxai_s']:.3f} "
                     f"| {r['torch_s']:.3f} | {r['ratio']:.2f} | {r['peak_fraction']:.4f} "
                     f"| {r['max_rel']:.2e}{flag} | {r['rel_l2']:.2e} | {r['kxai_f64']:.2e} | {r['torch_f64']:.2e} |")
    table = "\n".join(lines)
    print(table)

    cmds = open(os.path.join(a.out_dir, "commands.txt")).read().splitlines()
    parallel = "\n".join("    " + l for l in m["torch_config"].strip().splitlines())
    detail = "\n".join(
        f"* {r['workload']}: kxai runs {', '.join(f'{t:.3f}' for t in r['kxai_all'])} s; torch runs "
        f"{', '.join(f'{t:.3f}' for t in r['torch_all'])} s; kxai {r['gflop_per_s']:.2f} GFLOP/s of a "
        f"measured sgemm rate of {r['sgemm']:.1f} GFLOP/s" for r in rows)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Benchmark results

Generated by `{a.invocation.strip()}` on {now}; regenerate with `bench/compare.sh`
(see `bench/README.md` for what is measured and how to read it).

## Machine

* CPU: {m['cpu']}, {m['cores']} cores, {m['mem']} memory; {m['os']}
* {m['kxai']}; java {m['java']}; max heap {m['heap']}
* kxai BLAS: {m['blas']}
* PyTorch {m['torch']}; its parallel setup:

{parallel}

## Commands

{a.repeats} rounds per workload, alternating: one `kxai bench` process, then one `torch_ig.py`
process, each with 2 untimed warm-ups and 3 timed runs; each process reports its median, and the
table gives the median of those over the rounds. Threads: {a.threads}.

""" + "\n".join(f"    # {c.split(chr(9), 1)[0]}\n    {c.split(chr(9), 1)[1]}" for c in cmds) + f"""

## Results

{table}

* torch/kxai > 1 means kxai is faster. peak_fraction = kxai's GFLOP/s (2 x the Conv/Gemm/MatMul
  multiply-adds of the forward and input-gradient passes, see README) / the sgemm GFLOP/s measured
  in the same process.
* max rel diff = max|kxai - torch| / max|torch| over the attributions of the last round; the target
  is <= 1e-4. rel L2 diff = ||kxai - torch|| / ||torch||. kxai vs f64 and torch vs f64: the same
  max-relative measure of each float32 result against torch_ig.py run in float64 (untimed): where
  kxai and torch differ by more than 1e-4, these say which side carries the rounding error.
{detail}
"""
    # sections other scripts keep in this file survive a rewrite: every "<!-- NAME -->" ...
    # "<!-- /NAME -->" block (bench/startup.sh's "startup", bench/occlusion.sh's "occlusion"), in order
    try:
        with open(a.results) as f:
            previous = f.read()
        import re
        for m in re.finditer(r"<!-- ([A-Za-z0-9_-]+) -->.*?<!-- /\1 -->", previous, flags=re.S):
            text = text.rstrip("\n") + "\n\n" + m.group(0) + "\n"
    except FileNotFoundError:
        pass
    with open(a.results, "w") as f:
        f.write(text)
    print(f"wrote {a.results}")


if __name__ == "__main__":
    main()

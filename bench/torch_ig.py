#!/usr/bin/python3
"""Integrated Gradients in PyTorch autograd, computed the way Captum 0.8.0 does, for one workload.

  /usr/bin/python3 bench/torch_ig.py bench/workloads/NAME [--steps N] [--rule R] [--threads N]
        [--repeats R] [--warmup W] [--internal-batch-size ROWS] [--out FILE.npy]

Steps and rule default to the workload's workload.json. Alphas and weights are Captum's:
Gauss-Legendre from numpy.polynomial.legendre.leggauss mapped to [0, 1], Riemann alphas from
torch.linspace in float32 with weights 1/n (trapezoid halves the ends). The path is
cat([b + alpha * (x - b) for alpha in alphas]) (step-major, as Captum builds it), the gradient
of the gathered target outputs comes from torch.autograd.grad, weighted by the step sizes,
summed over steps and multiplied by (x - b). Zero baseline; targets = argmax of the logits,
computed once before the timed runs (kxai's default). No convergence delta (Captum's default).

Prints one line per timed repeat ("repeat 1: 0.123 s") and closes with
"torch: median_s=... attributions_per_s=... threads=N"; --out writes the last repeat's
attributions (float32) and FILE-with-_targets.npy the targets. --dtype float64 runs the same
computation in double precision (a reference, not a benchmark).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads_def import build  # noqa: E402


def alphas_and_step_sizes(rule, n):
    """Captum's approximation_parameters(method)(n): (step_sizes, alphas) as Python lists."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return list(0.5 * weights), list(0.5 * (1 + nodes))
    if rule not in ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"):
        raise SystemExit(f"torch_ig.py: unknown rule '{rule}'")
    if rule != "gausslegendre" and n < 2:
        raise SystemExit("torch_ig.py: Riemann rules need at least 2 steps")
    deltas = [1 / n] * n
    if rule == "riemann_trapezoid":
        deltas[0] /= 2
        deltas[-1] /= 2
        alphas = torch.linspace(0, 1, n).tolist()
    elif rule == "riemann_left":
        alphas = torch.linspace(0, 1 - 1 / n, n).tolist()
    elif rule == "riemann_middle":
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n).tolist()
    else:
        alphas = torch.linspace(1 / n, 1, n).tolist()
    return deltas, alphas


def path_gradients(model, x, baseline, alphas, targets):
    """Captum's compute_gradients over the scaled features of some alphas: [len(alphas)*batch, ...]."""
    scaled = torch.cat([baseline + alpha * (x - baseline) for alpha in alphas], dim=0).requires_grad_()
    expanded = targets.repeat(len(alphas))  # _expand_target(..., ExpansionTypes.repeat)
    with torch.autograd.set_grad_enabled(True):
        out = model(scaled)
        selected = torch.gather(out, 1, expanded.reshape(len(out), 1))
        (grad,) = torch.autograd.grad(torch.unbind(selected), scaled)
    return grad


def integrated_gradients(model, x, targets, step_sizes, alphas, internal_batch_size=None):
    baseline = torch.zeros_like(x)
    n = len(alphas)
    batch = x.shape[0]
    if internal_batch_size is None:
        grads = path_gradients(model, x, baseline, alphas, targets)
    else:  # Captum's _batch_attribution: chunks of internal_batch_size // batch steps
        per = max(internal_batch_size // batch, 1)
        grads = torch.cat([path_gradients(model, x, baseline, alphas[i:i + per], targets)
                           for i in range(0, n, per)], dim=0)
    scaled_grads = grads.contiguous().view(n, -1) * torch.tensor(step_sizes, dtype=x.dtype, device=x.device).view(n, 1)
    total = torch.sum(scaled_grads.reshape((n, batch) + tuple(x.shape[1:])), dim=0)
    return total * (x - baseline)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload", help="a folder made by make_workloads.py")
    p.add_argument("--steps", type=int)
    p.add_argument("--rule")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--internal-batch-size", type=int)
    p.add_argument("--out")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the GPU kit's comparison on the device machine)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="float64 runs the model in double precision: a reference for both engines' rounding")
    a = p.parse_args()
    with open(os.path.join(a.workload, "workload.json")) as f:
        meta = json.load(f)
    steps = a.steps or meta["steps"]
    rule = a.rule or meta["rule"]
    if a.repeats < 1 or a.warmup < 0 or a.threads < 1:
        raise SystemExit("torch_ig.py: --repeats >= 1, --warmup >= 0 and --threads >= 1 are needed")
    torch.set_num_threads(a.threads)

    model = build(meta["name"])
    model.load_state_dict(torch.load(os.path.join(a.workload, "weights.pt")))
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    model = model.to(dtype).to(a.device).eval()
    x = torch.from_numpy(np.load(os.path.join(a.workload, "input.npy"))).to(dtype).to(a.device)
    with torch.no_grad():
        targets = model(x).argmax(dim=1)
    step_sizes, alphas = alphas_and_step_sizes(rule, steps)
    print(f"torch_ig: {meta['name']} {list(x.shape)}, ig ({rule}, {steps} steps), torch {torch.__version__}, "
          f"{a.dtype}, threads {torch.get_num_threads()}, device {a.device}", flush=True)

    for _ in range(a.warmup):
        integrated_gradients(model, x, targets, step_sizes, alphas, a.internal_batch_size)
    times = []
    attr = None
    for i in range(a.repeats):
        if a.device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        attr = integrated_gradients(model, x, targets, step_sizes, alphas, a.internal_batch_size)
        if a.device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        print(f"repeat {i + 1}: {times[-1]:.3f} s", flush=True)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        np.save(a.out, attr.detach().cpu().numpy().astype(np.float32))
        np.save(a.out[:-4] + "_targets.npy" if a.out.endswith(".npy") else a.out + "_targets.npy",
                targets.cpu().numpy())
        print(f"wrote {a.out}")
    med = statistics.median(times)
    print(f"torch: median_s={med:.6f} attributions_per_s={x.shape[0] / med:.3f} threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()

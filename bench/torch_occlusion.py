#!/usr/bin/python3
"""Captum 0.8.0's Occlusion, re-implemented in plain torch and timed; and the workload's export.

  /usr/bin/python3 bench/torch_occlusion.py export DIR [--size 224]
  /usr/bin/python3 bench/torch_occlusion.py run DIR [--window 3,16,16] [--strides 3,8,8]
        [--perturbations-per-eval 1] [--threads N] [--repeats 1] [--warmup 0] [--out F.npy] [--dtype float64]

export: torchvision resnet18 with random weights (seed 0), eval mode, batch norms folded into the
convolutions first (torch.fx, as bench/zoo.py does, so the ONNX file and the torch module are the same
model), written to DIR/model.onnx (opset 13, dynamic batch, input 'input', output 'logits'), and a
fixed input DIR/input.npy (seed 1, uniform in [-1, 1), 1x3xSIZExSIZE).

run: the model is rebuilt the same way (same seed, same folding). Targets = argmax of the float32
logits, computed once before the timed runs (kxai's default). Then Captum's algorithm
(captum/attr/_core/occlusion.py over feature_ablation.py's FeatureAblation.attribute):

* shift_counts per axis = ceil((D - W) / stride) + 1; window j sits at index
  (j mod c0) * s0, ((j // c0) mod c1) * s1, ... (the first axis fastest), its mask the window of ones
  padded with F.pad(left = index, right = D - index - W), a negative right pad cropping the last
  window at the edge;
* one forward of the unperturbed input (initial_eval), then the windows in groups of
  perturbations_per_eval: the input repeated, each copy x * (1 - mask) + baseline * mask (baseline 0),
  one forward per group (perturbations_per_eval x batch rows), eval_diff = initial_eval - modified_eval;
* total_attrib += (eval_diff * mask).sum(0) in the output's dtype, weights += mask.float().sum(0),
  attributions = total_attrib.float() / weights (float32, as Captum returns; with --dtype float64
  the division is kept in float64: the rounding reference, not Captum's output type).

Every forward call goes through a counter. Prints "repeat i: T s" per timed run and closes with
"torch: median_s=... forward_calls=... rows_per_call=... threads=N import_s=... build_s=...".
"""
import argparse
import math
import os
import statistics
import sys
import time

t_import = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

IMPORT_S = time.perf_counter() - t_import


def build():
    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None).eval()
    from torch.fx.experimental.optimization import fuse
    return fuse(m).eval()


def export(folder, size):
    os.makedirs(folder, exist_ok=True)
    model = build()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    torch.onnx.export(model, (x,), os.path.join(folder, "model.onnx"), input_names=["input"], output_names=["logits"],
                      opset_version=13, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    np.save(os.path.join(folder, "input.npy"), x.numpy())
    with torch.no_grad():
        print("export: target", int(model(x).argmax(1)[0]), "written to", folder, flush=True)


class Counted:
    """The forward function, counting its calls and rows."""

    def __init__(self, model):
        self.model = model
        self.calls = 0
        self.rows = []

    def __call__(self, x):
        self.calls += 1
        self.rows.append(x.shape[0])
        return self.model(x)


def run_forward(forward, x, target):
    """captum._utils.common._run_forward with a tensor target: the targets' outputs, gathered."""
    out = forward(x)
    return torch.gather(out, 1, target.reshape(len(out), 1))


def occlusion_mask(expanded_shape, feature, window_tsr, strides, shift_counts):
    """Occlusion._occlusion_mask: the window of ones padded (or cropped) to the example's shape."""
    remaining = feature
    index = []
    for i, count in enumerate(shift_counts):
        index.append((remaining % count) * strides[i])
        remaining = remaining // count
    right = np.subtract(expanded_shape[2:], np.add(index, window_tsr.shape))
    pad = [v for pair in zip(right, index) for v in pair]
    pad.reverse()
    padded = F.pad(window_tsr, tuple(int(v) for v in pad))
    return padded.reshape((1,) + padded.shape)


def occlusion(forward, x, target, window, strides, ppe, baseline=0, keep_dtype=False):
    """Captum 0.8.0 Occlusion.attribute(x, target=target, sliding_window_shapes=window, strides=strides,
    baselines=baseline, perturbations_per_eval=ppe) for one input tensor."""
    n = x.shape[0]
    window_tsr = torch.ones(window, device=x.device)
    shift_counts = []
    for d, w, s in zip(x.shape[1:], window, strides):
        assert d - w >= 0 and (d - w == 0 or s <= w)
        shift_counts.append(int(np.ceil((d - w) / s)) + 1)
    with torch.no_grad():
        initial_eval = run_forward(forward, x, target).reshape(1, n)
        attrib_type = initial_eval.dtype
        total_attrib = torch.zeros_like(x, dtype=attrib_type)
        weights = torch.zeros_like(x).float()
        num_features = int(np.prod(shift_counts))
        ppe = min(ppe, num_features)
        repeated = torch.cat([x] * ppe, dim=0)
        target_repeated = target.repeat(ppe)  # _expand_target(..., ExpansionTypes.repeat)
        done = 0
        while done < num_features:
            k = min(ppe, num_features - done)
            current = repeated[0:k * n] if k != ppe else repeated
            current_target = target.repeat(k) if k != ppe else target_repeated
            reshaped = current.reshape((k, -1) + tuple(current.shape[1:]))
            mask = torch.stack([occlusion_mask(reshaped.shape, j, window_tsr, strides, shift_counts)
                                for j in range(done, done + k)], dim=0).long()
            ablated = reshaped * (torch.ones(1, dtype=torch.long) - mask).to(reshaped.dtype) \
                + baseline * mask.to(reshaped.dtype)
            modified_eval = run_forward(forward, ablated.reshape((-1,) + tuple(ablated.shape[2:])), current_target)
            eval_diff = (initial_eval - modified_eval.reshape(-1, n)).reshape((-1, n) + (x.dim() - 1) * (1,))
            weights += mask.float().sum(dim=0)
            total_attrib += (eval_diff * mask.to(attrib_type)).sum(dim=0)
            done += k
        if keep_dtype:
            return total_attrib / weights.to(attrib_type)
        return total_attrib.float() / weights


def ints(s):
    return tuple(int(v) for v in s.split(","))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "export":
        p = argparse.ArgumentParser(prog="torch_occlusion.py export")
        p.add_argument("dir")
        p.add_argument("--size", type=int, default=224)
        a = p.parse_args(sys.argv[2:])
        export(a.dir, a.size)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        del sys.argv[1]
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dir")
    p.add_argument("--window", type=ints, default=(3, 16, 16))
    p.add_argument("--strides", type=ints, default=(3, 8, 8))
    p.add_argument("--perturbations-per-eval", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = build()
    x = torch.from_numpy(np.load(os.path.join(a.dir, "input.npy")))
    with torch.no_grad():
        target = model(x).argmax(1)  # float32, once, untimed (also the oneDNN warm-up)
    dtype = getattr(torch, a.dtype)
    model = model.to(dtype)
    xd = x.to(dtype)
    build_s = time.perf_counter() - t0
    print(f"torch occlusion: {a.dir} {list(x.shape)} window {a.window} strides {a.strides} perturbations_per_eval "
          f"{a.perturbations_per_eval} {a.dtype}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"targets {target.tolist()}", flush=True)
    for _ in range(a.warmup):
        occlusion(Counted(model), xd, target, a.window, a.strides, a.perturbations_per_eval)
    times = []
    attr = None
    counted = None
    for i in range(a.repeats):
        counted = Counted(model)
        s = time.perf_counter()
        attr = occlusion(counted, xd, target, a.window, a.strides, a.perturbations_per_eval,
                         keep_dtype=a.dtype == "float64")
        times.append(time.perf_counter() - s)
        print(f"repeat {i + 1}: {times[-1]:.3f} s, {counted.calls} forward calls", flush=True)
    if a.out:
        np.save(a.out, attr.numpy() if a.dtype == "float64" else attr.numpy().astype(np.float32))
        np.save(a.out[:-4] + "_targets.npy", target.numpy())
    print(f"torch: median_s={statistics.median(times):.6f} forward_calls={counted.calls} "
          f"rows_per_call={max(counted.rows)} threads={torch.get_num_threads()} import_s={IMPORT_S:.3f} "
          f"build_s={build_s:.3f}", flush=True)


if __name__ == "__main__":
    main()

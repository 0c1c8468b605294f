#!/usr/bin/python3
"""Generates the benchmark workloads under bench/workloads/<name>/:

  model.onnx     torch.onnx.export, opset 13, dynamic batch axis, input 'input', output 'logits'
                 (eval mode with constant folding: resnet18's BatchNorm is folded into its convs)
  input.npy      the batch to explain, float32, seeded
  weights.pt     the PyTorch state dict, so that torch_ig.py runs the very same network
  workload.json  steps, rule, batch, shapes

Usage: /usr/bin/python3 bench/make_workloads.py [name ...] [--force]
Without names it makes every workload that is missing (all of them with --force).
Needs python3-torch, python3-torchvision and python3-onnx (Debian packages).
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads_def import ORDER, WORKLOADS, ZOO, build  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads")
FILES = ("model.onnx", "input.npy", "weights.pt", "workload.json")


def make(name):
    shape, batch, steps, rule, seed = WORKLOADS[name]
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    model = build(name)
    g = torch.Generator().manual_seed(seed + 1000)
    if name == "mlp_wide":
        x = torch.randn((batch,) + shape, generator=g)
    else:
        x = torch.rand((batch,) + shape, generator=g)  # images in [0, 1)
    torch.save(model.state_dict(), os.path.join(out, "weights.pt"))
    np.save(os.path.join(out, "input.npy"), x.numpy().astype(np.float32))
    torch.onnx.export(model, x[:1], os.path.join(out, "model.onnx"), opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    import onnx
    ops = sorted({n.op_type for n in onnx.load(os.path.join(out, "model.onnx")).graph.node})
    with torch.no_grad():
        logits = model(x)
    meta = {"name": name, "example_shape": list(shape), "batch": batch, "steps": steps, "rule": rule,
            "seed": seed, "classes": int(logits.shape[1]), "onnx_ops": ops,
            "torch": torch.__version__}
    with open(os.path.join(out, "workload.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{name}: batch {batch}, {steps} steps ({rule}), input {list(x.shape)}, ONNX ops {', '.join(ops)} -> {out}")


def main(argv):
    force = "--force" in argv
    names = [a for a in argv if not a.startswith("--")] or ORDER
    for n in names:
        if n not in WORKLOADS:
            sys.exit(f"make_workloads.py: unknown workload '{n}'; known: {', '.join(ORDER + ZOO)}")
        have = all(os.path.exists(os.path.join(ROOT, n, f)) for f in FILES)
        if have and not force:
            print(f"{n}: present (use --force to regenerate)")
            continue
        make(n)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Generates this folder (run from it with Debian's python3-torch and python3-onnx; not part of the
build): Captum 0.8.0's LRP and LayerLRP on the digits_cnn reference model, for several rule
assignments, so that kxai's LrpTest compares against them with no Python at test time.

Captum itself is not installable here, so its computation is written out below in plain torch,
following captum/attr/_core/lrp.py and captum/attr/_utils/lrp_rules.py (0.8.0) step by step:

  LRP.attribute
    1. _compute_output_and_change_weights: a forward pass of the unchanged model, every layer's
       input kept (PropagationRule.forward_hook_weights: module.activations = inputs), then the
       rule's _manipulate_weights (GammaRule: weight + gamma * weight.clamp(min=0);
       Alpha1_Beta0_Rule: weight.clamp(min=0); set_bias_to_zero: bias = 0). `output` is the
       target's logit of this unchanged pass.
    2. a second forward in which each ruled layer is fed its pass-1 input
       (forward_pre_hook_activations) and runs with its changed weights, with tensor hooks
       (PropagationRule.forward_hook):
         on the layer's output  _backward_hook_output: sign = sign(z); sign[sign == 0] = 1;
                                 grad / (z + sign * STABILITY_FACTOR)
         on the layer's input   _backward_hook_input: grad * input   (IdentityRule: the grad that
                                 arrived at the output, relevance_output, instead)
       and on ReLU / Dropout / Tanh modules backward_hook_activation, which returns grad_output:
       relevance passes through them unchanged. compute_gradients seeds 1 at the target.
    3. relevances = normalized_relevance * output (per row).
  LayerLRP: the same pass; a layer's relevance_output (the grad arriving at its output, before
  the division) or relevance_input, times output.
  SUPPORTED_LAYERS_WITH_RULES: EpsilonRule() (STABILITY_FACTOR 1e-9) for Conv2d, Linear, MaxPool2d,
  AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, Addition_Module; GammaRule and Alpha1_Beta0_Rule keep
  the class's STABILITY_FACTOR, 1e-9.

The model is digits_cnn (conv-relu-conv-relu-maxpool-flatten-linear), rebuilt from the ONNX weights.
Captum 0.8.0 refuses an nn.Flatten module (no rule, not in SUPPORTED_NON_LINEAR_LAYERS), so, as a
Captum user does, the flatten is torch.flatten in forward: autograd's reshape, which is what
kxai's Flatten does with relevance. For a sequential model the hooked backward above is exactly
the loop in `lrp` below, layer by layer from the top.
"""
import json

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

ref = "../reference/captum-0.8.0/digits_cnn/"
w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(ref + "model.onnx").graph.initializer}
x = torch.from_numpy(np.load(ref + "input.npy"))
targets = json.load(open(ref + "manifest.json"))["targets"]


class Conv:
    def __init__(self, name, wk, bk):
        self.name, self.weight, self.bias = name, w[wk].clone(), w[bk].clone()

    def __call__(self, a, weight=None, bias=None):
        return F.conv2d(a, self.weight if weight is None else weight, self.bias if bias is None else bias, padding=1)


class Linear(Conv):
    def __call__(self, a, weight=None, bias=None):
        return F.linear(a, self.weight if weight is None else weight, self.bias if bias is None else bias)


class MaxPool:
    name, weight, bias = "/4/MaxPool", None, None

    def __call__(self, a, weight=None, bias=None):
        return F.max_pool2d(a, 2, 2)


RELU, FLATTEN = "relu", "flatten"
# (layer, the ONNX value it outputs)
LAYERS = [(Conv("/0/Conv", "0.weight", "0.bias"), "/0/Conv_output_0"), (RELU, "/1/Relu_output_0"),
          (Conv("/2/Conv", "2.weight", "2.bias"), "/2/Conv_output_0"), (RELU, "/3/Relu_output_0"),
          (MaxPool(), "/4/MaxPool_output_0"), (FLATTEN, "/5/Flatten_output_0"),
          (Linear("/6/Gemm", "6.weight", "6.bias"), "logits")]


def epsilon(eps=1e-9):
    return ("epsilon", eps, None, False)


def gamma(g=0.25, zero_bias=False):
    return ("gamma", 1e-9, g, zero_bias)


def alpha1_beta0(zero_bias=False):
    return ("alpha1_beta0", 1e-9, None, zero_bias)


def changed(layer, rule):
    """_manipulate_weights of the rule (lrp_rules.py)."""
    kind, _, g, zero_bias = rule
    weight, bias = layer.weight, layer.bias
    if weight is not None:
        if kind == "gamma":
            weight = weight + g * weight.clamp(min=0)
        elif kind == "alpha1_beta0":
            weight = weight.clamp(min=0)
    if zero_bias and bias is not None and kind in ("gamma", "alpha1_beta0"):
        bias = torch.zeros_like(bias)
    return weight, bias


def lrp(rules, layer_values=()):
    """Relevance at the input and at the named ONNX values, and the convergence delta."""
    # pass 1: the unchanged model, every layer's input kept
    acts, a = [], x
    for layer, _ in LAYERS:
        acts.append(a)
        a = F.relu(a) if layer == RELU else torch.flatten(a, 1) if layer == FLATTEN else layer(a)
    rows = torch.arange(x.shape[0])
    output = a[rows, targets]
    # pass 2 and the hooked backward, from the top: the seed is 1 at the target
    grad = torch.zeros_like(a)
    grad[rows, targets] = 1.0
    at = {}
    for i in reversed(range(len(LAYERS))):
        layer, value = LAYERS[i]
        at[value] = grad  # the normalized relevance arriving at this value
        if layer == RELU:
            continue  # backward_hook_activation: grad_output unchanged
        if layer == FLATTEN:
            grad = grad.reshape(acts[i].shape)  # torch.flatten's autograd backward
            continue
        rule = rules.get(layer.name, epsilon())
        a_in = acts[i].detach().clone().requires_grad_(True)  # forward_pre_hook_activations
        weight, bias = changed(layer, rule)
        z = layer(a_in, weight, bias)
        sign = torch.sign(z.detach())  # _backward_hook_output
        sign[sign == 0] = 1
        g_out = grad / (z.detach() + sign * rule[1])
        (g_in,) = torch.autograd.grad(z, a_in, g_out)
        grad = g_in * a_in.detach() if rule[0] != "identity" else grad  # _backward_hook_input
    at["input"] = grad
    scale = output.detach()
    relevance = grad * scale.reshape(-1, 1, 1, 1)
    delta = output.detach().flatten() - relevance.reshape(x.shape[0], -1).sum(1)  # compute_convergence_delta
    layers = {v: at[v] * scale.reshape((-1,) + (1,) * (at[v].dim() - 1)) for v in layer_values}
    return relevance, delta, layers


CASES = [
    # id, kxai's --lrp-rule, Captum's rules by layer
    ("epsilon", "", {}),
    ("gamma", "Conv=gamma:0.25", {"/0/Conv": gamma(), "/2/Conv": gamma()}),
    ("alpha1_beta0", "Conv=alpha1_beta0,/6/Gemm=epsilon:0.01",
     {"/0/Conv": alpha1_beta0(), "/2/Conv": alpha1_beta0(), "/6/Gemm": epsilon(0.01)}),
    # by node name, by output value name and by op type; no zero_bias on the first conv, whose zero
    # background patches would then give z' = 0 (relevance / 1e-9) and near-cancelling z' where
    # float rounding decides the result
    ("mixed", "/0/Conv=epsilon:0.01,/2/Conv_output_0=alpha1_beta0:zero_bias,Gemm=gamma:0.25:zero_bias",
     {"/0/Conv": epsilon(0.01), "/2/Conv": alpha1_beta0(True), "/6/Gemm": gamma(0.25, True)}),
]
LAYER_VALUES = ["/0/Conv_output_0", "/2/Conv_output_0", "/4/MaxPool_output_0", "logits"]

manifest = {"model": ref + "model.onnx", "input": ref + "input.npy", "targets": targets, "cases": []}
for cid, spec, rules in CASES:
    rel, delta, layers = lrp(rules, LAYER_VALUES)
    np.save(f"digits_{cid}.npy", rel.detach().numpy().astype(np.float32))
    np.save(f"digits_{cid}_delta.npy", delta.detach().numpy().astype(np.float32))
    entry = {"id": cid, "lrp_rule": spec, "attributions": f"digits_{cid}.npy", "convergence_delta": f"digits_{cid}_delta.npy",
             "layers": {}}
    for v, r in layers.items():
        f = f"digits_{cid}_layer_{v.strip('/').replace('/', '_')}.npy"
        np.save(f, r.detach().numpy().astype(np.float32))
        entry["layers"][v] = f
    manifest["cases"].append(entry)
    print(cid, "sum relevance", rel.sum().item(), "max |delta|", delta.abs().max().item())
json.dump(manifest, open("manifest.json", "w"), indent=1)

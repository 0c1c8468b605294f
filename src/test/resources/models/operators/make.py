"""Generates this folder's cases (run from it with Debian's /usr/bin/python3, python3-torch 1.13 and
python3-onnx; not part of the build). Each case CASE/ holds model.onnx, input.npy, PyTorch's logits.npy,
targets.npy (each row's predicted class) and gradient.npy (the gradient of each row's predicted logit
with respect to the input, by autograd: saliency without abs).

Two kinds of case:
* exported: a torch.nn.Module exported by torch.onnx.export (a real exporter's output);
* built: the ONNX graph written node by node with onnx.helper around the operator under test (for
  operators or opsets PyTorch 1.13 does not export), and the same function written in PyTorch
  independently, which gives the expected numbers. Built graphs are x -> pre -> op -> Flatten ->
  MatMul -> Add -> logits, pre a MatMul (2-D input) or a 3x3 Conv (4-D input).
"""
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, x, fn):
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    xr = x.clone().requires_grad_(True)
    y = fn(xr)
    t = y.argmax(1)
    y.gather(1, t[:, None]).sum().backward()
    np.save(os.path.join(d, "input.npy"), x.numpy())
    np.save(os.path.join(d, "logits.npy"), y.detach().numpy())
    np.save(os.path.join(d, "targets.npy"), t.numpy().astype(np.int64))
    np.save(os.path.join(d, "gradient.npy"), xr.grad.numpy())
    return d


# ONLY=case1,case2 writes just those cases (the others are still constructed, so every random stream is
# the same as in a full run)
ONLY = set(filter(None, os.environ.get("ONLY", "").split(",")))


def exported(name, module, x, opset):
    if ONLY and name not in ONLY:
        return
    module = module.eval()
    d = save(name, x, module)
    torch.onnx.export(module, x, os.path.join(d, "model.onnx"), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def built(name, x, opset, core_nodes, core_inits, core_fn, hidden, classes=3):
    """x -> pre -> core (reads 'h', writes 'c') -> Flatten -> MatMul W2 -> Add b2."""
    if ONLY and name not in ONLY:
        return
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    image = x.dim() == 4
    if image:
        w1 = torch.randn(hidden, x.shape[1], 3, 3, generator=g) * 0.4
        pre = [helper.make_node("Conv", ["input", "W1"], ["h"], name="pre", pads=[1, 1, 1, 1])]
    else:
        w1 = torch.randn(x.shape[1], hidden, generator=g) * 0.6
        pre = [helper.make_node("MatMul", ["input", "W1"], ["h"], name="pre")]

    def pre_fn(v):
        return F.conv2d(v, w1, padding=1) if image else v @ w1

    with torch.no_grad():
        flat = core_fn(pre_fn(x[:1])).flatten(1).shape[1]
    w2 = torch.randn(flat, classes, generator=g) * (2.0 / flat ** 0.5)
    b2 = torch.randn(classes, generator=g) * 0.1
    nodes = pre + core_nodes + [
        helper.make_node("Flatten", ["c"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "W2"], ["z"], name="head"),
        helper.make_node("Add", ["z", "b2"], ["logits"], name="bias")]
    inits = [init("W1", w1.numpy()), init("W2", w2.numpy()), init("b2", b2.numpy())] + core_inits
    shape = ["batch"] + list(x.shape[1:])
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kxai make.py")
    model.ir_version = 8
    d = save(name, x, lambda v: core_fn(pre_fn(v)).flatten(1) @ w2 + b2)
    onnx.save(model, os.path.join(d, "model.onnx"))


def node(op, inputs, **attrs):
    return helper.make_node(op, inputs, ["c"], name="op", **attrs)


torch.manual_seed(0)
X2 = torch.randn(4, 6)
X4 = torch.randn(3, 2, 5, 5)


# ---- real exporter output -------------------------------------------------------------------------
class PReluNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.act = torch.nn.PReLU(4, init=0.2)
        self.lin = torch.nn.Linear(4 * 25, 8)
        self.act2 = torch.nn.PReLU(init=-0.3)
        self.out = torch.nn.Linear(8, 3)
        with torch.no_grad():
            self.act.weight.copy_(torch.tensor([0.1, -0.2, 0.3, 0.05]))

    def forward(self, x):
        return self.out(self.act2(self.lin(self.act(self.conv(x)).flatten(1))))


class NormNet(torch.nn.Module):
    """InstanceNorm2d (affine) and GroupNorm, which PyTorch 1.13 exports as Reshape + InstanceNormalization."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.inorm = torch.nn.InstanceNorm2d(4, affine=True)
        self.gnorm = torch.nn.GroupNorm(2, 4)
        self.out = torch.nn.Linear(4 * 25, 3)
        with torch.no_grad():
            self.inorm.weight.uniform_(0.5, 1.5)
            self.inorm.bias.uniform_(-0.5, 0.5)
            self.gnorm.weight.uniform_(0.5, 1.5)
            self.gnorm.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.out(self.gnorm(torch.tanh(self.inorm(self.conv(x)))).flatten(1))


class HeadNet(torch.nn.Module):
    """log_softmax over the last axis, CELU and adaptive max pooling to 1x1 (GlobalMaxPool)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 6, 3, padding=1)
        self.celu = torch.nn.CELU(0.7)
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, x):
        h = F.adaptive_max_pool2d(self.celu(self.conv(x)), 1).flatten(1)
        return F.log_softmax(self.lin(h), dim=1)


exported("prelu", PReluNet(), X4, 13)
exported("norms", NormNet(), X4, 13)
exported("head_opset13", HeadNet(), X4, 13)
exported("head_opset12", HeadNet(), X4, 12)

# ---- built around one operator ----------------------------------------------------------------------
# LogSoftmax before opset 13: the input [N, 3, 4] flattened to 2-D at axis 1
built("logsoftmax_flatten", X2, 11,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"), node("LogSoftmax", ["h3"], axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64))],
      lambda h: F.log_softmax(h.reshape(-1, 12), 1).reshape(-1, 3, 4), hidden=12)
built("logsoftmax_axis1", X2, 13,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"), node("LogSoftmax", ["h3"], axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64))],
      lambda h: F.log_softmax(h.reshape(-1, 3, 4), 1), hidden=12)
gamma_g = np.array([0.8, 1.3], np.float32)
beta_g = np.array([0.2, -0.4], np.float32)
built("groupnorm_opset18", X4, 18, [node("GroupNormalization", ["h", "gs", "gb"], num_groups=2, epsilon=1e-4)],
      [init("gs", gamma_g), init("gb", beta_g)],
      lambda h: F.group_norm(h, 2, torch.tensor(np.repeat(gamma_g, 2)), torch.tensor(np.repeat(beta_g, 2)), 1e-4),
      hidden=4)
gamma_c = np.array([0.8, 1.3, 0.6, 1.1], np.float32)
beta_c = np.array([0.2, -0.4, 0.1, 0.3], np.float32)
built("groupnorm_opset21", X4, 21, [node("GroupNormalization", ["h", "gs", "gb"], num_groups=2)],
      [init("gs", gamma_c), init("gb", beta_c)],
      lambda h: F.group_norm(h, 2, torch.tensor(gamma_c), torch.tensor(beta_c), 1e-5), hidden=4)
built("instancenorm_3d", X2, 13,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       node("InstanceNormalization", ["h3", "s", "b"], epsilon=1e-3)],
      [init("shape", np.array([0, 3, 4], np.int64)), init("s", np.array([1.2, 0.7, 0.9], np.float32)),
       init("b", np.array([0.1, 0.0, -0.2], np.float32))],
      lambda h: F.instance_norm(h.reshape(-1, 3, 4), weight=torch.tensor([1.2, 0.7, 0.9]),
                                bias=torch.tensor([0.1, 0.0, -0.2]), eps=1e-3), hidden=12)
built("globalmaxpool", X4, 13, [node("GlobalMaxPool", ["h"])], [], lambda h: F.adaptive_max_pool2d(h, 1), hidden=5)
built("sum_mean", X2, 13,
      [helper.make_node("Sum", ["h", "row", "col"], ["s3"], name="sum3"),
       helper.make_node("Reshape", ["h", "shape"], ["h2"], name="view"),
       helper.make_node("Mean", ["s3", "h2", "row"], ["c"], name="op")],
      [init("row", np.array([[0.5, -1.0, 0.25, 2.0, 0.0, 1.5]], np.float32)),
       init("col", np.array([[0.3]], np.float32)), init("shape", np.array([-1, 6], np.int64))],
      lambda h: ((h + torch.tensor([[0.5, -1.0, 0.25, 2.0, 0.0, 1.5]]) + 0.3) + h
                 + torch.tensor([[0.5, -1.0, 0.25, 2.0, 0.0, 1.5]])) / 3, hidden=6)
built("mish", X2, 18, [node("Mish", ["h"])], [], F.mish, hidden=7)
built("softsign", X2, 13, [node("Softsign", ["h"])], [], F.softsign, hidden=7)
built("celu", X2, 13, [node("Celu", ["h"], alpha=1.7)], [], lambda h: F.celu(h, 1.7), hidden=7)
built("thresholdedrelu", X2, 13, [node("ThresholdedRelu", ["h"], alpha=0.4)], [],
      lambda h: torch.where(h > 0.4, h, torch.zeros_like(h)), hidden=7)
built("prelu_slope_shapes", X4, 13, [node("PRelu", ["h", "slope"])],
      [init("slope", np.array([[[0.1, -0.2, 0.3, 0.05, 0.5]]], np.float32))],
      lambda h: torch.where(h > 0, h, h * torch.tensor([[[0.1, -0.2, 0.3, 0.05, 0.5]]])), hidden=3)


def reductions(opset):
    def axes_of(axes, nm):
        if opset < 18:
            return [], {"axes": axes}
        return [nm], {}

    nodes, inits, parts = [], [], []
    specs = [("ReduceL1", [2], 1, lambda v: v.abs().sum(2, keepdim=True)),
             ("ReduceL2", [-1], 0, lambda v: v.pow(2).sum(-1).sqrt()),
             ("ReduceSumSquare", [1, 2], 1, lambda v: v.pow(2).sum((1, 2), keepdim=True)),
             ("ReduceLogSum", [1], 1, lambda v: v.abs().add(0.1).sum(1, keepdim=True).log()),
             ("ReduceLogSumExp", [2], 0, lambda v: torch.logsumexp(v * 3, 2)),
             ("ReduceLogSumExp", [1], 1, lambda v: torch.logsumexp(v * 30, 1, keepdim=True))]
    nodes.append(helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"))
    inits.append(init("shape", np.array([0, 3, 4], np.int64)))
    for i, (op, axes, keep, fn) in enumerate(specs):
        src = "h3"
        if op == "ReduceLogSum":
            nodes.append(helper.make_node("Abs", ["h3"], ["abs%d" % i], name="abs%d" % i))
            nodes.append(helper.make_node("Add", ["abs%d" % i, "tenth"], ["pos%d" % i], name="pos%d" % i))
            inits.append(init("tenth", np.array(0.1, np.float32)))
            src = "pos%d" % i
        if op == "ReduceLogSumExp":
            k = "k%d" % i
            inits.append(init(k, np.array(3.0 if keep == 0 else 30.0, np.float32)))
            nodes.append(helper.make_node("Mul", ["h3", k], ["sharp%d" % i], name="sharp%d" % i))
            src = "sharp%d" % i
        extra, attrs = axes_of(axes, "axes%d" % i)
        if extra:
            inits.append(init(extra[0], np.array(axes, np.int64)))
        nodes.append(helper.make_node(op, [src] + extra, ["r%d" % i], name="r%d" % i, keepdims=keep, **attrs))
        nodes.append(helper.make_node("Flatten", ["r%d" % i], ["f%d" % i], name="f%d" % i, axis=1))
        parts.append(fn)
    nodes.append(helper.make_node("Concat", ["f%d" % i for i in range(len(specs))], ["c"], name="op", axis=1))
    return nodes, inits, lambda h: torch.cat([fn(h.reshape(-1, 3, 4)).flatten(1) for fn in parts], 1)


for opset in (13, 18):
    n_, i_, f_ = reductions(opset)
    built("reductions_opset%d" % opset, X2, opset, n_, i_, f_, hidden=12)

# comparisons and logic on masks computed per request, selecting between two branches
built("logic", X2, 13,
      [helper.make_node("GreaterOrEqual", ["h", "lo"], ["ge"], name="ge"),
       helper.make_node("LessOrEqual", ["h", "hi"], ["le"], name="le"),
       helper.make_node("And", ["ge", "le"], ["inside"], name="and"),
       helper.make_node("Less", ["h", "neg"], ["low"], name="low"),
       helper.make_node("Or", ["inside", "low"], ["either"], name="or"),
       helper.make_node("Greater", ["h", "zero"], ["pos"], name="pos"),
       helper.make_node("Xor", ["either", "pos"], ["sel"], name="xor"),
       helper.make_node("Mul", ["h", "tenth"], ["small"], name="small"),
       helper.make_node("Where", ["sel", "h", "small"], ["c"], name="op")],
      [init("lo", np.array(-0.2, np.float32)), init("hi", np.array(0.6, np.float32)),
       init("neg", np.array(-1.0, np.float32)), init("zero", np.array(0.0, np.float32)),
       init("tenth", np.array(0.1, np.float32))],
      lambda h: torch.where(((h >= -0.2) & (h <= 0.6) | (h < -1.0)) ^ (h > 0), h, h * 0.1), hidden=9)


# ---- spatial operators ------------------------------------------------------------------------------
class UpNet(torch.nn.Module):
    """ConvTranspose2d in two forms (stride 2 with output_padding; groups, uneven strides, dilation, no bias)."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1)
        self.up2 = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2,
                                            bias=False)
        self.out = torch.nn.Linear(6 * 21 * 11, 3)

    def forward(self, x):
        return self.out(self.up2(torch.tanh(self.up(x))).flatten(1))


class OneDNet(torch.nn.Module):
    """Conv1d, MaxPool1d, AvgPool1d and ConvTranspose1d on [N, C, L]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 4, 3, padding=1, stride=2)
        self.pool = torch.nn.MaxPool1d(2)
        self.avg = torch.nn.AvgPool1d(3, stride=1, padding=1)
        self.up = torch.nn.ConvTranspose1d(4, 2, 3, stride=2)
        self.out = torch.nn.Linear(2 * 9, 3)

    def forward(self, x):
        return self.out(self.up(self.avg(self.pool(torch.tanh(self.conv(x))))).flatten(1))


class ShuffleNet(torch.nn.Module):
    """PixelShuffle (DepthToSpace, CRD); PyTorch 1.13 exports LocalResponseNorm as a graph with an If, so LRN is
    built below."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 8, 3, padding=1)
        self.out = torch.nn.Linear(2 * 10 * 10, 3)

    def forward(self, x):
        return self.out(F.pixel_shuffle(torch.tanh(self.conv(x)), 2).flatten(1))


exported("convtranspose", UpNet(), X4, 13)
exported("oned", OneDNet(), torch.randn(3, 3, 16), 13)
exported("pixelshuffle", ShuffleNet(), X4, 13)


def depth_to_space(h, b, mode):
    n, c, hh, ww = h.shape
    if mode == "DCR":
        v = h.reshape(n, b, b, c // (b * b), hh, ww).permute(0, 3, 4, 1, 5, 2)
    else:
        v = h.reshape(n, c // (b * b), b, b, hh, ww).permute(0, 1, 4, 2, 5, 3)
    return v.reshape(n, c // (b * b), hh * b, ww * b)


def space_to_depth(h, b):
    n, c, hh, ww = h.shape
    return h.reshape(n, c, hh // b, b, ww // b, b).permute(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, hh // b, ww // b)


X4e = torch.randn(2, 2, 4, 6)
built("depth_space", X4e, 13,
      [helper.make_node("SpaceToDepth", ["h"], ["s2d"], name="s2d", blocksize=2),
       helper.make_node("DepthToSpace", ["s2d"], ["dcr"], name="dcr", blocksize=2, mode="DCR"),
       helper.make_node("Mul", ["dcr", "h"], ["mixed"], name="mix"),
       helper.make_node("SpaceToDepth", ["mixed"], ["s2d2"], name="s2d2", blocksize=2),
       helper.make_node("DepthToSpace", ["s2d2"], ["c"], name="op", blocksize=2, mode="CRD")], [],
      lambda h: depth_to_space(space_to_depth(depth_to_space(space_to_depth(h, 2), 2, "DCR") * h, 2), 2, "CRD"),
      hidden=4)
built("tile", X2, 13,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       helper.make_node("Tile", ["h3", "reps"], ["t"], name="tile"),
       helper.make_node("Mul", ["t", "w"], ["c"], name="op")],
      [init("shape", np.array([0, 2, 3], np.int64)), init("reps", np.array([1, 3, 2], np.int64)),
       init("w", np.linspace(-1, 1, 36, dtype=np.float32).reshape(6, 6))],
      lambda h: h.reshape(-1, 2, 3).repeat(1, 3, 2) * torch.tensor(np.linspace(-1, 1, 36, dtype=np.float32)
                                                                      .reshape(6, 6)), hidden=6)


def lrn_onnx(h, size, alpha, beta, bias):
    """ONNX's LRN: the sum of squares over channels c - floor((size-1)/2) .. c + ceil((size-1)/2)."""
    sq = h * h
    c = h.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sums = torch.stack([sq[:, max(0, i - lo):min(c, i + hi + 1)].sum(1) for i in range(c)], 1)
    return h / (bias + alpha / size * sums) ** beta


with torch.no_grad():
    probe = torch.randn(2, 6, 3, 3)
    assert torch.allclose(lrn_onnx(probe, 3, 0.3, 0.75, 1.5), F.local_response_norm(probe, 3, 0.3, 0.75, 1.5), atol=1e-6)
built("lrn", X4, 13,
      [helper.make_node("LRN", ["h"], ["l3"], name="lrn3", size=3, alpha=0.3, beta=0.75, bias=1.5),
       helper.make_node("LRN", ["l3"], ["c"], name="op", size=4, alpha=0.5, beta=0.6, bias=2.0)], [],
      lambda h: lrn_onnx(lrn_onnx(h, 3, 0.3, 0.75, 1.5), 4, 0.5, 0.6, 2.0), hidden=6)


def conv_transpose_cropped(h, w, stride, pads):
    """ConvTranspose with explicit begin/end pads (possibly uneven): the full result, cropped."""
    full = F.conv_transpose2d(h, w, stride=stride)
    return full[:, :, pads[0]:full.shape[2] - pads[2], pads[1]:full.shape[3] - pads[3]]


gw1 = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(7)) * 0.3
gw2 = torch.randn(3, 2, 2, 3, generator=torch.Generator().manual_seed(8)) * 0.3
# SAME_UPPER, stride 2 on 5x5: output 10x10, total padding 1 per axis, at the end
# output_shape [11, 12] from 10x10 with stride 1, kernel 2x3: full 11x12, no padding
built("convtranspose_autopad", X4, 13,
      [helper.make_node("ConvTranspose", ["h", "tw1"], ["up"], name="up", strides=[2, 2], auto_pad="SAME_UPPER"),
       helper.make_node("ConvTranspose", ["up", "tw2"], ["c"], name="op", output_shape=[11, 12])],
      [init("tw1", gw1.numpy()), init("tw2", gw2.numpy())],
      lambda h: conv_transpose_cropped(conv_transpose_cropped(h, gw1, 2, [0, 0, 1, 1]), gw2, 1, [0, 0, 0, 0]), hidden=4)


class EinsumNet(torch.nn.Module):
    """Attention written with einsum (PyTorch exports each as an Einsum node from opset 12)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(11)
        self.wq = torch.nn.Parameter(torch.randn(6, 8, generator=g) * 0.4)
        self.wk = torch.nn.Parameter(torch.randn(6, 8, generator=g) * 0.4)
        self.wv = torch.nn.Parameter(torch.randn(6, 8, generator=g) * 0.4)
        self.u = torch.nn.Parameter(torch.randn(4, 3, generator=g) * 0.4)
        self.out = torch.nn.Linear(4 * 8 + 4 + 4 * 3, 3)

    def forward(self, x):
        n = x.shape[0]
        q = torch.einsum("bnd,de->bne", x, self.wq).reshape(n, 4, 2, 4)
        k = torch.einsum("...d,de->...e", x, self.wk).reshape(n, 4, 2, 4)
        v = torch.einsum("bnd,de->bne", x, self.wv).reshape(n, 4, 2, 4)
        att = torch.einsum("bqhd,bkhd->bhqk", q, k).softmax(-1)
        ctx = torch.einsum("bhqk,bkhd->bqhd", att, v).reshape(n, 4, 8)
        dots = torch.einsum("bnd,bnd->bn", ctx, ctx)
        outer = torch.einsum("bn,nj->bnj", dots, self.u)
        return self.out(torch.cat([ctx.flatten(1), dots * 0.1, outer.flatten(1)], 1))


exported("einsum_attention", EinsumNet(), torch.randn(3, 4, 6), 12)


# ---- constants computed in the graph, folded at load ------------------------------------------------
def mk(op, ins, out, **attrs):
    return helper.make_node(op, ins, [out], name=out, **attrs)


pos = np.arange(3, dtype=np.float32)[:, None]
freq = np.power(np.float32(100.0), -(np.arange(4, dtype=np.float32) / 4)).astype(np.float32)
angle = pos * freq
pe_np = np.where(np.arange(4) % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)
causal = np.tril(np.ones((3, 4), np.float32))
cums = np.cumsum(np.arange(1, 5, dtype=np.float32))
scale_np = cums / np.prod(np.array([2.0, 5.0], np.float32))
votes = np.array([[0.1, 0.9, 0.3, 0.0], [2.0, -1.0, 0.5, 2.0], [0.0, 0.0, 0.0, 4.0]], np.float32)
onehot_np = np.eye(4, dtype=np.float32)[votes.argmax(1)]
scatter_np = np.zeros(4, np.float32)
scatter_np[np.nonzero(np.array([0, 1, 0, 2]))[0]] = [1.5, -0.5]
tile_np = np.tile(np.array([1.0, 2.0], np.float32), 2)
ge_np = ((np.arange(4) >= 1) & (np.arange(4) <= 2)).astype(np.float32)
extra_np = pe_np + onehot_np + scatter_np + tile_np * ge_np
built("folded_constants", X2, 14,
      [mk("Range", ["zero", "three", "one"], "pos"), mk("Unsqueeze", ["pos", "ax1"], "pos_col"),
       mk("Range", ["zero", "four", "one"], "dims"), mk("Div", ["dims", "four"], "frac"), mk("Neg", ["frac"], "nfrac"),
       mk("Pow", ["hundred", "nfrac"], "freq"), mk("Mul", ["pos_col", "freq"], "angle"),
       mk("Sin", ["angle"], "sin"), mk("Cos", ["angle"], "cos"),
       mk("Mod", ["dims", "two"], "parity"), mk("Equal", ["parity", "zero"], "even"),
       mk("Where", ["even", "sin", "cos"], "pe"),
       mk("Trilu", ["ones34"], "causal", upper=0),
       mk("Range", ["one", "five", "one"], "counts"), mk("CumSum", ["counts", "axis0"], "cums"),
       mk("ReduceProd", ["two_five"], "prod", keepdims=0), mk("Div", ["cums", "prod"], "scale"),
       mk("ArgMax", ["votes"], "winner", axis=1, keepdims=0),
       mk("OneHot", ["winner", "four", "offon"], "onehot"),
       mk("NonZero", ["picks"], "nz"), mk("Transpose", ["nz"], "nz_t"),
       mk("ScatterND", ["zeros4", "nz_t", "updates"], "scatter"),
       mk("Tile", ["pair", "two_i"], "tiled"),
       mk("GreaterOrEqual", ["dims", "one"], "ge1"), mk("LessOrEqual", ["dims", "two"], "le2"),
       mk("And", ["ge1", "le2"], "band"), mk("Cast", ["band"], "bandf", to=1), mk("Mul", ["tiled", "bandf"], "tband"),
       mk("Sum", ["pe", "onehot", "scatter", "tband"], "extra"),
       helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       mk("Mul", ["h3", "causal"], "masked"), mk("Mul", ["masked", "scale"], "scaled"),
       helper.make_node("Add", ["scaled", "extra"], ["c"], name="op")],
      [init("zero", np.array(0.0, np.float32)), init("one", np.array(1.0, np.float32)),
       init("two", np.array(2.0, np.float32)), init("three", np.array(3.0, np.float32)),
       init("four", np.array(4.0, np.float32)), init("five", np.array(5.0, np.float32)),
       init("hundred", np.array(100.0, np.float32)), init("ax1", np.array([1], np.int64)),
       init("ones34", np.ones((3, 4), np.float32)), init("axis0", np.array(0, np.int64)),
       init("two_five", np.array([2.0, 5.0], np.float32)), init("votes", votes),
       init("offon", np.array([0.0, 1.0], np.float32)), init("picks", np.array([0, 1, 0, 2], np.int64)),
       init("zeros4", np.zeros(4, np.float32)), init("updates", np.array([1.5, -0.5], np.float32)),
       init("pair", np.array([1.0, 2.0], np.float32)), init("two_i", np.array([2], np.int64)),
       init("shape", np.array([0, 3, 4], np.int64))],
      lambda h: h.reshape(-1, 3, 4) * torch.tensor(causal) * torch.tensor(scale_np) + torch.tensor(extra_np),
      hidden=12)


class BatchNorm15Net(torch.nn.Module):
    """BatchNorm1d on [N, C] and on [N, C, L], exported as opset 15's BatchNormalization."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 4, 3, padding=1)
        self.bn_seq = torch.nn.BatchNorm1d(4)
        self.lin = torch.nn.Linear(4 * 16, 5)
        self.bn_vec = torch.nn.BatchNorm1d(5)
        self.out = torch.nn.Linear(5, 3)
        with torch.no_grad():
            for bn in (self.bn_seq, self.bn_vec):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.3, 0.3)

    def forward(self, x):
        h = self.bn_seq(torch.tanh(self.conv(x)))
        return self.out(self.bn_vec(torch.tanh(self.lin(h.flatten(1)))))


exported("batchnorm_opset15", BatchNorm15Net(), torch.randn(3, 3, 16), 15)


# Fourier features of activations: Sin and Cos computed per request
built("fourier", X2, 13,
      [helper.make_node("Mul", ["h", "two_pi"], ["ang"], name="angle"),
       helper.make_node("Sin", ["ang"], ["s"], name="sin"), helper.make_node("Cos", ["ang"], ["co"], name="cos"),
       helper.make_node("Concat", ["s", "co"], ["c"], name="op", axis=1)],
      [init("two_pi", np.array(2.0, np.float32))],
      lambda h: torch.cat([torch.sin(h * 2.0), torch.cos(h * 2.0)], 1), hidden=5)


def cumsum_rev_excl(v, dim):
    return v.flip(dim).cumsum(dim).flip(dim) - v


built("cumsum_lpnorm", X2, 13,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       helper.make_node("CumSum", ["h3", "ax2"], ["cs"], name="cumsum"),
       helper.make_node("CumSum", ["cs", "ax1"], ["cs2"], name="cumsum_rev", exclusive=1, reverse=1),
       helper.make_node("LpNormalization", ["h3"], ["l2"], name="l2", axis=-1, p=2),
       helper.make_node("LpNormalization", ["h3"], ["l1"], name="l1", axis=1, p=1),
       helper.make_node("Concat", ["cs2", "l2", "l1"], ["c"], name="op", axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64)), init("ax2", np.array(2, np.int64)),
       init("ax1", np.array(-2, np.int64))],
      lambda h: torch.cat([cumsum_rev_excl(h.reshape(-1, 3, 4).cumsum(2), 1), F.normalize(h.reshape(-1, 3, 4), 2, -1, 0),
                           F.normalize(h.reshape(-1, 3, 4), 1, 1, 0)], 1), hidden=12)


class VolumeNet(torch.nn.Module):
    """Conv3d (padding, strides, dilation), MaxPool3d and AvgPool3d (padding not counted, ceil mode)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 3, (3, 3, 2), stride=(2, 1, 1), padding=(1, 1, 0), dilation=(1, 2, 1))
        self.conv2 = torch.nn.Conv3d(3, 4, 2, bias=False)
        self.out = torch.nn.Linear(4 * 2 * 2 * 1, 3)

    def forward(self, x):
        h = F.max_pool3d(torch.tanh(self.conv(x)), 2, stride=(1, 2, 2), padding=(1, 0, 1))
        h = F.avg_pool3d(h, (2, 3, 2), stride=(2, 1, 2), padding=(1, 1, 0), ceil_mode=True, count_include_pad=False)
        return self.out(self.conv2(torch.tanh(h)).flatten(1))


exported("volume", VolumeNet(), torch.randn(2, 2, 6, 9, 8), 13)


rms_scale = np.array([[1.1, 0.9, 1.3, 0.7], [1.0, 0.8, 1.2, 0.6], [0.5, 1.5, 1.0, 1.0]], np.float32)
built("rmsnorm_opset23", X2, 23,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       helper.make_node("RMSNormalization", ["h3", "g1"], ["r1"], name="rms_last", epsilon=1e-4),
       helper.make_node("RMSNormalization", ["r1", "g2"], ["c"], name="op", axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64)), init("g1", rms_scale[0]), init("g2", rms_scale)],
      lambda h: (lambda r1: r1 * torch.rsqrt(r1.pow(2).mean((1, 2), keepdim=True) + 1e-5) * torch.tensor(rms_scale))(
          (lambda v: v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + 1e-4) * torch.tensor(rms_scale[0]))(
              h.reshape(-1, 3, 4))), hidden=12)


class ShrinkNet(torch.nn.Module):
    """Hardshrink and Softshrink: PyTorch 1.13 writes them as Greater/Less/Cast/Or/Where (the ONNX Shrink
    node is built below)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(6, 8)
        self.b = torch.nn.Linear(8, 3)

    def forward(self, x):
        h = self.a(x)
        return self.b(F.hardshrink(h, 0.3) + F.softshrink(h, 0.2))


exported("shrink_exported", ShrinkNet(), X2, 13)
built("shrink", X2, 13,
      [helper.make_node("Shrink", ["h"], ["hard"], name="hard", lambd=0.3),
       helper.make_node("Shrink", ["h"], ["soft"], name="soft", lambd=0.2, bias=0.2),
       helper.make_node("Add", ["hard", "soft"], ["c"], name="op")], [],
      lambda h: F.hardshrink(h, 0.3) + F.softshrink(h, 0.2), hidden=8)
built("globallppool", X4, 13,
      [helper.make_node("GlobalLpPool", ["h"], ["p2"], name="lp2"),
       helper.make_node("Add", ["h", "shift"], ["hs"], name="shift"),  # |x| away from its kink for the differences
       helper.make_node("GlobalLpPool", ["hs"], ["p1"], name="lp1", p=1),
       helper.make_node("GlobalLpPool", ["hs"], ["p3"], name="lp3", p=3),
       helper.make_node("Concat", ["p2", "p1", "p3"], ["p"], name="cat", axis=1),
       helper.make_node("Mul", ["p", "small"], ["c"], name="op")],  # logits near 1: float noise in the differences
      [init("shift", np.array(4.0, np.float32)), init("small", np.array(0.05, np.float32))],
      lambda h: 0.05 * torch.cat([h.pow(2).sum((2, 3), keepdim=True).sqrt(), (h + 4).abs().sum((2, 3), keepdim=True),
                                  (h + 4).abs().pow(3).sum((2, 3), keepdim=True).pow(1 / 3)], 1), hidden=4)



# ---- indexing: GatherElements, GatherND, TopK, ArgMax/ArgMin, Hardmax per request ---------------------
class GatherTopkNet(torch.nn.Module):
    """As torch.onnx writes them: TopK (values; its indices into GatherElements), a gather with a constant
    index expanded to the batch (a repeated index), argmax ids into an embedding table."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(10)
        self.lin = torch.nn.Linear(6, 12)
        self.emb = torch.nn.Parameter(torch.randn(4, 3, generator=g))
        self.register_buffer("idx", torch.tensor([[[2, 0], [1, 1], [3, 2]]]))
        self.out = torch.nn.Linear(35, 3)

    def forward(self, x):
        h = self.lin(x).view(-1, 3, 4)
        v, i = torch.topk(h, 2, dim=2)
        small, _ = torch.topk(h, 2, dim=1, largest=False)
        g = torch.gather(torch.tanh(h), 2, i)
        c = torch.gather(h, 2, self.idx.expand(x.size(0), -1, -1))
        e = F.embedding(h.argmax(2), self.emb)
        return self.out(torch.cat([v.flatten(1), small.flatten(1), g.flatten(1), c.flatten(1),
                                   (e * h[:, :, :3]).flatten(1)], 1))


torch.manual_seed(10)
exported("gather_topk", GatherTopkNet(), torch.randn(4, 6), 13)

nd_table = np.random.default_rng(11).standard_normal((4, 5)).astype(np.float32)
nd_index = np.array([[[0, -1], [2, 1]]], np.int64)


def gather_nd_fn(h):
    h3 = h.reshape(-1, 3, 4)
    along = h3.gather(2, h3.argmax(2, keepdim=True)).squeeze(2)
    pairs = torch.stack([h3[:, 0, 3], h3[:, 2, 1]], 1)
    last_min = 3 - h3.flip(2).argmin(2)
    rows = torch.tensor(nd_table)[last_min]
    return torch.cat([along, pairs, rows.flatten(1)], 1)


built("gather_nd", X2, 13,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       helper.make_node("ArgMax", ["h3"], ["am"], name="argmax", axis=2, keepdims=1),
       helper.make_node("GatherND", ["h3", "am"], ["along"], name="along", batch_dims=2),
       mk("Shape", ["h3"], "shp"), mk("Slice", ["shp", "s0", "s1"], "bdim"),
       mk("Concat", ["bdim", "two_two"], "tshape", axis=0), mk("Expand", ["pairs_idx", "tshape"], "pairs_b"),
       helper.make_node("GatherND", ["h3", "pairs_b"], ["pairs"], name="pairs", batch_dims=1),
       helper.make_node("ArgMin", ["h3"], ["amin"], name="argmin", axis=2, keepdims=0, select_last_index=1),
       mk("Unsqueeze", ["amin", "ax2"], "amin3"),
       helper.make_node("GatherND", ["table", "amin3"], ["rows"], name="rows"),
       mk("Flatten", ["rows"], "rows_flat", axis=1),
       helper.make_node("Concat", ["along", "pairs", "rows_flat"], ["c"], name="op", axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64)), init("s0", np.array([0], np.int64)),
       init("s1", np.array([1], np.int64)), init("two_two", np.array([2, 2], np.int64)),
       init("pairs_idx", nd_index), init("ax2", np.array([2], np.int64)), init("table", nd_table)],
      gather_nd_fn, hidden=12)


def topk_hardmax_fn(h):
    h3 = h.reshape(-1, 3, 4)
    small = torch.topk(h3, 2, dim=1, largest=False).values
    hard = F.one_hot(h3.argmax(-1), 4).float() * h3
    return torch.cat([small.flatten(1), hard.flatten(1), h3.argmax(1).float()], 1)


built("topk_hardmax", X2, 13,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       helper.make_node("TopK", ["h3", "k"], ["small", "small_at"], name="topk", axis=1, largest=0),
       helper.make_node("Hardmax", ["h3"], ["hm"], name="hardmax"),
       mk("Mul", ["hm", "h3"], "hard"),
       helper.make_node("ArgMax", ["h3"], ["am"], name="argmax", axis=1, keepdims=0),
       mk("Cast", ["am"], "amf", to=1),
       mk("Flatten", ["small"], "small_flat", axis=1), mk("Flatten", ["hard"], "hard_flat", axis=1),
       helper.make_node("Concat", ["small_flat", "hard_flat", "amf"], ["c"], name="op", axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64)), init("k", np.array([2], np.int64))],
      topk_hardmax_fn, hidden=12)
built("hardmax_opset11", X2, 11,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       helper.make_node("Hardmax", ["h3"], ["hm"], name="hardmax", axis=1),
       helper.make_node("TopK", ["h3", "k"], ["top", "top_at"], name="topk"),
       mk("Cast", ["top_at"], "top_atf", to=1),
       mk("Mul", ["hm", "h3"], "hard"), mk("Flatten", ["hard"], "hard_flat", axis=1),
       mk("Flatten", ["top"], "top_flat", axis=1), mk("Flatten", ["top_atf"], "top_at_flat", axis=1),
       helper.make_node("Concat", ["hard_flat", "top_flat", "top_at_flat"], ["c"], name="op", axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64)), init("k", np.array([3], np.int64))],
      lambda h: (lambda h3: torch.cat([(F.one_hot(h3.flatten(1).argmax(1), 12).float().view(-1, 3, 4) * h3).flatten(1),
                                       torch.topk(h3, 3, dim=-1).values.flatten(1),
                                       torch.topk(h3, 3, dim=-1).indices.float().flatten(1)], 1))(h.reshape(-1, 3, 4)),
      hidden=12)

# ---- norms of all-zero slices: 0 with gradient 0 (torch.norm's masked backward), not NaN -------------
zero_row = np.ones((1, 3, 4), np.float32)
zero_row[:, 1, :] = 0


def zero_norm_fn(h):
    v = h.reshape(-1, 3, 4) * torch.tensor(zero_row)

    def lp(p):
        n = v.norm(p, dim=2, keepdim=True)
        z = n == 0
        return torch.where(z, torch.zeros_like(v), v / torch.where(z, torch.ones_like(n), n))

    return torch.cat([v.norm(dim=2), v.norm(dim=1), lp(2).flatten(1),
                      lp(1).flatten(1)], 1)


built("zero_norm", X2, 13,
      [helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"), mk("Mul", ["h3", "zero_row"], "v"),
       helper.make_node("ReduceL2", ["v"], ["l2"], name="l2", axes=[2], keepdims=0),
       helper.make_node("ReduceL2", ["v"], ["l2c"], name="l2c", axes=[1], keepdims=0),
       helper.make_node("LpNormalization", ["v"], ["n2"], name="n2", axis=2, p=2),
       helper.make_node("LpNormalization", ["v"], ["n1"], name="n1", axis=-1, p=1),
       mk("Flatten", ["n2"], "n2f", axis=1), mk("Flatten", ["n1"], "n1f", axis=1),
       helper.make_node("Concat", ["l2", "l2c", "n2f", "n1f"], ["c"], name="op", axis=1)],
      [init("shape", np.array([0, 3, 4], np.int64)), init("zero_row", zero_row)], zero_norm_fn, hidden=12)


class GroupedVolumeNet(torch.nn.Module):
    """Conv3d with groups (2, and depthwise)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(4, 6, (2, 3, 3), padding=(1, 1, 0), stride=(1, 2, 1), groups=2)
        self.depthwise = torch.nn.Conv3d(6, 6, 3, padding=1, groups=6, bias=False)
        self.out = torch.nn.Linear(6 * 5 * 2 * 3, 3)

    def forward(self, x):
        return self.out(self.depthwise(torch.tanh(self.conv(x))).flatten(1))


torch.manual_seed(12)
exported("volume_grouped", GroupedVolumeNet(), torch.randn(2, 4, 4, 4, 5), 13)


# ---- Mod per request: fmod on activations, Python's mod on integer ids ---------------------------------
def mod_fn(h):
    ids = h.reshape(-1, 3, 4).argmax(2)  # [B, 3] in 0..3
    return torch.cat([torch.fmod(h, 2.5), torch.fmod(-h, torch.tensor(-1.75)), torch.remainder(ids - 2, 3).float()], 1)


built("mod", X2, 13,
      [mk("Mod", ["h", "m1"], "r1", fmod=1), mk("Neg", ["h"], "nh"), mk("Mod", ["nh", "m2"], "r2", fmod=1),
       helper.make_node("Reshape", ["h", "shape"], ["h3"], name="view"),
       helper.make_node("ArgMax", ["h3"], ["ids"], name="argmax", axis=2, keepdims=0),
       mk("Sub", ["ids", "two"], "shifted"), mk("Mod", ["shifted", "three"], "r3"), mk("Cast", ["r3"], "r3f", to=1),
       helper.make_node("Concat", ["r1", "r2", "r3f"], ["c"], name="op", axis=1)],
      [init("m1", np.array(2.5, np.float32)), init("m2", np.array(-1.75, np.float32)),
       init("shape", np.array([0, 3, 4], np.int64)), init("two", np.array(2, np.int64)),
       init("three", np.array(3, np.int64))], mod_fn, hidden=12)

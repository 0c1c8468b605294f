#!/usr/bin/python3
"""Exports the model zoo a new user brings, with PyTorch's reference attributions, as reference folders.

  /usr/bin/python3 bench/zoo.py OUT_DIR [--models a,b,...] [--size 224] [--batch 2] [--steps 8] [--opset 13]

For each model (torchvision architectures with random weights from a fixed seed, a small text
transformer classifier over token ids + attention mask, an LSTM classifier, and a 2-layer BERT as
Hugging Face writes it: int64 ids, attention mask and token types, opset 17) it writes
OUT_DIR/NAME/ in the layout of the reference FORMAT.md, so that `kxai validate OUT_DIR` checks kxai
against it: model.onnx (opset 13 unless --opset, dynamic batch), the input(s), logits.npy, and for Saliency,
InputXGradient and Integrated Gradients (gausslegendre, --steps) the attributions computed the way
Captum 0.8.0 computes them (bench/torch_ig.py's path: float32 quadrature weights, step-major path,
autograd), in float32 and in float64 (`attributions_f64`, the arbiter where float32 near-ties make
two correct engines differ). Token models are explained with layer IG at the embedding's output
(Captum's LayerIntegratedGradients: the embedding output replaced by the path through a hook).
Captum itself is not installed (no PyPI here); its computations are replicated. Prints one line per
model with PyTorch's time for the float32 IG.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ig import alphas_and_step_sizes  # noqa: E402

VISION = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "vgg11_bn", "alexnet",
          "squeezenet1_1", "densenet121", "shufflenet_v2_x0_5", "googlenet", "regnet_y_400mf", "convnext_tiny",
          "vit_b_16"]
TOKENS = ["text_transformer", "lstm_classifier", "bert_tiny", "gpt_classifier"]
VOCAB, SEQ = 100, 16


class TextTransformer(nn.Module):
    """Embedding → 2-layer post-LN TransformerEncoder (key padding mask from the mask) → masked mean → Linear."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(32, 3)

    def forward(self, ids, mask):
        h = self.embedding(ids)
        key_mask = (1.0 - mask)[:, None, None, :] * -1e9
        key_mask = key_mask.expand(-1, 4, SEQ, -1).reshape(-1, SEQ, SEQ)
        for layer in self.encoder.layers:
            h = layer(h, src_mask=key_mask)
        w = mask.unsqueeze(-1)
        return self.fc((h * w).sum(1) / w.sum(1))


class BertLayer(nn.Module):
    """A Hugging Face BertLayer's computation: post-LN self-attention (4 heads) and a GELU feed-forward."""

    def __init__(self, d=32, heads=4):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
        self.ff1, self.ff2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, h, ext):
        def split(t):  # transpose_for_scores: view by the runtime batch and sequence, then permute
            return t.view(t.size()[:-1] + (self.heads, self.dh)).permute(0, 2, 1, 3)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (self.dh ** 0.5) + ext
        ctx = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        ctx = ctx.view(ctx.size()[:-2] + (self.heads * self.dh,))
        h = self.ln1(h + self.o(ctx))
        return self.ln2(h + self.ff2(nn.functional.gelu(self.ff1(h))))


class BertTiny(nn.Module):
    """A 2-layer BERT as transformers writes it and Optimum exports it: int64 input_ids, attention_mask and
    token_type_ids; word + position (a sliced position_ids buffer) + token-type embeddings, LayerNorm; the
    extended mask (1 - mask) * finfo.min; the pooler (tanh of the first token) and a classifier."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32, padding_idx=0)
        self.position = nn.Embedding(SEQ, 32)
        self.token_type = nn.Embedding(2, 32)
        self.register_buffer("position_ids", torch.arange(SEQ).expand((1, -1)))
        self.ln = nn.LayerNorm(32, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer() for _ in range(2)])
        self.pooler = nn.Linear(32, 32)
        self.fc = nn.Linear(32, 3)

    def forward(self, ids, mask, types):
        pos = self.position_ids[:, :ids.size(1)]
        h = self.ln(self.embedding(ids) + self.token_type(types) + self.position(pos))
        dtype = h.dtype
        ext = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        for layer in self.layers:
            h = layer(h, ext)
        return self.fc(torch.tanh(self.pooler(h[:, 0])))


class LstmClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 24)
        self.lstm = nn.LSTM(24, 32, batch_first=True)
        self.fc = nn.Linear(32, 3)

    def forward(self, ids, mask):
        out, _ = self.lstm(self.embedding(ids))
        w = mask.unsqueeze(-1)
        return self.fc((out * w).sum(1) / w.sum(1))


class GptClassifier(nn.Module):
    """A Hugging Face GPT-2 sequence classifier's computation, exported as Optimum does (batch and sequence
    length free): token + position embeddings, a pre-LN causal self-attention block (4 heads) and GELU MLP,
    a score head at every position, and each row's last real token picked with
    logits[torch.arange(batch_size), sequence_lengths] (sequence_lengths from the first pad id, as
    GPT2ForSequenceClassification computes it)."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32)
        self.position = nn.Embedding(SEQ, 32)
        self.register_buffer("causal", torch.tril(torch.ones(SEQ, SEQ, dtype=torch.bool)).view(1, 1, SEQ, SEQ))
        self.ln1, self.ln2, self.lnf = nn.LayerNorm(32), nn.LayerNorm(32), nn.LayerNorm(32)
        self.qkv, self.proj = nn.Linear(32, 96), nn.Linear(32, 32)
        self.fc1, self.fc2 = nn.Linear(32, 64), nn.Linear(64, 32)
        self.score = nn.Linear(32, 3, bias=False)

    def forward(self, ids, mask):
        b, t = ids.shape
        pos = torch.arange(0, t, dtype=torch.long, device=ids.device).unsqueeze(0)
        h = self.embedding(ids) + self.position(pos)
        q, k, v = self.qkv(self.ln1(h)).split(32, dim=2)
        q, k, v = (z.view(b, t, 4, 8).transpose(1, 2) for z in (q, k, v))
        w = torch.matmul(q, k.transpose(-1, -2)) / 8 ** 0.5
        low = torch.finfo(w.dtype).min
        w = torch.where(self.causal[:, :, :t, :t], w, torch.tensor(low, dtype=w.dtype))
        w = (w + (1.0 - mask[:, None, None, :].to(w.dtype)) * low).softmax(-1)
        h = h + self.proj(torch.matmul(w, v).transpose(1, 2).reshape(b, t, 32))
        h = h + self.fc2(nn.functional.gelu(self.fc1(self.ln2(h))))
        logits = self.score(self.lnf(h))
        lengths = (torch.eq(ids, 0).int().argmax(-1) - 1) % ids.shape[-1]
        return logits[torch.arange(b, device=ids.device), lengths]


def build(name):
    """The model with random weights (seed 0), in eval mode; batch norms after convolutions folded in.

    torch.onnx.export folds such batch norms into the convolution's weights in float32, which makes
    the ONNX file a slightly different model (at 1e-7) than the PyTorch one; in deep ReLU networks
    that moves a few decisions and the attributions by up to 2e-3 relative (resnet18), in float64
    as much as in float32. Folding first (torch.fx, where the model traces) makes the references
    and the ONNX file the same model, so the comparison measures the engine, not the exporter.
    """
    torch.manual_seed(0)
    if name == "text_transformer":
        return TextTransformer().eval()
    if name == "lstm_classifier":
        return LstmClassifier().eval()
    if name == "bert_tiny":
        return BertTiny().eval()
    if name == "gpt_classifier":
        return GptClassifier().eval()
    from workloads_def import no_zero_heads  # the benchmark workloads' rule, one copy
    m = no_zero_heads(getattr(torchvision.models, name)(weights=None)).eval()
    try:
        from torch.fx.experimental.optimization import fuse
        return fuse(m)
    except Exception as e:  # noqa: BLE001 (not traceable: keep the model, the manifest says so)
        print(f"zoo: {name}: batch norms not folded before export ({type(e).__name__})", flush=True)
        return m


def ig_gradients(forward, inputs, baselines, targets, step_sizes, alphas):
    """Σ_k w_k ∇F_t(b + α_k (x − b)) for a tuple of path values, Captum's order (step-major rows)."""
    n = len(alphas)
    scaled = [torch.cat([b + a * (x - b) for a in alphas], dim=0).requires_grad_() for x, b in zip(inputs, baselines)]
    out = forward(*scaled)
    selected = torch.gather(out, 1, targets.repeat(n).reshape(-1, 1))
    grads = torch.autograd.grad(torch.unbind(selected), scaled)
    w = torch.tensor(step_sizes).float().to(inputs[0].dtype)  # Captum rounds the weights to float32
    return [(g.reshape((n,) + tuple(x.shape)) * w.view((n,) + (1,) * x.dim())).sum(0) for g, x in zip(grads, inputs)]


def attributions(name, model, dtype, x, mask, targets, steps):
    """{case id: numpy attributions} computed in dtype (token models: mask is the tuple of extra inputs)."""
    m = model.to(dtype).eval()
    step_sizes, alphas = alphas_and_step_sizes("gausslegendre", steps)
    out = {}
    if name in TOKENS:
        emb = m.embedding
        extras = [e.to(dtype) if e.is_floating_point() else e for e in mask]
        with torch.no_grad():
            lx = emb(x)
            lb = emb(torch.zeros_like(x))
        holder = {}
        hook = emb.register_forward_hook(lambda mod, inp, o: holder["v"])

        def forward(layer_value):
            holder["v"] = layer_value
            rows = layer_value.shape[0] // x.shape[0]
            return m(x.repeat(rows, 1), *[e.repeat(rows, 1) for e in extras])
        try:
            (g,) = ig_gradients(forward, [lx.to(dtype)], [lb.to(dtype)], targets, step_sizes, alphas)
        finally:
            hook.remove()
        out["layer_ig_embedding_gausslegendre_%d" % steps] = ((lx - lb) * g).detach().numpy()
        return out
    xd = x.to(dtype)
    xg = xd.clone().requires_grad_()
    y = m(xg)
    (g,) = torch.autograd.grad(torch.unbind(torch.gather(y, 1, targets.reshape(-1, 1))), xg)
    out["saliency_abs"] = g.abs().detach().numpy()
    out["input_x_gradient"] = (xd * g).detach().numpy()
    (gs,) = ig_gradients(lambda v: m(v), [xd], [torch.zeros_like(xd)], targets, step_sizes, alphas)
    out["ig_gausslegendre_%d" % steps] = (xd * gs).detach().numpy()
    return out


def export(name, model, folder, size, batch, opset=13):
    g = torch.Generator().manual_seed(1)
    model.eval()
    if name in TOKENS:
        ids = torch.randint(1, VOCAB, (batch, SEQ), generator=g)
        mask = torch.ones(batch, SEQ)
        mask[1:, SEQ - 5:] = 0  # padding at the end of the second row on
        ids[mask == 0] = 0
        extras = (mask,)
        if name == "bert_tiny":  # int64 mask and token types, opset 17 (LayerNormalization), as Optimum exports
            types = torch.zeros(batch, SEQ, dtype=torch.int64)
            types[:, SEQ // 2:] = 1  # a sentence pair
            extras = (mask.to(torch.int64), types)
            opset = max(opset, 17)
        names = ["add_%d" % i for i in range(len(extras))]
        axes = {n: {0: "batch"} for n in ["input_0", "logits"] + names}
        if name == "gpt_classifier":  # Optimum's export: the sequence length free too (kxai fixes it from the inputs)
            axes.update({n: {0: "batch", 1: "sequence"} for n in ["input_0"] + names})
        torch.onnx.export(model, (ids,) + extras, os.path.join(folder, "model.onnx"), input_names=["input_0"] + names,
                          output_names=["logits"], opset_version=opset, dynamic_axes=axes)
        np.save(os.path.join(folder, "input_0.npy"), ids.numpy().astype(np.int64))
        for n, e in zip(names, extras):
            np.save(os.path.join(folder, n + ".npy"), e.numpy())
        return ids, extras
    x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    torch.onnx.export(model, (x,), os.path.join(folder, "model.onnx"), input_names=["input"], output_names=["logits"],
                      opset_version=opset, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    np.save(os.path.join(folder, "input.npy"), x.numpy())
    return x, None


def embedding_output(folder):
    """The ONNX name of the embedding's output: the Gather that reads input_0."""
    import onnx
    for n in onnx.load(os.path.join(folder, "model.onnx")).graph.node:
        if n.op_type == "Gather" and "input_0" in n.input:
            return n.output[0]
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--models", default=",".join(VISION + TOKENS))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--opset", type=int, default=13, help="ONNX opset of the export (torch 1.13: 7 to 17; bert_tiny: >= 17)")
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count())
    for name in a.models.split(","):
        folder = os.path.join(a.out, name)
        os.makedirs(folder, exist_ok=True)
        model = build(name)
        try:
            x, mask = export(name, model, folder, a.size, a.batch, a.opset)
        except Exception as e:  # noqa: BLE001 (the exporter refuses some models at some sizes: say so, go on)
            print(f"zoo: {name:22s} NOT exported at size {a.size}: {str(e).splitlines()[0][:160]}", flush=True)
            continue
        with torch.no_grad():
            logits = model(x, *mask) if name in TOKENS else model(x)
        targets = logits.argmax(1)
        np.save(os.path.join(folder, "logits.npy"), logits.numpy())
        t0 = time.perf_counter()
        f32 = attributions(name, model, torch.float32, x, mask, targets, a.steps)
        seconds = time.perf_counter() - t0
        f64 = attributions(name, build(name), torch.float64, x, mask, targets, a.steps)
        cases = []
        for cid, v in f32.items():
            np.save(os.path.join(folder, cid + ".npy"), v.astype(np.float32))
            np.save(os.path.join(folder, cid + "_f64.npy"), f64[cid])
            diff = v.astype(np.float64) - f64[cid]
            method = ("layer_integrated_gradients" if cid.startswith("layer_ig") else "integrated_gradients"
                      if cid.startswith("ig_") else "saliency" if cid.startswith("saliency") else "input_x_gradient")
            params = {"abs": True} if method == "saliency" else {}
            if "ig" in cid:
                params.update({"n_steps": a.steps, "method": "gausslegendre"})
            if method == "layer_integrated_gradients":
                params.update({"layer": embedding_output(folder), "baselines": ["zeros"]})
            cases.append({"id": cid, "method": method, "params": params, "target": targets.tolist(),
                          "attributions": cid + ".npy", "attributions_f64": cid + "_f64.npy",
                          "f32_vs_f64": {"rel_l2": float(np.linalg.norm(diff) / max(np.linalg.norm(f64[cid]), 1e-300)),
                                         "max_abs": float(np.abs(diff).max())}})
        manifest = {"name": name, "model": "model.onnx", "targets": targets.tolist(), "outputs": {"logits": "logits.npy"},
                    "cases": cases, "generator": "bench/zoo.py", "torch": torch.__version__,
                    "bn_folded_before_export": type(model).__name__ == "GraphModule",
                    "torch_f32_seconds_all_cases": round(seconds, 3)}
        if name in TOKENS:
            manifest["inputs"] = [
                {"name": "input_0", "file": "input_0.npy", "shape": list(x.shape), "dtype": "int64", "attributed": False}
            ] + [{"name": "add_%d" % i, "file": "add_%d.npy" % i, "shape": list(e.shape),
                  "dtype": "float32" if e.is_floating_point() else "int64", "attributed": False}
                 for i, e in enumerate(mask)]
            manifest["input"] = "input_0.npy"
        else:
            manifest["input"] = "input.npy"
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        print(f"zoo: {name:22s} exported; torch float32 {', '.join(f32)}: {seconds:.2f} s", flush=True)


if __name__ == "__main__":
    main()

"""Generates this folder (run from it with Debian's python3-torch and python3-onnx; not part of the build):
a small MLP with LayerNorm as opset 13 decomposes it (ReduceMean, Sub, Pow, Sqrt, Div), exact GELU
(Erf) and a Div/Sqrt/Abs squash, its input, PyTorch's logits, and the gradient of each row's
predicted logit (saliency without abs) computed by autograd."""
import numpy as np
import torch

torch.manual_seed(0)


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 16)
        self.ln = torch.nn.LayerNorm(16)
        self.g = torch.nn.GELU()
        self.b = torch.nn.Linear(16, 3)

    def forward(self, x):
        h = self.g(self.ln(self.a(x)))
        return self.b(h / (1.0 + h.abs()).sqrt())


m = M().eval()
x = torch.randn(5, 8)
torch.onnx.export(m, x, "model.onnx", input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
xr = x.clone().requires_grad_(True)
y = m(xr)
t = y.argmax(1)
y.gather(1, t[:, None]).sum().backward()
np.save("input.npy", x.numpy())
np.save("logits.npy", y.detach().numpy())
np.save("targets.npy", t.numpy().astype(np.int64))
np.save("gradient.npy", xr.grad.numpy())

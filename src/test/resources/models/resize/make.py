"""Generates this folder (run from it with Debian's python3-torch and python3-onnx; not part of the build):
a small decoder as segmentation and detection heads write them: F.interpolate nearest x2
(scale_factor: Resize with scales, asymmetric/floor), bilinear x2 with align_corners=False
(pytorch_half_pixel), bilinear to a size (Resize with sizes from Shape of the batch: a
batch-dependent target) and bilinear with align_corners=True, between convolutions; its input,
PyTorch's logits, and the gradient of each row's predicted logit computed by autograd."""
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.b = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.fc = torch.nn.Linear(3 * 11 * 9, 4)

    def forward(self, x):
        h = F.interpolate(self.a(x), scale_factor=2, mode="nearest")              # 5x4 -> 10x8
        h = F.interpolate(torch.tanh(h), scale_factor=0.5, mode="bilinear", align_corners=False)  # -> 5x4
        h = F.interpolate(self.b(h), size=(7, 6), mode="bilinear", align_corners=False)
        h = F.interpolate(torch.tanh(h), size=(11, 9), mode="bilinear", align_corners=True)
        return self.fc(h.flatten(1))


m = M().eval()
x = torch.randn(3, 2, 5, 4)
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

"""Generates this folder (run from it with Debian's python3-torch and python3-onnx; not part of the build):
a sequence classifier over float features [batch, 7, 5]: a bidirectional LSTM (batch_first, as
PyTorch exports it: Transpose, LSTM with zero initial states from ConstantOfShape of the batch,
Transpose back), then a GRU (linear_before_reset, PyTorch's form) over its outputs, the last
step's state through a Linear to 3 classes; its input, PyTorch's logits, and the gradient of each
row's predicted logit computed by autograd."""
import numpy as np
import torch

torch.manual_seed(0)


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(5, 6, batch_first=True, bidirectional=True)
        self.gru = torch.nn.GRU(12, 4, batch_first=True)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        h, _ = self.lstm(x)
        g, _ = self.gru(h)
        return self.fc(g[:, -1])


m = M().eval()
x = torch.randn(4, 7, 5)
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

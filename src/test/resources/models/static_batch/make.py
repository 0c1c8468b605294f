"""Models exported with a fixed batch (torch.onnx.export without dynamic_axes), for StaticBatchTest.

  /usr/bin/python3 make.py   (torch 1.13, onnx; writes the .onnx files beside this script)

view_b1: conv, ReLU, x.view(x.size(0), -1), linear; traced at batch 1 (Reshape to [1, -1]).
tokens_b1, tokens_b2: a class token expanded to the batch and concatenated, torch.zeros(B, ...) added,
  reshapes and a permute over the batch; traced at batch 1 and 2 (constants [N, ...]).
rows_b2: x + torch.arange(B).view(B, 1): a constant whose rows differ (kxai refuses it, naming the fix).
"""
import os

import torch

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)


class View(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).view(x.size(0), -1))


class Tokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 8))
        self.proj = torch.nn.Linear(12, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):  # [B, 4, 12]
        b = x.shape[0]
        t = torch.cat([self.cls.expand(b, -1, -1), self.proj(x)], dim=1)  # [B, 5, 8]
        t = t + torch.zeros(b, 5, 8)
        t = t.reshape(b, 5, 2, 4).permute(0, 2, 1, 3).reshape(b, 2, 20)
        return self.head(torch.tanh(t.reshape(b, -1)[:, :8]))


class Rows(torch.nn.Module):
    def forward(self, x):  # [B, 4]
        return x + torch.arange(x.shape[0], dtype=x.dtype).view(-1, 1)


def export(model, x, name):
    torch.onnx.export(model.eval(), (x,), os.path.join(here, name + ".onnx"), input_names=["input"],
                      output_names=["output"], opset_version=13)


export(View(), torch.rand(1, 3, 6, 6), "view_b1")
tokens = Tokens()
export(tokens, torch.rand(1, 4, 12), "tokens_b1")
export(tokens, torch.rand(2, 4, 12), "tokens_b2")
export(Rows(), torch.rand(2, 4), "rows_b2")

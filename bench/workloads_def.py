"""The benchmark workloads: architecture, input shape, batch, steps and seeds.

Shared by make_workloads.py (which exports them) and torch_ig.py (which rebuilds the PyTorch
module and loads the exported weights), so that both sides run the same network.
"""
import torch
import torch.nn as nn

WORKLOADS = {
    # name: (example shape, batch, n_steps, rule, seed)
    "mlp_wide": ((64,), 128, 50, "gausslegendre", 11),
    "tinyvgg_course": ((3, 64, 64), 16, 50, "gausslegendre", 12),
    "resnet18": ((3, 224, 224), 1, 16, "gausslegendre", 13),
    # the models users bring (torchvision's zoo, random weights): `bench/compare.sh resnet50 ...`
    "resnet50": ((3, 224, 224), 1, 8, "gausslegendre", 14),
    "mobilenet_v2": ((3, 224, 224), 1, 8, "gausslegendre", 15),
    "efficientnet_b0": ((3, 224, 224), 1, 8, "gausslegendre", 16),
    "vgg11_bn": ((3, 224, 224), 1, 8, "gausslegendre", 17),
    "vit_b_16": ((3, 224, 224), 1, 8, "gausslegendre", 18),
}
ORDER = ["mlp_wide", "tinyvgg_course", "resnet18"]
ZOO = ["resnet50", "mobilenet_v2", "efficientnet_b0", "vgg11_bn", "vit_b_16"]


class TinyVGG(nn.Module):
    """The TinyVGG of the PyTorch course: 2 x (conv-relu-conv-relu-maxpool), flatten, linear."""

    def __init__(self, hidden=10, classes=3):
        super().__init__()

        def block(cin):
            return nn.Sequential(
                nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(),
                nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2))

        self.block1 = block(3)
        self.block2 = block(hidden)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(hidden * 16 * 16, classes))

    def forward(self, x):
        return self.classifier(self.block2(self.block1(x)))


def build(name):
    """The module of a workload, with its seeded random weights, in eval mode."""
    seed = WORKLOADS[name][4]
    torch.manual_seed(seed)
    if name == "mlp_wide":
        m = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    elif name == "tinyvgg_course":
        m = TinyVGG()
    elif name == "resnet18" or name in ZOO:
        import torchvision
        ctor = getattr(torchvision.models, name)
        m = no_zero_heads(ctor(weights=None) if _has_weights_arg() else ctor())
    else:
        raise KeyError(name)
    return m.eval()


def _has_weights_arg():
    import inspect
    import torchvision
    return "weights" in inspect.signature(torchvision.models.resnet18).parameters


def no_zero_heads(m):
    """torchvision zero-initialises some classifier heads (ViT's): every logit is then its bias, every
    gradient 0, and an attribution comparison would pass on zeros. Such Linear layers get small
    seeded random weights instead."""
    import torch
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear) and not mod.weight.detach().any():
            torch.nn.init.normal_(mod.weight, std=0.02)
    return m

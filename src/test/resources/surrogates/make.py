"""Generates this folder (run from it with Debian's python3-torch, python3-onnx and python3-sklearn;
not part of the build): LIME and KernelSHAP fits of the mlp_tabular reference model, computed the way
Captum 0.8.0 computes them, on a fixed set of coalitions written as .npy so that kxai can be given the
same ones (Captum's own samples come from torch's generator, which kxai does not reproduce).

Captum's pipeline, per example (LimeBase.attribute with a per-example target):
  perturbed = x * z[mask] + baseline * (1 - z[mask])     (default_from_interp_rep_transform)
  y = model(perturbed)[target]                           (float32)
  LIME weight = exp(-d^2 / (2 * width^2)), d = 1 - cosine(x, perturbed) in float32 (default_exp_kernel)
  KernelSHAP weight = 1e6 for all-ones / all-zeros coalitions, else 1 (kernel_shap_similarity_kernel)
  LIME:  sklearn.linear_model.Lasso(alpha=0.01).fit(z, y, sample_weight=w)    (SkLearnLasso; also alpha 0.001)
  KSHAP: sklearn.linear_model.LinearRegression().fit(z, y, sample_weight=w)   (SkLearnLinearRegression)
  attributions = coef_ (float32), spread over the features of each group (return_input_shape)
The model is rebuilt in torch from the ONNX weights (Gemm -> Linear, Relu, Tanh).
"""
import numpy as np
import onnx
import torch
from onnx import numpy_helper
from sklearn.linear_model import Lasso, LinearRegression

ref = "../reference/captum-0.8.0/mlp_tabular/"
w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(ref + "model.onnx").graph.initializer}


def model(x):
    h = torch.relu(x @ w["0.weight"].T + w["0.bias"])
    h = torch.tanh(h @ w["2.weight"].T + w["2.bias"])
    return h @ w["4.weight"].T + w["4.bias"]


x = torch.from_numpy(np.load(ref + "input.npy"))[:4]
targets = [1, 0, 2, 1]
# 4 groups of 2 features: the feature mask
mask = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
baseline = torch.full((8,), -1.5)
rng = np.random.default_rng(7)
z = (rng.random((40, 4)) < 0.5).astype(np.float32)
z[0] = 1
z[1] = 0
cos = torch.nn.CosineSimilarity(dim=0)

lime, lime_small, kshap, lime_w = [], [], [], []
for r in range(4):
    zt = torch.from_numpy(z)
    m = zt[:, mask]                                            # [40, 8]
    perturbed = x[r] * m + baseline * (1 - m)
    with torch.no_grad():
        y = model(perturbed)[:, targets[r]].numpy()
    d = torch.stack([1 - cos(x[r].float(), p.float()) for p in perturbed])
    wl = np.array([np.exp(-1 * float(di ** 2) / (2 * 1.0 ** 2)) for di in d], dtype=np.float32)
    wk = np.where((z.sum(1) == 0) | (z.sum(1) == 4), 1e6, 1.0).astype(np.float32)
    lime.append(Lasso(alpha=0.01).fit(z, y, sample_weight=wl).coef_.astype(np.float32))
    lime_small.append(Lasso(alpha=0.001).fit(z, y, sample_weight=wl).coef_.astype(np.float32))
    kshap.append(LinearRegression().fit(z, y, sample_weight=wk).coef_.astype(np.float32))
    lime_w.append(wl)

np.save("input.npy", x.numpy())
np.save("targets.npy", np.array(targets, dtype=np.int64))
np.save("feature_mask.npy", mask.numpy().astype(np.int64))
np.save("baseline.npy", baseline.numpy())
np.save("samples.npy", z)
np.save("lime_weights.npy", np.stack(lime_w))
np.save("lime_coef.npy", np.stack(lime))
np.save("lime_alpha0.001_coef.npy", np.stack(lime_small))
np.save("kernel_shap_coef.npy", np.stack(kshap))
print("lime", np.stack(lime))
print("kernel_shap", np.stack(kshap))

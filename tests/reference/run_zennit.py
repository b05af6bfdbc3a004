"""Run zennit 0.5.x on PyTorch twins of the reference networks (called by ``generate.py``).

Runs inside its own environment: Python 3.11, torch 2.13 (CPU), zennit 0.5.x
(see README.md). Builds each network of ``networks.py`` in PyTorch, in
float64, with the weights ``generate.py`` wrote, converted from channels last:
conv kernels ``(kh, kw, in, out) -> (out, in, kh, kw)``, Dense kernels
transposed, the first Dense after a Flatten re-ordered from ``(h, w, c)`` to
``(c, h, w)``. Writes, transposed back to channels last:

* ``<network>/<rule>`` for every rule or composite of :data:`RULES`, with
  tfxai's treatment of zero denominators and an exact BatchNorm merge;
* ``<network>/<rule>@stock``, the same with zennit's defaults (:data:`STOCK`);
* ``<network>/<method>`` for the gradient methods of :data:`GRADIENTS`.

zennit starts from the output gradient it is given; here the one-hot vector
of the target (``R = 1``), zennit's usual convention.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections import OrderedDict
from importlib.metadata import version

import numpy as np
import torch


def _import_zennit():
    """Import zennit; stub ``torchvision`` when it cannot be imported.

    zennit 0.5 imports ``torchvision.models.resnet`` at import time, only for
    its ResNet canonizers (not used here). The torchvision wheels on PyPI are
    built against CUDA torch and do not load with the CPU torch wheel.
    """
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001  (ImportError, or a RuntimeError of a mismatched build)
        for name in [name for name in sys.modules if name.startswith("torchvision")]:
            del sys.modules[name]
        resnet = types.ModuleType("torchvision.models.resnet")
        resnet.Bottleneck = type("Bottleneck", (torch.nn.Module,), {})
        resnet.BasicBlock = type("BasicBlock", (torch.nn.Module,), {})
        models = types.ModuleType("torchvision.models")
        models.resnet = resnet
        package = types.ModuleType("torchvision")
        package.models = models
        sys.modules.update(
            {"torchvision": package, "torchvision.models": models, "torchvision.models.resnet": resnet}
        )
        print("zennit: torchvision stubbed (only zennit's ResNet canonizers use it)", file=sys.stderr)
    import zennit  # noqa: F401, PLC0415


_import_zennit()
from zennit import composites as zc  # noqa: E402
from zennit import rules as zr  # noqa: E402
from zennit.attribution import Gradient, IntegratedGradients  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.layer import Sum  # noqa: E402
from zennit.types import Linear  # noqa: E402

import networks  # noqa: E402

LOW, HIGH = networks.LOW, networks.HIGH
nn = torch.nn


def exact_zeros_only(z):
    """Stabilizer that only replaces exact zeros (by 1), like tfxai and iNNvestigate.

    zennit's default stabilizer adds ``1e-6 * sign(z)`` to every denominator of
    every rule; tfxai adds nothing outside the Epsilon rule and passes no
    relevance where ``z == 0``. Replacing 0 by 1 does the same wherever the
    contributions to ``z`` are 0 themselves (always for the one-signed sums of
    z+, alpha-beta, gamma); the random data here never hits ``z == 0`` otherwise.
    """
    return z + (z == 0).to(z)


def exact_merge_batch_norm():
    """zennit's ``SequentialMergeBatchNorm``, turning the merged BatchNorm into the exact identity.

    zennit 0.5.1 sets the merged BatchNorm's statistics to mean 0, variance 1
    but keeps its ``eps``, so the "identity" computes ``x / sqrt(1 + eps)``
    (0.9995 x for Keras' eps of 1e-3). Setting the variance to ``1 - eps``
    makes it exact (``eps`` itself must stay positive in torch >= 2.10).
    """

    class ExactMergeBatchNorm(SequentialMergeBatchNorm):
        @staticmethod
        def merge_batch_norm(modules, batch_norm):
            SequentialMergeBatchNorm.merge_batch_norm(modules, batch_norm)
            batch_norm.running_var.data = torch.full_like(batch_norm.running_var.data, 1.0 - batch_norm.eps)

    return ExactMergeBatchNorm()


def rules_with(stabilizer):
    """Result key -> ``factory(canonizers) -> zennit Composite``.

    ``stabilizer`` stabilizes the denominators of every rule but Epsilon.
    """
    s = {"stabilizer": stabilizer}

    def uniform(rule):
        """Every Linear/Conv gets ``rule``; activations, sums, pooling, BatchNorm as in zennit's presets."""
        return lambda c: zc.LayerMapComposite(zc.layer_map_base(stabilizer) + [(Linear, rule)], canonizers=c)

    def zbox_first(c):
        return zc.SpecialFirstLayerMapComposite(
            zc.layer_map_base(stabilizer) + [(Linear, zr.Epsilon(1e-6))],
            first_map=[(Linear, zr.ZBox(LOW, HIGH, **s))],
            canonizers=c,
        )

    return {
        "Epsilon": uniform(zr.Epsilon(1e-6)),
        "Epsilon_0.1": uniform(zr.Epsilon(0.1)),
        "ZPlus": uniform(zr.ZPlus(**s)),
        "ZPlus_nobias": uniform(zr.ZPlus(zero_params="bias", **s)),
        "AlphaBeta_1_0": uniform(zr.AlphaBeta(alpha=1.0, beta=0.0, **s)),
        "AlphaBeta_2_1": uniform(zr.AlphaBeta(alpha=2.0, beta=1.0, **s)),
        "Gamma": uniform(zr.Gamma(0.25, **s)),
        "ZBox": zbox_first,
        "Flat": uniform(zr.Flat(**s)),
        "WSquare": uniform(zr.WSquare(**s)),
        "WSquare_nobias": uniform(zr.WSquare(zero_params="bias", **s)),
        "EpsilonPlus": lambda c: zc.EpsilonPlus(canonizers=c, **s),
        "EpsilonPlusFlat": lambda c: zc.EpsilonPlusFlat(canonizers=c, **s),
        "EpsilonGammaBox": lambda c: zc.EpsilonGammaBox(low=LOW, high=HIGH, canonizers=c, **s),
        "EpsilonAlpha2Beta1": lambda c: zc.EpsilonAlpha2Beta1(canonizers=c, **s),
        "EpsilonAlpha2Beta1Flat": lambda c: zc.EpsilonAlpha2Beta1Flat(canonizers=c, **s),
    }


RULES = rules_with(exact_zeros_only)
"""Result key -> composite factory, with tfxai's conventions for zeros and BatchNorm merging."""

STOCK = rules_with(1e-6)
"""The same with zennit's defaults (stabilizer 1e-6, its own BatchNorm merge); keys get ``@stock``."""

GRADIENTS = {
    "gradient": (Gradient, {}, None),
    "integrated_gradients": (IntegratedGradients, {"n_iter": 20}, None),
    "guided_backprop": (Gradient, {}, zc.GuidedBackprop),
    "deconvnet": (Gradient, {}, zc.DeconvNet),
}
"""Result key -> (attributor, its parameters, composite class or None): the gradient family."""


def conv(c_in, c_out, k):
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


def bn(channels, dims=2):
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, eps=1e-3)


class Residual(nn.Module):
    """``networks._residual``: conv1, (conv2, conv3) + skip, ReLU, concatenated with a 1x1 side branch."""

    def __init__(self):
        super().__init__()
        self.conv1, self.relu1 = conv(3, 6, 3), nn.ReLU()
        self.conv2, self.relu2 = conv(6, 6, 3), nn.ReLU()
        self.conv3 = conv(6, 6, 3)
        self.skip_add, self.relu_add = Sum(), nn.ReLU()
        self.conv_side, self.relu_side = conv(6, 4, 1), nn.ReLU()
        self.maxpool, self.flatten = nn.MaxPool2d(2), nn.Flatten()
        self.logits = nn.Linear(160, networks.N_CLASSES)

    def forward(self, x):
        h = self.relu1(self.conv1(x))
        g = self.conv3(self.relu2(self.conv2(h)))
        s = self.relu_add(self.skip_add(torch.stack([h, g], dim=-1)))
        side = self.relu_side(self.conv_side(h))
        return self.logits(self.flatten(self.maxpool(torch.cat([s, side], dim=1))))


def build(name):
    """The PyTorch twin of ``networks.build(keras, name)``."""
    n = networks.N_CLASSES
    if name == "residual":
        return Residual()
    modules = {
        "mlp": [
            ("dense1", nn.Linear(10, 16)), ("relu1", nn.ReLU()),
            ("dense2", nn.Linear(16, 12)), ("relu2", nn.ReLU()),
            ("logits", nn.Linear(12, n)),
        ],
        "cnn": [
            ("conv1", conv(3, 6, 3)), ("relu1", nn.ReLU()), ("maxpool", nn.MaxPool2d(2)),
            ("conv2", conv(6, 8, 3)), ("relu2", nn.ReLU()), ("avgpool", nn.AvgPool2d(2)),
            ("flatten", nn.Flatten()), ("dense1", nn.Linear(32, 12)), ("relu3", nn.ReLU()),
            ("logits", nn.Linear(12, n)),
        ],
        "bn": [
            ("conv1", conv(3, 6, 3)), ("bn1", bn(6)), ("relu1", nn.ReLU()), ("maxpool", nn.MaxPool2d(2)),
            ("conv2", conv(6, 8, 3)), ("bn2", bn(8)), ("relu2", nn.ReLU()), ("avgpool", nn.AvgPool2d(2)),
            ("flatten", nn.Flatten()), ("dense1", nn.Linear(32, 12)), ("bn3", bn(12, dims=1)),
            ("relu3", nn.ReLU()), ("logits", nn.Linear(12, n)),
        ],
    }[name]
    return nn.Sequential(OrderedDict(modules))


FLATTENED = {"cnn": ("dense1", (2, 2, 8)), "bn": ("dense1", (2, 2, 8)), "residual": ("logits", (4, 4, 10))}
"""Network -> (the Dense after the Flatten, the (h, w, c) shape it flattens)."""


def load_weights(model, arrays, name, prefix):
    """Copy the Keras weights ``arrays["<prefix>/<layer>/<i>"]`` into the PyTorch twin."""
    flattened_layer, hwc = FLATTENED.get(name, (None, None))
    for layer, module in model.named_children():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            kernel = arrays[f"{prefix}/{layer}/0"].astype(np.float64)
            if isinstance(module, nn.Conv2d):
                kernel = kernel.transpose(3, 2, 0, 1)
            else:
                if layer == flattened_layer:
                    kernel = kernel.reshape(hwc + (-1,)).transpose(2, 0, 1, 3).reshape(kernel.shape)
                kernel = kernel.T
            module.weight.data = torch.from_numpy(np.ascontiguousarray(kernel))
            module.bias.data = torch.from_numpy(arrays[f"{prefix}/{layer}/1"].astype(np.float64))
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            gamma, beta, mean, variance = (
                arrays[f"{prefix}/{layer}/{i}"].astype(np.float64) for i in range(4)
            )
            module.weight.data, module.bias.data = torch.from_numpy(gamma), torch.from_numpy(beta)
            module.running_mean.data = torch.from_numpy(mean)
            module.running_var.data = torch.from_numpy(variance)
    return model.double().eval()


def to_torch(x):
    x = x.astype(np.float64)
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)


def to_numpy(r):
    r = r.detach().numpy()
    return r.transpose(0, 2, 3, 1) if r.ndim == 4 else r


def explain(model, composite, x, targets, attributor=Gradient, **params):
    one_hot = nn.functional.one_hot(torch.from_numpy(targets.astype(np.int64)), networks.N_CLASSES).double()
    with attributor(model=model, composite=composite, **params) as attribute:
        _, relevance = attribute(x, one_hot)
    return to_numpy(relevance)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="networks.npz written by generate.py")
    parser.add_argument("--out", required=True, help="where to write the results (.npz)")
    args = parser.parse_args()
    arrays = dict(np.load(args.data))
    out = {"meta/zennit": np.array(version("zennit")), "meta/torch": np.array(torch.__version__)}
    for name in networks.NETWORKS:
        print(f"zennit: {name}", file=sys.stderr)
        model = load_weights(build(name), arrays, name, name)
        x, targets = to_torch(arrays[f"{name}/x"]), arrays[f"{name}/targets"]
        with torch.no_grad():
            out[f"{name}/logits"] = model(x).numpy()
        for rule, make in RULES.items():
            canonizers = [exact_merge_batch_norm()] if name == "bn" else None
            out[f"{name}/{rule}"] = explain(model, make(canonizers), x.clone(), targets)
        for rule, make in STOCK.items():
            canonizers = [SequentialMergeBatchNorm()] if name == "bn" else None
            out[f"{name}/{rule}@stock"] = explain(model, make(canonizers), x.clone(), targets)
        for method, (attributor, params, composite) in GRADIENTS.items():
            composite = composite() if composite is not None else None
            out[f"{name}/{method}"] = explain(model, composite, x.clone(), targets, attributor, **params)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()

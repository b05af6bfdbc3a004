"""Write docs/supported_layers.md from tfxai's registry (run after changing the registry).

A test compares the committed page with this script's output, so it cannot drift from the code.
"""

from __future__ import annotations

import inspect
import pathlib
import re

from tfxai import canonizers, composites, registry

SEPARABLE = (
    "one linear node: the convolution whose kernel composes the depthwise and pointwise kernels, "
    "so relevance flows through both convolutions at once"
)

NOTES = {
    "Dense": "any input rank; fused activation split off by a canonizer",
    "Conv1D": "'causal' padding included; fused activation split off",
    "Conv2D": "`groups` included (ConvNeXt's depthwise convolutions); fused activation split off",
    "Conv3D": "fused activation split off",
    "DepthwiseConv1D": "kernel per input channel and depth multiplier",
    "DepthwiseConv2D": "kernel per input channel and depth multiplier",
    "SeparableConv1D": SEPARABLE,
    "SeparableConv2D": SEPARABLE,
    "Conv1DTranspose": "kernel `(*kernel_size, filters, in_channels)`",
    "Conv2DTranspose": "kernel `(*kernel_size, filters, in_channels)`",
    "Conv3DTranspose": "kernel `(*kernel_size, filters, in_channels)`",
    "BatchNormalization": (
        "folded into the linear layer before it, else (where exact) into the one after it; "
        "otherwise an element-wise affine node, default rule `Pass`"
    ),
    "LayerScale": "ConvNeXt's per-channel scale: folded like BatchNorm; otherwise element-wise affine (`Pass`)",
}


def _where(layer_type) -> str:
    module = layer_type.__module__
    if module.startswith("keras.src.layers"):
        return "keras.layers"
    if module.startswith("keras.src.ops"):
        return "keras.ops (raw operation)"
    if module.startswith("keras.src.applications"):
        return f"keras.applications ({module.rsplit('.', 1)[-1]})"
    return "node type set by a tfxai canonizer"


def _markdown(text: str) -> str:
    """Docstring markup (``:class:`~a.B```, double backquotes) as Markdown code spans."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`.]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _summary(obj) -> str:
    return _markdown(inspect.getdoc(obj).split("\n\n")[0].replace("\n", " "))


def _row(layer_type, rule) -> str:
    return f"| `{layer_type.__name__}` | {_where(layer_type)} | `{type(rule).__name__}` |"


def _canonizer_section() -> list:
    lines = ["## Canonizers (applied in this order)", ""]
    for canonizer in canonizers.CANONIZERS:
        lines += [f"### `{canonizer.__name__}`", "", _markdown(inspect.getdoc(canonizer)), ""]
    return lines


def _node_types_section() -> list:
    lines = ["## Node types set by canonizers", ""]
    for node_type in (canonizers.ConstantAffine, canonizers.GatedProduct):
        lines += [f"- `{node_type.__name__}`: " + " ".join(_markdown(inspect.getdoc(node_type)).split()), ""]
    return lines


def _composites_section() -> list:
    lines = ["## Composite presets (`lrp.<name>`): rules of the weighted layers", ""]
    for name in composites.composite_names():
        lines += [f"- `{name}`: " + " ".join(_markdown(inspect.getdoc(composites._PRESETS[name])).split())]
    return lines + [""]


def _rules_section() -> list:
    used = {}
    for _, rule in registry.supported_types():
        used.setdefault(type(rule).__name__, type(rule))
    lines = ["## The default rules", "", "| rule | what it does |", "|---|---|"]
    lines += [f"| `{name}` | {_summary(cls)} |" for name, cls in used.items()]
    return lines + [""]


def render() -> str:
    """The Markdown page."""
    lines = [
        "# Supported layers",
        "",
        "Generated from `tfxai.registry` and `tfxai.canonizers` by `docs/generate_supported_layers.py`;",
        "do not edit by hand. `tfxai check MODEL` (or `tfxai.check(model)`) prints, for one model, the rule",
        "every node gets and a fix for every node that has none.",
        "",
        "## Weighted layers (rule chosen by the analyzer's composite)",
        "",
        "| layer | from | notes |",
        "|---|---|---|",
    ]
    lines += [f"| `{t.__name__}` | {_where(t)} | {NOTES.get(t.__name__, '')} |" for t in registry.LINEAR + registry.AFFINE]
    lines += [""] + _composites_section()
    lines += [
        "A final softmax (fused, `Activation('softmax')` or `Softmax`) is stripped: the logit is explained.",
        "",
        "## Other layers (default rule of their type)",
        "",
        "| layer | from | default rule |",
        "|---|---|---|",
    ]
    lines += [_row(t, r) for t, r in registry.supported_types()]
    lines += [
        "",
        "Nested models are inlined; shared layers get one node per call. Any other layer (a `Lambda`, a",
        "custom layer) raises one error listing every unsupported node;",
        "`tfxai.register_rule(LayerClass, rule)` adds support for a class, `rules=[(name, rule)]` for one",
        "analyzer.",
        "",
    ]
    lines += _rules_section()
    lines += _node_types_section()
    lines += _canonizer_section()
    return "\n".join(lines)


if __name__ == "__main__":
    path = pathlib.Path(__file__).with_name("supported_layers.md")
    path.write_text(render())
    print(f"wrote {path}")

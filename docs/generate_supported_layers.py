"""Write docs/supported_layers.md from tfxai's registry (run after changing the registry).

A test compares the committed page with this script's output, so it cannot drift from the code.
"""

from __future__ import annotations

import pathlib

from tfxai import registry


def _row(layer_type, rule) -> str:
    module = layer_type.__module__
    where = "keras.layers" if module.startswith("keras.src.layers") else "keras.ops (raw operation)"
    return f"| `{layer_type.__name__}` | {where} | `{type(rule).__name__}` |"


def render() -> str:
    """The Markdown page."""
    lines = [
        "# Supported layers",
        "",
        "Generated from `tfxai.registry` by `docs/generate_supported_layers.py`; do not edit by hand.",
        "",
        "## Weighted layers (rule chosen by the analyzer's composite)",
        "",
        "| layer | notes |",
        "|---|---|",
    ]
    notes = {
        "Dense": "any input rank; fused activation split off by a canonizer",
        "Conv1D": "'causal' padding included; fused activation split off",
        "Conv2D": "fused activation split off",
        "Conv3D": "fused activation split off",
        "BatchNormalization": "folded into a preceding Dense/Conv; otherwise an element-wise affine layer",
    }
    lines += [f"| `{t.__name__}` | {notes.get(t.__name__, '')} |" for t in registry.LINEAR]
    lines += [
        "",
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
        "Nested models are inlined; shared layers get one node per call. Any other layer raises one error",
        "listing every unsupported node; `tfxai.register_rule(LayerClass, rule)` adds support.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    path = pathlib.Path(__file__).with_name("supported_layers.md")
    path.write_text(render())
    print(f"wrote {path}")

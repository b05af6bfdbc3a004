"""Regenerate the pictures in README.md and docs/ with the project's own code (the demo and tutorials).

Run from the repository root: ``python docs/generate_images.py``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from tfxai.cli import main

IMAGES = pathlib.Path(__file__).with_name("images")
TUTORIALS = pathlib.Path(__file__).resolve().parents[1] / "tutorials"

TUTORIAL_IMAGES = {
    "compare_methods.py": ["methods_grid.png", "lrp_overlay.png"],
    "rules_and_composites.py": ["rules_grid.png"],
    "credit_scoring.py": ["credit_features.png"],
}
"""Pictures the docs show, by the tutorial that draws them."""


def generate_from_tutorials() -> None:
    """Run the tutorials that draw the docs' pictures and copy those pictures to docs/images."""
    for tutorial, names in TUTORIAL_IMAGES.items():
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "TFXAI_TUTORIAL_OUTPUT": folder}
            subprocess.run([sys.executable, str(TUTORIALS / tutorial)], check=True, env=env, cwd=folder)
            for name in names:
                shutil.copy(pathlib.Path(folder) / name, IMAGES / name)
                print(f"wrote {IMAGES / name}")


def generate() -> None:
    """Run ``tfxai demo`` and keep its comparison grid as docs/images/demo_heatmaps.png."""
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        main(["demo", "--output", folder])
        shutil.copy(pathlib.Path(folder) / "heatmaps.png", IMAGES / "demo_heatmaps.png")
    print(f"wrote {IMAGES / 'demo_heatmaps.png'}")


if __name__ == "__main__":
    generate()
    generate_from_tutorials()

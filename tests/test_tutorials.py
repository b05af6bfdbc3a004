"""Every tutorial runs top to bottom as a plain script, within its time budget, writing only where told."""

import os
import pathlib
import subprocess
import sys
import time

import pytest

TUTORIALS = pathlib.Path(__file__).resolve().parents[1] / "tutorials"

DEDICATED = {"export_and_serve.py": "tests/test_tutorials_export.py"}
"""Tutorials with a test of their own, which also checks what they leave behind."""

BUDGET_S = 120


def _tutorials():
    return sorted(path.name for path in TUTORIALS.glob("*.py") if path.name not in DEDICATED)


def test_every_tutorial_is_a_jupytext_percent_script():
    for path in TUTORIALS.glob("*.py"):
        if path.name in DEDICATED:
            continue
        text = path.read_text()
        assert "#   jupytext:" in text and "# %% [markdown]" in text, (
            f"{path.name}: add the jupytext header and cells"
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", _tutorials())
def test_tutorial_runs(name, tmp_path):
    output = tmp_path / "output"
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "TFXAI_TUTORIAL_OUTPUT": str(output),
    }
    command = [sys.executable, str(TUTORIALS / name)]
    began = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=3 * BUDGET_S, env=env, cwd=tmp_path
    )
    seconds = time.perf_counter() - began
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    written = {p.name for p in tmp_path.iterdir()}
    assert written <= {"output"}, f"tutorials write only to TFXAI_TUTORIAL_OUTPUT. Found: {sorted(written)}"
    assert seconds < 2 * BUDGET_S, f"{name} took {seconds:.0f} s; tutorials should take under {BUDGET_S} s"

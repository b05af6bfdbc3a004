"""The export-and-serve tutorial runs top to bottom and leaves what it promises."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

TUTORIAL = pathlib.Path(__file__).resolve().parents[1] / "tutorials" / "export_and_serve.py"


@pytest.mark.slow
def test_export_and_serve_tutorial_runs(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TFXAI_SERVING_URL", None)
    command = [sys.executable, str(TUTORIAL), str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "served relevance vs analyze: max abs difference" in result.stdout
    for version in ("1", "2"):
        assert (tmp_path / "models" / "classifier_xai" / version / "saved_model.pb").is_file()
    request = json.loads((tmp_path / "request.json").read_text())
    assert len(request["instances"]) == 2
    assert (tmp_path / "served_relevance.png").stat().st_size > 0

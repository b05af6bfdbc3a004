"""Generated documentation pages match the code they describe."""

import importlib.util
import pathlib
import re

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_supported_layers", DOCS / "generate_supported_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_supported_layers_page_is_current():
    page = (DOCS / "supported_layers.md").read_text()
    assert page == _generator().render(), "run: python docs/generate_supported_layers.py"


def test_every_analyzer_name_is_documented():
    import tfxai

    text = (DOCS / "getting_started.md").read_text()
    base_names = {name.replace("_IB", "") for name in tfxai.analyzer_names()}
    missing = [name for name in sorted(base_names) if name not in text]
    assert not missing, f"analyzers missing from docs/getting_started.md: {missing}"


def test_readme_and_ci_run_the_same_test_command_with_a_line_per_file():
    root = pathlib.Path(__file__).resolve().parents[1]
    readme = re.findall(r"^python -m pytest .*$", (root / "README.md").read_text(), re.M)
    ci = re.findall(r"^python -m pytest .*$", (root / ".ci" / "run").read_text(), re.M)
    assert readme == ci == ["python -m pytest tests"]  # no -q: pytest prints one line per test file

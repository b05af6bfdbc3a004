"""Regenerate the comparison tables of docs/evaluating.md by running tutorials/which_method_to_trust.py.

The tutorial writes its tables as Markdown files; this script runs it in a
temporary folder and puts each table between its markers in the page
(``<!-- table: NAME -->`` ... ``<!-- end table -->``), so the page shows what
the code produces. About a minute and a half on two CPU cores:

    python docs/generate_evaluation.py
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "evaluating.md"
TUTORIAL = ROOT / "tutorials" / "which_method_to_trust.py"
TABLES = ("comparison_images", "comparison_images_2x2", "comparison_tabular")
MARKED = re.compile(r"(<!-- table: (\w+) -->\n).*?(<!-- end table -->)", re.S)


def splice(page: str, tables: dict) -> str:
    """``page`` with the text between each table's markers replaced by ``tables[name]``."""

    def replace(match):
        name = match.group(2)
        if name not in tables:
            raise KeyError(f"docs/evaluating.md marks a table {name!r} that the tutorial does not write")
        return match.group(1) + tables[name].strip() + "\n" + match.group(3)

    return MARKED.sub(replace, page)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tfxai-evaluating-") as folder:
        env = {**os.environ, "TFXAI_TUTORIAL_OUTPUT": folder, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, str(TUTORIAL)], check=True, env=env, cwd=folder)
        tables = {name: (pathlib.Path(folder) / f"{name}.md").read_text() for name in TABLES}
    PAGE.write_text(splice(PAGE.read_text(), tables))
    print(f"updated {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

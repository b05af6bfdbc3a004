"""MkDocs hook: show Sphinx roles in numpydoc docstrings (``:func:`name```) as plain code."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:func|class|meth|data|mod|attr|obj):(?=<code>)")


def on_page_content(html, **kwargs):
    """Drop the role prefix that mkdocstrings leaves in front of the code span."""
    return ROLE.sub("", html)

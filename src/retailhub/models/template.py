"""The two template tags a model may use: ``{{ ref('model') }}`` and ``{{ source('dataset') }}``.

A regex is enough for two tags, and keeping Jinja out means a model is plain SQL that any SQL
tool (and sqlglot) can read once the tags are replaced. Any other ``{{ ... }}`` is rejected at
load time so a typo never reaches the engine as broken SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable

TAG = re.compile(r"\{\{\s*(ref|source)\s*\(\s*(['\"])([A-Za-z_][A-Za-z0-9_]*)\2\s*\)\s*\}\}")
ANY_TAG = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def find_tags(sql: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Return (refs, sources, unsupported tags), each in order of first appearance."""
    refs: dict[str, None] = {}
    sources: dict[str, None] = {}
    for kind, _quote, name in TAG.findall(sql):
        (refs if kind == "ref" else sources)[name] = None
    unsupported = tuple(t for t in ANY_TAG.findall(sql) if not TAG.fullmatch(t))
    return tuple(refs), tuple(sources), unsupported


def render(sql: str, ref: Callable[[str], str], source: Callable[[str], str]) -> str:
    """Replace every tag with the relation the callbacks return (they raise on unknown names)."""

    def _sub(match: re.Match[str]) -> str:
        kind, _quote, name = match.groups()
        return ref(name) if kind == "ref" else source(name)

    return TAG.sub(_sub, sql)

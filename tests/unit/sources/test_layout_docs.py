"""docs/data-model.md documents every canonical column of every built-in layout."""

from __future__ import annotations

from pathlib import Path

from retailhub.sources.layout import available_layouts, get_layout

DOC = Path(__file__).resolve().parents[3] / "docs" / "data-model.md"


def test_every_layout_column_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in available_layouts():
        if name == "none":
            continue
        assert f"### `{name}`" in text
        for column in get_layout(name).columns:
            assert f"| `{column.name}` | {column.type} |" in text, (name, column.name)

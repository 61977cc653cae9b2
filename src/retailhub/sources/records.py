"""Turn parsed JSON records (from files or HTTP pages) into text-typed Arrow batches.

JSON scalars are written back as text (numbers keep their digits, booleans become true/false,
nested objects become JSON text) so that, like CSV, every landed column is VARCHAR and the layout
decides types. The schema of a stream is fixed by the ``fields`` setting or, failing that, by the
keys of the first batch; a key that first shows up later fails loudly instead of being dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa

from retailhub.errors import SourceError


def to_text(value: Any) -> str | None:
    """A JSON value as text: None stays None, scalars keep their JSON spelling."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def dig(document: Any, dotted: str | None) -> Any:
    """``document['a']['b']`` for ``dotted='a.b'``; an empty path returns the document itself.

    Raises KeyError naming the first missing step.
    """
    node = document
    if not dotted:
        return node
    for step in dotted.split("."):
        if isinstance(node, Mapping) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            raise KeyError(step)
    return node


class TextBatcher:
    """Builds Arrow batches of string columns with one schema for the whole stream."""

    def __init__(self, source: str, fields: list[str] | None) -> None:
        self.source = source
        self._fixed = fields is not None
        self._names: list[str] | None = list(fields) if fields is not None else None

    @property
    def schema(self) -> pa.Schema:
        assert self._names is not None, "schema is known after the first batch"
        return pa.schema([(n, pa.string()) for n in self._names])

    def batch(self, records: Iterable[Any], where: str) -> pa.RecordBatch:
        """One batch from ``records``; ``where`` (file and line, or URL and page) goes in errors."""
        rows = list(records)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise SourceError(
                    f"source {self.source!r}: {where}: record {i + 1} is a JSON "
                    f"{_json_kind(row)}, expected a JSON object",
                    source=self.source,
                )
        if self._names is None:
            names: dict[str, None] = {}
            for row in rows:
                names.update(dict.fromkeys(row))
            self._names = list(names)
        elif not self._fixed:
            known = set(self._names)
            for row in rows:
                extra = row.keys() - known
                if extra:
                    raise SourceError(
                        f"source {self.source!r}: {where}: field(s) {sorted(extra)} first appear "
                        f"after the first batch; list every field under `fields:` for this source",
                        source=self.source,
                    )
        columns = [pa.array([to_text(r.get(n)) for r in rows], pa.string()) for n in self._names]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else type(value).__name__

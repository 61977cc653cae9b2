"""Small SQL text helpers for the rule compiler: quoting, literals and value rendering.

Rule SQL is generated as text because DuckDB must see one statement per pass; these helpers are
the only place that decides how names and values are quoted, so injection and quoting bugs have
one place to live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Columns every staged table carries besides its canonical columns.
META_COLUMNS = ("_source", "_source_file", "_line", "_unit_id")
TYPE_ERRORS = "_type_errors"
#: Prefix of every helper column the quality layer adds while it works.
INTERNAL_PREFIX = "__rh_"

_TEXT_TYPES = ("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR")


def ident(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for a config value (string, number or boolean)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def is_text(sql_type: str) -> bool:
    return sql_type.upper().startswith(_TEXT_TYPES)


def is_temporal(sql_type: str) -> bool:
    return sql_type.upper().startswith(("DATE", "TIMESTAMP"))


def rendered_value(column: str, sql_type: str) -> str:
    """SQL text rendering a column's value for a reason string: text quoted, NULL as NULL."""
    col = ident(column)
    if is_text(sql_type):
        return f"coalesce('''' || {col} || '''', 'NULL')"
    return f"coalesce(cast({col} as varchar), 'NULL')"


def assignments(columns: Iterable[str], schema: Mapping[str, str]) -> str:
    """``'a = ' || <a> || ', b = ' || <b>`` for a reason string."""
    parts = []
    for i, column in enumerate(columns):
        prefix = ("" if i == 0 else ", ") + f"{column} = "
        parts.append(f"{literal(prefix)} || {rendered_value(column, schema[column])}")
    return " || ".join(parts) if parts else "''"


def type_error_in(column: str) -> str:
    """True when the row's ``_type_errors`` holds a message about ``column``.

    Contract with the staging step: each message starts with ``<column>:``.
    """
    return (
        f"len(list_filter(coalesce({TYPE_ERRORS}, []), "
        f"lambda e: starts_with(e, {literal(column + ':')}))) > 0"
    )


def data_columns(schema: Mapping[str, str]) -> list[str]:
    """Canonical columns of a staged table: everything but the bookkeeping columns."""
    return [c for c in schema if c not in META_COLUMNS and c != TYPE_ERRORS]

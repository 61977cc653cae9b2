"""DuckDB ↔ PostgreSQL column types: the dialect differences of the warehouse, in one place.

Tables are built in DuckDB and loaded into PostgreSQL with binary COPY from Arrow, so each
DuckDB column needs (a) a PostgreSQL column type and (b) a DuckDB expression whose Arrow type
the COPY encoder writes in exactly that type's binary format. Reading history back, the
PostgreSQL column type decides the DuckDB type again, so a round trip returns the types the
pipeline started with (``DECIMAL(18,4)`` stays ``DECIMAL(18,4)``, not a string or a double).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_PG_NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")
_PG_VARCHAR = re.compile(r"^(character varying|character|varchar|char)(\(\d+\))?$")

# DuckDB scalar type -> (PostgreSQL type, DuckDB type to cast to before COPY or None).
_SCALARS: dict[str, tuple[str, str | None]] = {
    "BOOLEAN": ("boolean", None),
    "TINYINT": ("smallint", "SMALLINT"),
    "UTINYINT": ("smallint", "SMALLINT"),
    "SMALLINT": ("smallint", None),
    "USMALLINT": ("integer", "INTEGER"),
    "INTEGER": ("integer", None),
    "UINTEGER": ("bigint", "BIGINT"),
    "BIGINT": ("bigint", None),
    "UBIGINT": ("numeric(20,0)", "DECIMAL(20,0)"),
    "HUGEINT": ("numeric(38,0)", "DECIMAL(38,0)"),
    "UHUGEINT": ("numeric(38,0)", "DECIMAL(38,0)"),
    "FLOAT": ("real", None),
    "DOUBLE": ("double precision", None),
    "VARCHAR": ("text", None),
    "JSON": ("json", "VARCHAR"),
    "BLOB": ("bytea", None),
    "DATE": ("date", None),
    "TIME": ("time", None),
    "TIMESTAMP": ("timestamp", None),
    "TIMESTAMP_S": ("timestamp", "TIMESTAMP"),
    "TIMESTAMP_MS": ("timestamp", "TIMESTAMP"),
    "TIMESTAMP_NS": ("timestamp", "TIMESTAMP"),
    "TIMESTAMP WITH TIME ZONE": ("timestamptz", None),
    "INTERVAL": ("interval", None),
    "UUID": ("text", "VARCHAR"),
    "BIT": ("text", "VARCHAR"),
    "BIGNUM": ("text", "VARCHAR"),
    "VARINT": ("text", "VARCHAR"),
    "TIME WITH TIME ZONE": ("text", "VARCHAR"),
}

# PostgreSQL type (format_type spelling) -> DuckDB type when reading back.
_PG_TO_DUCK: dict[str, str] = {
    "boolean": "BOOLEAN",
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "numeric": "DOUBLE",
    "text": "VARCHAR",
    "json": "JSON",
    "jsonb": "JSON",
    "uuid": "UUID",
    "bytea": "BLOB",
    "date": "DATE",
    "time without time zone": "TIME",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "interval": "INTERVAL",
}
# PostgreSQL types the ADBC reader returns as opaque strings: select them as text, then cast.
_READ_AS_TEXT = ("numeric", "json", "jsonb", "uuid")


@dataclass(frozen=True)
class LoadColumn:
    """One column on its way from DuckDB to PostgreSQL."""

    name: str
    duck_type: str
    pg_type: str
    load_expr: str  # DuckDB expression, already aliased to the quoted column name

    def ddl(self) -> str:
        return f"{quote_ident(self.name)} {self.pg_type}"


def quote_ident(name: str) -> str:
    """Quote an identifier for either engine (both use SQL-standard double quotes)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str) -> str:
    """``schema.table`` -> ``"schema"."table"``."""
    return ".".join(quote_ident(p) for p in table.split(".", 1))


def pg_type_of(duck_type: str) -> str:
    pg, _ = _map(duck_type.strip())
    return pg


def load_columns(described: list[tuple[str, str]]) -> list[LoadColumn]:
    """Plan the PostgreSQL columns and the DuckDB load expressions of a relation's columns."""
    out = []
    for name, duck_type in described:
        pg, cast = _map(duck_type.strip())
        ident = quote_ident(name)
        if cast == "JSON_TEXT":
            expr = f"CAST(to_json({ident}) AS VARCHAR) AS {ident}"
        elif cast:
            expr = f"CAST({ident} AS {cast}) AS {ident}"
        else:
            expr = ident
        out.append(LoadColumn(name, duck_type, pg, expr))
    return out


def load_expr_for(name: str, duck_type: str | None, pg_type: str) -> str:
    """DuckDB expression feeding an existing PostgreSQL column (``None`` type: column absent)."""
    ident = quote_ident(name)
    target = duck_type_of(pg_type)
    if duck_type is None:
        return f"CAST(NULL AS {_loadable(target)}) AS {ident}"
    if pg_type in ("json", "jsonb") or target.startswith("JSON"):
        return f"CAST({ident} AS VARCHAR) AS {ident}"
    return f"CAST({ident} AS {_loadable(target)}) AS {ident}"


def duck_type_of(pg_type: str) -> str:
    """DuckDB type of a PostgreSQL column type as ``format_type`` spells it."""
    t = pg_type.strip().lower()
    if t.endswith("[]"):
        return duck_type_of(t[:-2]) + "[]"
    m = _PG_NUMERIC.match(t.replace(" ", ""))
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        return f"DECIMAL({precision},{scale})" if precision <= 38 else "DOUBLE"
    if _PG_VARCHAR.match(t):
        return "VARCHAR"
    if t.startswith("timestamp") and "with time zone" in t:
        return "TIMESTAMP WITH TIME ZONE"
    if t.startswith("timestamp"):
        return "TIMESTAMP"
    return _PG_TO_DUCK.get(t, "VARCHAR")


def read_select(columns: list[tuple[str, str]]) -> str:
    """PostgreSQL SELECT list that the ADBC reader returns in directly castable types."""
    parts = []
    for name, pg_type in columns:
        ident = quote_ident(name)
        base = pg_type.lower().split("(")[0].rstrip("[]").strip()
        if base in _READ_AS_TEXT:
            suffix = "[]" if pg_type.endswith("[]") else ""
            parts.append(f"{ident}::text{suffix} AS {ident}")
        else:
            parts.append(ident)
    return ", ".join(parts)


def duck_select(columns: list[tuple[str, str]]) -> str:
    """DuckDB SELECT list casting what :func:`read_select` returned to the original types."""
    return ", ".join(
        f"CAST({quote_ident(name)} AS {duck_type_of(pg_type)}) AS {quote_ident(name)}"
        for name, pg_type in columns
    )


def _loadable(duck_type: str) -> str:
    """The DuckDB type whose Arrow form COPY writes correctly for that DuckDB type's PG twin."""
    if duck_type.endswith("[]"):
        return _loadable(duck_type[:-2]) + "[]"
    _, cast = _map(duck_type)
    return cast if cast and cast != "JSON_TEXT" else duck_type


def _map(duck_type: str) -> tuple[str, str | None]:
    """(PostgreSQL type, DuckDB cast or None; 'JSON_TEXT' = serialise to JSON text)."""
    t = duck_type.upper()
    if t in _SCALARS:
        return _SCALARS[t]
    m = _DECIMAL.match(t)
    if m:
        return f"numeric({m.group(1)},{m.group(2)})", None
    if t.startswith("ENUM("):
        return "text", "VARCHAR"
    if t.endswith("[]") and not t[:-2].endswith("]"):
        inner = t[:-2]
        if inner in _SCALARS or _DECIMAL.match(inner) or inner.startswith("ENUM("):
            pg, cast = _map(inner)
            if pg in ("json",):
                return "json", "JSON_TEXT"
            return f"{pg}[]", (f"{cast}[]" if cast else None)
    # Nested lists, STRUCT, MAP, UNION, fixed-size arrays: stored as JSON text.
    return "json", "JSON_TEXT"

"""The engine-specific pieces the models need: ``rh_surrogate_key`` and two text cleaners.

Surrogate keys must be stable across runs, incremental loads and engines, so they are derived
from the natural key only: the first 15 hex digits (60 bits) of its MD5, read as a positive
BIGINT. Both engines compute the same number for the same text (checked by a PostgreSQL test).
Neither spelling transpiles to the other (DuckDB casts a ``0x`` string, PostgreSQL goes through
``bit(60)``), so the models call ``rh_surrogate_key(...)`` and each engine defines it here:
sqlglot leaves the unknown function name untouched when it transpiles a model.

Two text cleaners are defined on both engines as well: ``rh_collapse_spaces(text)`` (runs of
whitespace, no-break spaces included, become one space) and ``rh_clean_id(text)`` (a numeric
id's float tail and leading zeros dropped: ``'017850.0'`` -> ``'17850'``) run their regular
expressions only on the values that need them. A regular expression is the most expensive
expression of a staging model, and almost every value is clean already. The gain is small
because DuckDB evaluates a function once per dictionary entry of a compressed column anyway
(10M transaction rows, ``benchmarks/bench_transform.py``, two alternated pairs:
``fct_customer_activity`` 1.22-1.24 s -> 1.10-1.12 s, the other models within noise); the
functions also keep one spelling of each rule for every staging model. The guard
lists exactly the characters RE2's ``\\s`` matches (space, tab, LF, FF, CR), plus the no-break
space, so the result is the same as the unguarded expression's.
"""

from __future__ import annotations

from typing import Literal

import duckdb

Engine = Literal["duckdb", "postgres"]

SURROGATE_KEY_FUNCTION = "rh_surrogate_key"


def _duckdb_key_expression() -> str:
    """The first 60 bits of the MD5 digest: its first 15 hex digits, parsed as a BIGINT.

    ``nk`` appears once. An earlier spelling read the digest as ``md5_number`` and swapped its
    bytes back with eight shift-and-mask terms: a third cheaper for one key alone (10M keys:
    0.75 s against 1.1 s), but DuckDB hoists the repeated ``md5_number(nk)`` out of the
    expression as a common subexpression, which computes it for every row even inside
    ``coalesce(dimension_key, rh_surrogate_key(nk), 0)``, where it is needed only for the
    rare line a dimension lacks. Measured on the whole star schema at 10M rows
    (``benchmarks/bench_transform.py``, medians of 3, the two spellings alternated twice):
    build 19.1-19.7 s -> 18.3-18.6 s, 36.5-37.5 -> 34.9-35.7 CPU-seconds (fct_sales
    10.5-11.0 -> 10.1-10.3 s, fct_customer_activity 1.7 -> 1.45 s).
    """
    return "cast(('0x' || left(md5(cast(nk as varchar)), 15)) as bigint)"


#: A value with something ``\s+`` would collapse: two spaces, or any other whitespace.
_HAS_SPACE_RUN = (
    "strpos(t, '  ') > 0 or strpos(t, chr(160)) > 0 or strpos(t, chr(9)) > 0 "
    "or strpos(t, chr(10)) > 0 or strpos(t, chr(12)) > 0 or strpos(t, chr(13)) > 0"
)
_COLLAPSE_SPACES = (
    f"case when {_HAS_SPACE_RUN} "
    "then regexp_replace(replace(t, chr(160), ' '), '\\s+', ' ', 'g') else t end"
)
_CLEAN_ID = (
    "case when strpos(t, '.') > 0 or trim(t) like '0%' "
    "then regexp_replace(regexp_replace(trim(t), '\\.0+$', ''), '^0+([0-9])', '\\1') "
    "else trim(t) end"
)

_DEFINITIONS: dict[str, tuple[str, ...]] = {
    "duckdb": (
        # A temp macro lives with the connection, so building never leaves objects behind
        # in the warehouse file.
        f"create or replace temp macro rh_surrogate_key(nk) as {_duckdb_key_expression()}",
        f"create or replace temp macro rh_collapse_spaces(t) as {_COLLAPSE_SPACES}",
        f"create or replace temp macro rh_clean_id(t) as {_CLEAN_ID}",
    ),
    "postgres": (
        "create or replace function rh_surrogate_key(nk text) returns bigint "
        "language sql immutable strict parallel safe as "
        "$$ select ('x' || substr(md5(nk), 1, 15))::bit(60)::bigint $$",
        "create or replace function rh_collapse_spaces(t text) returns text "
        f"language sql immutable strict parallel safe as $$ select {_COLLAPSE_SPACES} $$",
        "create or replace function rh_clean_id(t text) returns text "
        f"language sql immutable strict parallel safe as $$ select {_CLEAN_ID} $$",
    ),
}


def function_definitions(engine: Engine) -> tuple[str, ...]:
    """SQL statements that define the models' helper functions on ``engine``."""
    return _DEFINITIONS[engine]


def install_duckdb_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Define the helper functions on a DuckDB connection (idempotent)."""
    for statement in _DEFINITIONS["duckdb"]:
        con.execute(statement)


def to_postgres(sql: str) -> str:
    """Transpile one statement from the DuckDB dialect it is written in to PostgreSQL.

    Beyond sqlglot's own rules: PostgreSQL rounds to ``n`` places only a ``numeric``
    (``round(double precision, int)`` does not exist), so that argument is cast.
    """
    import sqlglot
    from sqlglot import exp

    def numeric_round(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
            node.set("this", exp.cast(node.this, "DECIMAL"))
        return node

    tree = sqlglot.parse_one(sql, read="duckdb").transform(numeric_round)
    return tree.sql(dialect="postgres", pretty=True)

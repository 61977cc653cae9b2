"""Every rule error before any row moves: bind the compiled SQL without running it.

``DESCRIBE`` plans a statement and reads no row, so an unknown column, a bad expression, a
non-boolean condition, an unusable bound or an RE2-incompatible pattern fails as a
:class:`ConfigError` naming the dataset, the rule and the text. :func:`validate_rules` does the
same with no data at all, for plan time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import duckdb

from retailhub.config.quality import DatasetQualityConfig
from retailhub.quality.compiler import CompiledQuality, Reference, compile_quality, fail
from retailhub.quality.sqltext import TYPE_ERRORS, ident, literal


def describe(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, str]]:
    """(name, type) of a query's columns, planned but not run."""
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {sql}").fetchall()]


def relation_schema(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return dict(describe(con, f"SELECT * FROM {relation}"))


def bind_rules(con: duckdb.DuckDBPyConnection, compiled: CompiledQuality, staged: str) -> None:
    """Bind every rule's SQL against ``staged``; ConfigError naming rule and text on failure."""
    dataset = compiled.dataset
    for check in compiled.row_checks:
        for what, text in check.user_sql:
            try:
                types = describe(con, f"SELECT ({text}) AS v FROM {staged}")
            except duckdb.Error as exc:
                raise fail(
                    dataset, check.info.name, f"{what} {text!r} does not bind: {exc}"
                ) from None
            if types[0][1] not in ("BOOLEAN", '"NULL"', "NULL"):
                raise fail(
                    dataset,
                    check.info.name,
                    f"{what} {text!r} is {types[0][1]}, not a boolean condition",
                )
        if check.self_contained:
            try:
                describe(con, f"SELECT {check.fails}, {check.reason} FROM {staged}")
            except duckdb.Error as exc:
                raise fail(dataset, check.info.name, f"does not bind: {exc}") from None
    for name, sql_type, values in compiled.literal_casts:
        # Constant casts fail only when run, not when bound: try each value on its own.
        for value in values:
            try:
                con.execute(f"SELECT CAST({literal(value)} AS {sql_type})").fetchall()
            except duckdb.Error:
                raise fail(
                    dataset, name, f"value {value!r} is not a valid {sql_type} for its column"
                ) from None
    for name, pattern in compiled.regex_patterns:
        try:
            con.execute(f"SELECT regexp_matches('', {literal(pattern)})").fetchall()
        except duckdb.Error as exc:
            raise fail(dataset, name, f"pattern {pattern!r} is not valid RE2: {exc}") from None
    try:
        checked_schema = describe(con, compiled.scan_select(staged))
    except duckdb.Error as exc:
        raise fail(dataset, None, f"the quality rules do not bind together: {exc}") from None
    # Bind the later statements against an empty table shaped like the scan's output.
    probe = f"__rh_probe_{uuid.uuid4().hex[:12]}"
    body = ", ".join(f"{ident(n)} {t}" for n, t in checked_schema)
    con.execute(f"CREATE TEMP TABLE {probe} ({body})")
    keys = {spec.key for spec in compiled.sample_specs}
    try:
        describe(con, compiled.aggregate_sql(probe))
        rows_sql = compiled.sample_rows_sql(probe, keys)
        if rows_sql:
            describe(con, rows_sql)
            picks = [(key, 0) for key in sorted(keys)]
            describe(con, compiled.sample_values_sql(staged, probe, picks))
    except duckdb.Error as exc:
        raise fail(dataset, None, f"the quality rules do not bind together: {exc}") from None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {probe}")


def has_rowid(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """Whether ``relation`` is a table with DuckDB's ``rowid`` (views have none)."""
    try:
        describe(con, f"SELECT rowid FROM {relation}")
    except duckdb.Error:
        return False
    return True


def validate_rules(
    dataset: str,
    config: DatasetQualityConfig,
    columns: Mapping[str, str],
    reference_columns: Mapping[str, Mapping[str, str]] | None = None,
) -> CompiledQuality:
    """Check a dataset's rules against its canonical schema alone, with no data at all.

    For ``retailhub validate``/plan time: builds empty tables in a private in-memory DuckDB and
    binds everything, so a typo in a column or expression fails before ingestion starts.
    ``columns`` are the canonical columns and SQL types; ``reference_columns`` those of the
    datasets the referential rules point at.
    """
    con = duckdb.connect()
    try:
        staged = _empty_table(con, "__rh_staged", _with_meta(columns))
        references = {
            name: Reference(_empty_table(con, f"__rh_ref_{i}", cols), dict(cols))
            for i, (name, cols) in enumerate((reference_columns or {}).items())
        }
        schema = relation_schema(con, staged)
        compiled = compile_quality(dataset, config, schema, references=references, staged=staged)
        bind_rules(con, compiled, staged)
        return compiled
    finally:
        con.close()


def _with_meta(columns: Mapping[str, str]) -> dict[str, str]:
    out = {
        "_source": "VARCHAR",
        "_source_file": "VARCHAR",
        "_line": "BIGINT",
        "_unit_id": "VARCHAR",
    }
    out = {**dict(columns), **{k: v for k, v in out.items() if k not in columns}}
    out.setdefault(TYPE_ERRORS, "VARCHAR[]")
    return out


def _empty_table(con: duckdb.DuckDBPyConnection, name: str, columns: Mapping[str, str]) -> str:
    body = ", ".join(f"{ident(c)} {t}" for c, t in columns.items())
    con.execute(f"CREATE TABLE {ident(name)} ({body})")
    return ident(name)

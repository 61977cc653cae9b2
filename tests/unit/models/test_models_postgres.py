"""The models are portable: transpiled with sqlglot they build the same tables on PostgreSQL,
and rh_surrogate_key gives the same keys on both engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest
from models_fixtures import CANONICAL, LINEAGE, load_known_sources

from retailhub.models import (
    build_models,
    function_definitions,
    load_models,
    ordered,
    relation_name,
    render_model,
    to_postgres,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PG_TYPES = {"double": "double precision"}


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[object]:
    psycopg = pytest.importorskip("psycopg")
    prefix = f"rh_models_test_{os.getpid()}_"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for statement in function_definitions("postgres"):
            connection.execute(statement)
        try:
            yield connection, prefix
        finally:
            for schema in ("src", "stg", "int", "core"):
                connection.execute(f"drop schema if exists {prefix}{schema} cascade")


def normalise(value: object) -> object:
    """Compare engines by value: DuckDB and PostgreSQL return the same Python types except
    that DECIMAL scale may differ in repr (Decimal('0') vs Decimal('0.0000'))."""
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def test_surrogate_key_is_the_same_on_both_engines(pg):
    connection, _ = pg
    duck = duckdb.connect()
    duck.execute(function_definitions("duckdb")[0])
    samples = ["online|17850", "superstore|CG-12520", "product|85123A", "geo|Côte d'Ivoire||||", ""]
    for sample in samples:
        expected = duck.execute("select rh_surrogate_key(?)", [sample]).fetchall()[0][0]
        got = connection.execute("select rh_surrogate_key(%s)", [sample]).fetchone()[0]
        assert got == expected, sample
        assert 0 <= got < 2**60


def test_text_cleaners_are_the_same_on_both_engines(pg):
    connection, _ = pg
    duck = duckdb.connect()
    for statement in function_definitions("duckdb"):
        duck.execute(statement)
    samples = [
        "two  spaces",
        "no\u00a0break",
        "tab\there\n",
        "plain",
        "",
        "017850.0",
        "12.50",
        "000",
    ]
    for sample in samples:
        expected = duck.execute(
            "select rh_collapse_spaces(?), rh_clean_id(?)", [sample, sample]
        ).fetchall()[0]
        got = connection.execute(
            "select rh_collapse_spaces(%s), rh_clean_id(%s)", [sample, sample]
        ).fetchone()
        assert tuple(got) == tuple(expected), repr(sample)


def test_transpiled_models_build_identical_tables_on_postgres(pg):
    connection, prefix = pg
    duck = duckdb.connect()
    sources = load_known_sources(duck)
    built = {b.name: b for b in build_models(duck, load_models(), sources)}

    for schema in ("src", "stg", "int", "core"):
        connection.execute(f"create schema {prefix}{schema}")
    pg_sources = {}
    for dataset, columns in CANONICAL.items():
        every = {**columns, **LINEAGE}
        ddl = ", ".join(f"{name} {PG_TYPES.get(kind, kind)}" for name, kind in every.items())
        relation = f"{prefix}src.{dataset}"
        connection.execute(f"create table {relation} ({ddl})")
        rows = duck.sql(f"select {', '.join(every)} from {sources[dataset]}").fetchall()
        marks = ", ".join(["%s"] * len(every))
        with connection.cursor() as cursor:
            cursor.executemany(f"insert into {relation} values ({marks})", rows)
        pg_sources[dataset] = relation

    models = ordered(load_models())
    relations = {m.name: relation_name(m, prefix) for m in models}
    for model in models:
        sql = to_postgres(render_model(model, relations, pg_sources))
        connection.execute(f"create table {relations[model.name]} as {sql}")

        columns = [r[0] for r in duck.sql(f"describe {built[model.name].relation}").fetchall()]
        cursor = connection.execute(f"select * from {relations[model.name]}")
        assert [d.name for d in cursor.description] == columns, model.name
        on_postgres = sorted((tuple(map(normalise, r)) for r in cursor.fetchall()), key=repr)
        on_duckdb = sorted(
            (
                tuple(map(normalise, r))
                for r in duck.sql(f"select * from {built[model.name].relation}").fetchall()
            ),
            key=repr,
        )
        assert on_postgres == on_duckdb, model.name

"""Every built-in model's sidecar describes exactly the table it builds, and every model is
written so that sqlglot can transpile it to PostgreSQL."""

from __future__ import annotations

import re

import pytest

from retailhub.models import build_models, load_models, relation_name, render_model, to_postgres

MODELS = load_models()


def test_every_builtin_model_has_a_complete_sidecar():
    for model in MODELS:
        spec = model.spec
        assert model.sql_path.with_suffix(".yml").is_file(), model.name
        assert spec["description"] and spec["grain"], model.name
        assert spec["schema"] in {"stg", "int", "core"}, model.name
        for column in spec["columns"]:
            assert column.get("type") and column.get("description"), (model.name, column)


def test_sidecar_columns_and_types_match_the_built_tables(con, known_sources):
    built = {b.name: b for b in build_models(con, MODELS, known_sources)}
    for model in MODELS:
        actual = [
            (name, kind.replace(" ", ""))
            for name, kind, *_ in con.sql(f"describe {built[model.name].relation}").fetchall()
        ]
        declared = [(c["name"], c["type"].replace(" ", "")) for c in model.spec["columns"]]
        assert actual == declared, model.name


def test_keys_are_declared_unique_and_facts_reference_every_dimension():
    specs = {m.name: m.spec for m in MODELS}
    for name in ("dim_date", "dim_customer", "dim_product", "dim_geography", "dim_channel"):
        key = specs[name]["columns"][0]
        assert key["name"].endswith("_key") and {"unique", "not_null"} <= set(key["tests"]), name
    fact_refs = {
        test["relationships"]["to"]
        for column in specs["fct_sales"]["columns"]
        for test in column.get("tests", [])
        if isinstance(test, dict)
    }
    assert fact_refs == {"dim_date", "dim_customer", "dim_product", "dim_geography", "dim_channel"}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_model_sql_follows_the_house_style_and_transpiles_to_postgres(model):
    assert _only_literals_upper(model.sql), model.name
    relations = {m.name: relation_name(m) for m in MODELS}
    sources = {s: f"src.{s}" for m in MODELS for s in m.sources}
    sql = to_postgres(render_model(model, relations, sources))
    # DuckDB-only functions must not survive into the PostgreSQL text
    for duckdb_only in ("REGEXP_MATCHES", "QUALIFY", "LIST(", "STRFTIME", "ARG_MAX", "MD5_NUMBER"):
        assert duckdb_only not in sql.upper(), (model.name, duckdb_only)


def _only_literals_upper(sql: str) -> bool:
    """Upper case is allowed only inside string literals and comments."""
    code = re.sub(r"'([^']|'')*'", "''", sql)
    code = re.sub(r"--[^\n]*", "", code)
    return code == code.lower()

"""The model runner: loading, ordering, rendering, building, column tests and lineage."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from retailhub.errors import ConfigError, ModelError
from retailhub.models import (
    BuiltModel,
    build_models,
    built_relation,
    lineage_edges,
    load_model,
    load_models,
    ordered,
    test_models,
)
from retailhub.models.graph import BUILTIN_DIR


def write_model(directory: Path, name: str, sql: str, sidecar: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.sql"
    path.write_text(textwrap.dedent(sql), encoding="utf-8")
    if sidecar is not None:
        (directory / f"{name}.yml").write_text(textwrap.dedent(sidecar), encoding="utf-8")
    return path


def test_builtin_models_load_with_their_sidecars():
    models = {m.name: m for m in load_models()}
    assert {
        "stg_online_retail",
        "stg_superstore",
        "stg_product_catalog",
        "stg_customer_behaviour",
        "int_sales_lines",
        "int_products",
        "int_customers",
        "dim_date",
        "dim_customer",
        "dim_product",
        "dim_geography",
        "dim_channel",
        "fct_sales",
        "fct_customer_activity",
    } <= set(models)
    for model in models.values():
        assert model.spec["name"] == model.name
        assert model.spec["grain"], model.name
        assert model.materialized in {"table", "view"}, model.name
        if model.schema == "core":  # published by copying: the marts must be stored
            assert model.materialized == "table", model.name
        assert model.schema == {"stg": "stg", "int": "int"}.get(model.name[:3], "core")
        assert model.sql_path.is_relative_to(BUILTIN_DIR)
    assert models["fct_sales"].depends_on == (
        "int_sales_lines",
        "int_products",
        "int_places",
        "dim_channel",
    )
    assert models["stg_online_retail"].sources == ("online_retail",)


def test_ordered_puts_dependencies_first_deterministically():
    models = load_models()
    names = [m.name for m in ordered(models)]
    assert names == [m.name for m in ordered(reversed(models))]
    position = {name: i for i, name in enumerate(names)}
    for model in models:
        for dep in model.depends_on:
            assert position[dep] < position[model.name]


def test_cycle_is_named(tmp_path):
    write_model(tmp_path, "a", "select * from {{ ref('c') }}")
    write_model(tmp_path, "b", "select * from {{ ref('a') }}")
    write_model(tmp_path, "c", "select * from {{ ref('b') }}")
    write_model(tmp_path, "d", "select 1 as x")
    models = [load_model(p) for p in sorted(tmp_path.glob("*.sql"))]
    with pytest.raises(ModelError, match=r"cycle: a -> c -> b -> a"):
        ordered(models)


def test_unknown_ref_names_the_model_and_the_missing_ref(tmp_path):
    path = write_model(tmp_path, "lonely", "select * from {{ ref('nowhere') }}")
    with pytest.raises(ModelError, match=r"'lonely'.*refs unknown model 'nowhere'") as info:
        ordered([load_model(path)])
    assert info.value.context["file"] == str(path)


def test_duplicate_model_name_names_both_files(tmp_path):
    write_model(tmp_path / "one", "fct_sales", "select 1 as x")
    with pytest.raises(ModelError, match="defined twice") as info:
        load_models([tmp_path / "one"])
    assert "marts/fct_sales.sql" in str(info.value)
    assert str(tmp_path / "one" / "fct_sales.sql") in str(info.value)


def test_missing_model_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_models([tmp_path / "missing"])


def test_unsupported_template_tag_is_rejected_at_load(tmp_path):
    path = write_model(tmp_path, "jinja", "select {{ var('x') }} as x")
    with pytest.raises(ModelError, match="unsupported template tag"):
        load_model(path)


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ("name: other\n", "key 'name'"),
        ("materialized: incremental\n", "key 'materialized'"),
        ("schema: Core-X\n", "key 'schema'"),
        ("columns:\n  - name: x\n    tests: [unique, primary]\n", "unknown test 'primary'"),
        ("columns:\n  - name: x\n    tests:\n      - relationships: {to: y}\n", "relationships"),
        ("columns: [\n", "invalid YAML"),
    ],
)
def test_bad_sidecar_names_file_and_key(tmp_path, sidecar, message):
    path = write_model(tmp_path, "m", "select 1 as x", sidecar)
    with pytest.raises(ModelError, match=message) as info:
        load_model(path)
    assert str(path.with_suffix(".yml")) in str(info.value)


def test_project_model_builds_on_top_of_builtins_with_prefix_and_progress(
    tmp_path, con, known_sources
):
    write_model(
        tmp_path,
        "mart_country_revenue",
        """
        select g.country, sum(f.net_amount) as net_amount
        from {{ ref('fct_sales') }} as f
        join {{ ref('dim_geography') }} as g on f.geography_key = g.geography_key
        group by g.country;
        """,
        "schema: mart\ncolumns:\n  - name: country\n    tests: [unique, not_null]\n",
    )
    messages: list[str] = []
    built = build_models(
        con, load_models([tmp_path]), known_sources, schema_prefix="run1_", progress=messages.append
    )
    by_name = {b.name: b for b in built}
    mart = by_name["mart_country_revenue"]
    assert mart.relation == "run1_mart.mart_country_revenue"
    assert mart.rows == 4  # United Kingdom, Ireland, United States, Unknown
    assert by_name["fct_sales"].relation == "run1_core.fct_sales"
    assert len(messages) == len(built)
    assert messages[-1].startswith("built run1_mart.mart_country_revenue (4 rows")
    assert test_models(con, built) == []


def test_materialisation_can_change_between_builds(tmp_path, con):
    """A view model is a temporary view, a table model a table in the prefix's catalog; each
    build drops what an earlier build of the other kind left, and both read the same rows."""
    con.execute("attach ':memory:' as work")
    con.execute("create schema raw")
    con.execute("create table raw.numbers as select * from range(5) as t (n)")
    # like the pipeline's sources: a temp view over a schema-qualified table of the main db
    con.execute("create temp view current_numbers as select * from raw.numbers")
    sql = "select n * 2 as doubled from {{ source('numbers') }}"
    kinds = """
        select
            (select count(*) from duckdb_tables()
             where database_name = 'work' and table_name = 'stg_numbers'),
            (select count(*) from duckdb_views() where temporary
             and view_name = 'work__stg__stg_numbers')
    """
    sums = {}
    for kind in ("table", "view", "table"):
        write_model(tmp_path, "stg_numbers", sql, f"materialized: {kind}\n")
        model = load_model(tmp_path / "stg_numbers.sql")
        built = build_models(con, [model], {"numbers": "current_numbers"}, schema_prefix="work.")
        assert (built[0].materialized, built[0].rows) == (kind, 5)
        expected = {"table": "work.stg.stg_numbers", "view": "temp.main.work__stg__stg_numbers"}
        assert built[0].relation == built_relation(model, "work.") == expected[kind]
        assert con.sql(kinds).fetchall() == [(1, 0) if kind == "table" else (0, 1)]
        sums[kind] = con.sql(f"select sum(doubled) from {built[0].relation}").fetchall()
    assert sums == {"table": [(20,)], "view": [(20,)]}


def test_build_settings_are_restored_after_a_build_and_a_failure(tmp_path, con, known_sources):
    """The runner relaxes DuckDB settings while it builds; whoever owns the connection gets
    them back, also when a model fails."""
    settings = "select name, value from duckdb_settings() where name in (?, ?) order by name"
    names = ["disabled_compression_methods", "preserve_insertion_order"]
    before = con.execute(settings, names).fetchall()
    build_models(con, load_models(), known_sources)
    assert con.execute(settings, names).fetchall() == before
    with pytest.raises(ModelError, match="broken"):
        build_models(con, [load_model(write_model(tmp_path, "broken", "select nope"))], {})
    assert con.execute(settings, names).fetchall() == before


def test_column_tests_run_on_views(tmp_path, con):
    write_model(
        tmp_path,
        "stg_labels",
        "select * from (values (1, 'a'), (1, null)) as t (id, label)",
        """
        materialized: view
        columns:
          - name: id
            tests: [unique]
          - name: label
            tests: [not_null]
        """,
    )
    built = build_models(con, [load_model(tmp_path / "stg_labels.sql")], {})
    assert built[0].materialized == "view"
    failures = {(f.column, f.test): f.failing_rows for f in test_models(con, built)}
    assert failures == {("id", "unique"): 2, ("label", "not_null"): 1}


def test_failing_sql_names_model_file_and_engine_error(tmp_path, con, known_sources):
    path = write_model(tmp_path, "broken", "select no_such_column from {{ ref('fct_sales') }}")
    with pytest.raises(ModelError, match="model 'broken'") as info:
        build_models(con, load_models([tmp_path]), known_sources)
    assert str(path) in str(info.value)
    assert "no_such_column" in str(info.value)
    assert info.value.context["model"] == "broken"


def test_missing_source_relation_is_named(con):
    with pytest.raises(ModelError, match="sources not provided: customer_behaviour, online_retail"):
        build_models(con, load_models(), {"superstore": "x", "product_catalog": "y"})
    assert con.sql("select count(*) from duckdb_tables()").fetchall() == [(0,)]  # nothing built


def test_bad_schema_prefix_is_rejected(con, known_sources):
    with pytest.raises(ModelError, match="schema prefix"):
        build_models(con, load_models(), known_sources, schema_prefix="x; drop")
    with pytest.raises(ModelError, match="schema prefix"):
        build_models(con, load_models(), known_sources, schema_prefix="a.b.")


def test_column_test_failures_report_counts_and_samples(tmp_path, con: duckdb.DuckDBPyConnection):
    write_model(
        tmp_path,
        "parent",
        "select * from (values (1), (2)) as t (id)",
    )
    write_model(
        tmp_path,
        "child",
        "select * from (values (1, 'a'), (1, null), (3, 'c')) as t (id, label)",
        """
        columns:
          - name: id
            tests: [unique, {relationships: {to: parent, field: id}}]
          - name: label
            tests: [not_null]
          - name: gone
            tests: [not_null]
        """,
    )
    models = [load_model(p) for p in sorted(tmp_path.glob("*.sql"))]
    failures = {(f.column, f.test): f for f in test_models(con, build_models(con, models, {}))}
    assert set(failures) == {
        ("id", "unique"),
        ("id", "relationships"),
        ("label", "not_null"),
        ("gone", "not_null"),
    }
    assert failures["id", "unique"].failing_rows == 2
    assert failures["id", "unique"].sample == (1,)
    assert failures["id", "relationships"].failing_rows == 1
    assert failures["id", "relationships"].sample == (3,)
    assert failures["label", "not_null"].failing_rows == 1
    assert failures["gone", "not_null"].detail == "no such column"
    assert "core.child.id: unique failed for 2 rows" in str(failures["id", "unique"])


def test_lineage_edges_follow_refs_and_sources():
    built = [
        BuiltModel("stg_a", "stg.stg_a", 10, 0.1, (), ("a",)),
        BuiltModel("fct_b", "core.fct_b", 7, 0.1, ("stg_a",), ()),
    ]
    assert lineage_edges(built) == [("source:a", "stg_a", 10), ("stg_a", "fct_b", 7)]


def test_real_lineage_reaches_fct_sales_from_both_sales_sources(con, known_sources):
    edges = lineage_edges(build_models(con, load_models(), known_sources))
    upstream: dict[str, set[str]] = {}
    for source, target, _rows in edges:
        upstream.setdefault(target, set()).add(source)

    def ancestors(name: str) -> set[str]:
        found = set()
        for parent in upstream.get(name, ()):
            found |= {parent} | ancestors(parent)
        return found

    assert {"source:online_retail", "source:superstore", "source:product_catalog"} <= ancestors(
        "fct_sales"
    )


def test_catalog_prefix_builds_into_an_attached_database(con, known_sources):
    con.execute("attach ':memory:' as work")
    built = {
        b.name: b for b in build_models(con, load_models(), known_sources, schema_prefix="work.")
    }
    assert built["fct_sales"].relation == "work.core.fct_sales"
    assert built["fct_sales"].schema == "core"
    assert built["stg_superstore"].schema == "stg"
    assert con.sql("select count(*) from work.core.fct_sales").fetchall() == [(11,)]
    assert test_models(con, list(built.values())) == []


def test_a_failing_model_is_reported_by_the_names_its_sql_uses(tmp_path):
    """Tables placed under the run's staging names must not leak into the message: the user
    wrote ``ref('base')``, not ``core._rh_stage_<run>__base``."""
    write_model(tmp_path, "base", "select 1 as x")
    path = write_model(tmp_path, "uses_base", "select nope from {{ ref('base') }}")
    con = duckdb.connect()
    models = [load_model(p) for p in sorted(tmp_path.glob("*.sql"))]
    staged = {"base": "main._rh_stage_20261207t215048_f718b7__base"}
    with pytest.raises(ModelError) as info:
        build_models(con, models, {}, locations=staged)
    message = str(info.value)
    assert f"model 'uses_base' ({path}) failed" in message
    assert "nope" in message and "_rh_stage_" not in message

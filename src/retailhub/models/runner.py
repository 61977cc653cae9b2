"""Materialise the models as tables in DuckDB, in dependency order.

Each model becomes ``create or replace table <prefix><schema>.<name> as <sql>``: a model is
rebuilt whole from its inputs, so running twice gives the same tables. A prefix lets the
pipeline build into staging schemas and publish atomically afterwards.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from retailhub.errors import ModelError
from retailhub.models.dialect import install_duckdb_functions
from retailhub.models.graph import Model, ordered
from retailhub.models.template import render

log = logging.getLogger(__name__)

# A schema-name prefix ("tmp_"), a catalog qualifier ("work.": the run's scratch database),
# or both ("work.tmp_").
PREFIX = re.compile(r"^([a-z_][a-z0-9_]*\.)?[a-z0-9_]*$")


@dataclass
class BuiltModel:
    """What one model build produced: the table, its size and where its rows came from."""

    name: str
    relation: str
    rows: int
    seconds: float
    depends_on: tuple[str, ...]
    sources: tuple[str, ...]
    spec: dict[str, Any] = field(default_factory=dict, repr=False)
    schema: str = ""


def relation_name(model: Model, schema_prefix: str = "") -> str:
    """The qualified table a model is built into."""
    return f"{schema_prefix}{model.schema}.{model.name}"


def render_model(
    model: Model,
    relations: Mapping[str, str],
    source_relations: Mapping[str, str],
) -> str:
    """The model's SQL with every tag replaced by a relation (ModelError for unknown names)."""

    def ref(name: str) -> str:
        if name not in relations:
            raise ModelError(
                f"model '{model.name}' ({model.sql_path}) refs '{name}', which is not built",
                model=model.name,
                file=str(model.sql_path),
            )
        return relations[name]

    def source(name: str) -> str:
        if name not in source_relations:
            raise ModelError(
                f"model '{model.name}' ({model.sql_path}) reads source '{name}', "
                f"which was not provided (have: {', '.join(sorted(source_relations)) or 'none'})",
                model=model.name,
                file=str(model.sql_path),
                source=name,
            )
        return source_relations[name]

    return render(model.sql, ref, source).strip().rstrip(";")


def _check_sources(plan: list[Model], source_relations: Mapping[str, str]) -> None:
    """Fail before building anything when a source is missing, naming every one of them."""
    needed: dict[str, Model] = {}
    for model in plan:
        for source in model.sources:
            needed.setdefault(source, model)
    missing = sorted(set(needed) - set(source_relations))
    if missing:
        first = needed[missing[0]]
        raise ModelError(
            f"sources not provided: {', '.join(missing)} (needed by "
            + ", ".join(f"'{needed[s].name}'" for s in missing)
            + f"; have: {', '.join(sorted(source_relations)) or 'none'})",
            model=first.name,
            file=str(first.sql_path),
            source=missing[0],
        )


def build_models(
    con: duckdb.DuckDBPyConnection,
    models: Iterable[Model],
    source_relations: Mapping[str, str],
    *,
    schema_prefix: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[BuiltModel]:
    """Build every model as a table; stop at the first failure with a ModelError naming it."""
    if not PREFIX.match(schema_prefix):
        raise ModelError(
            f"schema prefix '{schema_prefix}' must be a name prefix ('tmp_'), "
            "a catalog ('work.') or both ('work.tmp_')"
        )
    plan = ordered(models)
    _check_sources(plan, source_relations)
    install_duckdb_functions(con)
    relations = {m.name: relation_name(m, schema_prefix) for m in plan}
    built: list[BuiltModel] = []
    for schema in sorted({f"{schema_prefix}{m.schema}" for m in plan}):
        con.execute(f"create schema if not exists {schema}")
    for model in plan:
        relation = relations[model.name]
        sql = render_model(model, relations, source_relations)
        started = time.perf_counter()
        try:
            con.execute(f"create or replace table {relation} as\n{sql}")
            row = con.sql(f"select count(*) from {relation}").fetchall()[0]
        except duckdb.Error as exc:
            raise ModelError(
                f"model '{model.name}' ({model.sql_path}) failed: {exc}",
                model=model.name,
                file=str(model.sql_path),
                table=relation,
            ) from exc
        seconds = time.perf_counter() - started
        rows = int(row[0]) if row else 0
        built.append(
            BuiltModel(
                name=model.name,
                relation=relation,
                rows=rows,
                seconds=seconds,
                depends_on=model.depends_on,
                sources=model.sources,
                spec=model.spec,
                schema=model.schema,
            )
        )
        log.info("built %s: %d rows in %.2f s", relation, rows, seconds)
        if progress is not None:
            progress(f"built {relation} ({rows:,} rows, {seconds:.2f} s)")
    return built


def lineage_edges(built: Iterable[BuiltModel]) -> list[tuple[str, str, int]]:
    """(upstream, model, rows of the model) for every input of every built model.

    Upstream is another model's name or ``source:<dataset>``; rows is the row count of the
    downstream table, which is what a lineage view shows on the edge.
    """
    edges: list[tuple[str, str, int]] = []
    for model in built:
        edges.extend((f"source:{s}", model.name, model.rows) for s in model.sources)
        edges.extend((d, model.name, model.rows) for d in model.depends_on)
    return edges

"""Names of the relations steps hand to each other inside the compute connection."""

from __future__ import annotations

from pathlib import Path

from retailhub.pipeline.context import RunContext, work
from retailhub.pipeline.plan import INGEST, datasets_of
from retailhub.sources.layout import get_layout
from retailhub.warehouse.base import files_predicate

META_COLUMNS = {
    "_source": "varchar",
    "_source_file": "varchar",
    "_line": "bigint",
    "_unit_id": "varchar",
}


def table_exists(ctx: RunContext, qualified: str) -> bool:
    """Whether the table ``[catalog.]schema.name`` exists (no catalog: the warehouse's)."""
    *catalog, schema, name = qualified.split(".")
    database = "?" if catalog else "current_database()"
    rows = ctx.con.execute(
        f"select count(*) from duckdb_tables() where database_name = {database} "
        "and schema_name = ? and table_name = ?",
        [*catalog, schema, name],
    ).fetchall()
    return bool(rows[0][0])


def accepted_table(ctx: RunContext, dataset: str) -> str:
    """Where this run's accepted batch of ``dataset`` is built: in the warehouse's staging
    table for ``raw.<dataset>`` when it has one (published by a rename), else in scratch."""
    return ctx.staging_table(f"raw.{dataset}") or work("accepted", dataset)


def empty_dataset_sql(layout: str, project_dir: Path | None = None) -> str:
    """A zero-row SELECT with the canonical columns of ``layout`` (for absent datasets)."""
    cols = [f"cast(null as {c.type}) as {c.name}" for c in get_layout(layout, project_dir).columns]
    cols += [f"cast(null as {t}) as {n}" for n, t in META_COLUMNS.items()]
    return f"select {', '.join(cols)} where false"


def replaced_files(ctx: RunContext, dataset: str) -> list[tuple[str, str]]:
    """(source, file) of every changed file this run ingests as a correction of ``dataset``:
    the rows its earlier version brought are no longer part of the history."""
    return [
        (source, str(uri))
        for source in datasets_of(ctx.settings).get(dataset, [])
        for uri in ctx.payload(f"{INGEST}:{source}").get("replaces", [])
    ]


def without_files(relation: str, files: list[tuple[str, str]]) -> str:
    """A SELECT of ``relation`` leaving out the rows of ``files`` ((_source, _source_file))."""
    if not files:
        return f"select * from {relation}"
    return f"select * from {relation} where not coalesce({files_predicate(files)}, false)"


def current_relation(ctx: RunContext, dataset: str, layout: str | None = None) -> str:
    """All accepted rows of ``dataset``: the published history (less the rows of files this
    run replaces with a corrected version) plus this run's batch.

    A temporary view, so nothing is copied and a resumed run simply recreates it.
    """
    parts = []
    history = ctx.warehouse.history_relation(f"raw.{dataset}")
    if history:
        kept = without_files(history, replaced_files(ctx, dataset))
        parts.append(f"select * exclude (_run_id) from ({kept})")
    accepted = accepted_table(ctx, dataset)
    if table_exists(ctx, accepted):
        parts.append(f"select * from {accepted}")
    if not parts:
        parts.append(empty_dataset_sql(layout or dataset, ctx.project.root))
    view = f"current_{dataset}"
    ctx.con.execute(f"create or replace temp view {view} as " + " union all by name ".join(parts))
    return view

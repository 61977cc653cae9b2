"""Run one dataset's quality rules: split the batch into accepted and quarantined rows.

Statements executed, in order (the one-scan design; see :mod:`retailhub.quality.compiler`):

1. ``DESCRIBE`` of the staged table and of each referenced relation (metadata only);
2. binding checks (``DESCRIBE`` of every rule's SQL: plans, reads no row);
3. ``CREATE TEMP TABLE checked AS ...``: the one statement that evaluates every rule on the
   staged table (uniqueness also hashes its key columns there, see ``checks.row``);
4. one aggregate ``SELECT`` over ``checked``, then one ``SELECT`` of the samples (first 5 failing
   rows of each failing rule; skipped when nothing failed);
5. ``CREATE OR REPLACE TABLE quarantine ...`` from ``checked``; then the accepted rows: when the
   caller hands the staged table over as the accepted one, the quarantined rows are deleted from
   it and ``_type_errors`` dropped (no copy: copying a wide batch costs as much as typing it),
   else ``CREATE OR REPLACE TABLE accepted ...``;
6. ``count(*)`` for the accounting invariant, then ``DROP`` of ``checked``.

The gate never raises on a failed rule: it reports. The pipeline decides what blocks with
:attr:`QualityOutcome.blocking_failures` (or :func:`raise_for_gate`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from retailhub.config.quality import DatasetQualityConfig
from retailhub.engine_settings import unordered_writes
from retailhub.errors import AccountingError, QualityGateFailed
from retailhub.quality.binding import bind_rules, has_rowid, relation_schema
from retailhub.quality.checks import Env
from retailhub.quality.compiler import CompiledQuality, Reference, compile_quality
from retailhub.quality.results import QualityOutcome, RuleResult

__all__ = [
    "QualityContext",
    "QualityOutcome",
    "RuleResult",
    "raise_for_gate",
    "run_quality",
]

log = logging.getLogger(__name__)


@dataclass
class QualityContext:
    """Everything about the run that the rules need besides the rows themselves."""

    run_id: str
    #: dataset -> DuckDB relation holding ALL its accepted rows (history + this batch), for
    #: referential rules. The checked dataset's own entry holds only its published history
    #: (earlier runs): its referential rules also see the staged batch, and its uniqueness
    #: rules marked ``across_runs`` fail a batch row whose key is already published.
    reference_tables: dict[str, str] = field(default_factory=dict)
    #: (uri, modified_at) of the files landed this run, for freshness on files.
    file_times: list[tuple[str, datetime]] = field(default_factory=list)
    #: (uri, rows read) of the files landed this run.
    file_rows: list[tuple[str, int]] = field(default_factory=list)
    #: Accepted rows of the previous successful run, for volume change.
    previous_rows: int | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))


def run_quality(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    staged_table: str,
    rules: DatasetQualityConfig,
    ctx: QualityContext,
    *,
    accepted_table: str,
    quarantine_table: str,
) -> QualityOutcome:
    """Check ``staged_table`` and write ``accepted_table`` and ``quarantine_table``.

    ``staged_table`` holds the canonical typed columns plus ``_source``, ``_source_file``,
    ``_line``, ``_unit_id`` and ``_type_errors VARCHAR[]``. The accepted table gets the same
    columns minus ``_type_errors``; the quarantine table the accepted columns plus ``_run_id``,
    ``reasons VARCHAR[]`` (every rule the row failed, type errors first) and ``quarantined_at``.
    Both are replaced; ``accepted_table == staged_table`` (a table) splits in place: the staged
    table loses its quarantined rows and becomes the accepted one. Raises ConfigError before
    any data moves when a rule does not fit the data, and AccountingError if input !=
    accepted + quarantined.
    """
    work: list[str] = []
    in_place = accepted_table == staged_table
    try:
        source = staged_table
        if not has_rowid(con, staged_table):
            if in_place:
                raise ValueError(f"{staged_table} is not a table: it cannot be split in place")
            # The checks match rows back by rowid, which only tables have: copy a view once.
            source = f"__rh_staged_{uuid.uuid4().hex[:12]}"
            con.execute(f"CREATE TEMP TABLE {source} AS SELECT * FROM {staged_table}")
            work.append(source)
        schema = relation_schema(con, source)
        references = {
            name: Reference(relation, relation_schema(con, relation))
            for name, relation in ctx.reference_tables.items()
            if _referenced(rules, name)
        }
        compiled = compile_quality(
            dataset,
            rules,
            schema,
            references=references,
            staged=source,
            history=_history(con, ctx.reference_tables.get(dataset)),
        )
        bind_rules(con, compiled, source)

        checked = f"__rh_checked_{uuid.uuid4().hex[:12]}"
        work.append(checked)
        with unordered_writes(con):
            con.execute(compiled.scan_sql(source, checked))
            agg = _fetch_dict(con, compiled.aggregate_sql(checked))
            samples = _fetch_samples(con, compiled, source, checked, agg)
            input_rows = _count(con, source)
            at = _naive_utc(ctx.now)
            con.execute(compiled.quarantine_sql(source, checked, quarantine_table, ctx.run_id, at))
            if in_place:
                for statement in compiled.accept_in_place_sql(source, checked):
                    con.execute(statement)
            else:
                con.execute(compiled.accepted_sql(source, checked, accepted_table))
            accepted = _count(con, accepted_table)
            quarantined = _count(con, quarantine_table)
    finally:
        for table in reversed(work):
            con.execute(f"DROP TABLE IF EXISTS {table}")

    if input_rows != accepted + quarantined or agg["__rh_accepted"] != accepted:
        raise AccountingError(
            f"dataset '{dataset}': {input_rows:,} input rows but {accepted:,} accepted + "
            f"{quarantined:,} quarantined (staged {staged_table}, accepted {accepted_table}, "
            f"quarantine {quarantine_table})",
            dataset=dataset,
            table=staged_table,
        )
    env = Env(
        run_id=ctx.run_id,
        dataset=dataset,
        total_rows=input_rows,
        accepted_rows=accepted,
        now=ctx.now,
        file_times=ctx.file_times,
        file_rows=ctx.file_rows,
        previous_rows=ctx.previous_rows,
    )
    results = [r for check in compiled.checks for r in check.results(agg, samples, env)]
    outcome = QualityOutcome(
        dataset=dataset,
        input_rows=input_rows,
        accepted_rows=accepted,
        quarantined_rows=quarantined,
        accepted_table=accepted_table,
        quarantine_table=quarantine_table,
        results=results,
    )
    log.info(
        "quality %s: %d in, %d accepted, %d quarantined, score %.2f, %d blocking",
        dataset,
        input_rows,
        accepted,
        quarantined,
        outcome.score,
        len(outcome.blocking_failures),
    )
    return outcome


def _history(con: duckdb.DuckDBPyConnection, relation: str | None) -> Reference | None:
    return Reference(relation, relation_schema(con, relation)) if relation else None


def raise_for_gate(outcomes: Iterable[QualityOutcome]) -> None:
    """Raise QualityGateFailed naming every dataset and rule that blocks publication."""
    blocking = [(o.dataset, r) for o in outcomes for r in o.blocking_failures]
    if not blocking:
        return
    lines = "; ".join(f"{ds}.{r.rule}: {r.message}" for ds, r in blocking)
    raise QualityGateFailed(
        f"quality gate failed, nothing published: {lines}",
        datasets=sorted({ds for ds, _ in blocking}),
        rules=[f"{ds}.{r.rule}" for ds, r in blocking],
    )


def _referenced(rules: DatasetQualityConfig, dataset: str) -> bool:
    return any(
        getattr(getattr(rule, "references", None), "dataset", None) == dataset
        for rule in rules.rules
    )


def _fetch_dict(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, object]:
    rel = con.sql(sql)
    names = rel.columns
    row = rel.fetchall()[0]
    return dict(zip(names, row, strict=True))


def _fetch_samples(
    con: duckdb.DuckDBPyConnection,
    compiled: CompiledQuality,
    staged: str,
    checked: str,
    agg: dict[str, object],
) -> dict[str, list[dict[str, Any]]]:
    """First failing rows (in staged order) of every check that failed at all.

    Two small statements: pick up to 5 row ids per failing check from the narrow checked
    table, then read those rows' file, line, reason and values from the staged table.
    """
    failing = {spec.key for spec in compiled.sample_specs if agg.get(f"{spec.key}_fail")}
    rows_sql = compiled.sample_rows_sql(checked, failing) if failing else None
    if rows_sql is None:
        return {}
    picks = [(key, int(rid)) for key, rid in con.execute(rows_sql).fetchall()]
    if not picks:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    fetched = con.execute(compiled.sample_values_sql(staged, checked, picks)).fetchall()
    for key, file, line, reason, values in sorted(fetched, key=_sample_order):
        entry = {"file": file, "line": line, "reason": reason, "values": json.loads(values)}
        out.setdefault(key, []).append(entry)
    return out


def _sample_order(row: tuple[Any, ...]) -> tuple[str, str, int]:
    key, file, line = row[0], row[1], row[2]
    return (key, file or "", line if line is not None else -1)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)

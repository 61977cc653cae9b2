"""Land the new input units of one source in the run's scratch database.

Only units the ledger has not seen (by checksum, or past the stored watermark) are read,
which is what makes re-running on unchanged files a no-op.
"""

from __future__ import annotations

import logging

from retailhub.config.sources import SourceConfig
from retailhub.errors import ConfigError, SourceError
from retailhub.pipeline.context import RunContext, TaskOutput, work
from retailhub.pipeline.plan import Task
from retailhub.sources import InputUnit, SourceState, build_source
from retailhub.sources.base import StoredWindow
from retailhub.sources.landing import clean_column_names, land
from retailhub.sources.layout import get_layout
from retailhub.warehouse.ledger import Ledger

#: Source types whose every unit declares its columns (checked against the layout per unit).
HEADED_SOURCES = ("csv", "parquet")

log = logging.getLogger(__name__)


def run(ctx: RunContext, task: Task) -> TaskOutput:
    name = task.target or ""
    cfg = ctx.settings.sources[name]
    source = build_source(cfg, ctx.project.root)
    ledger = Ledger(ctx.warehouse)
    _refuse_moved_dataset(cfg, ledger)
    known = ledger.ingested_files(name)
    stored = ledger.last_watermark(name)
    window = None
    if stored is not None and stored.fingerprints is not None:
        window = StoredWindow(stored.window_start, stored.fingerprints)
    state = SourceState(
        ingested_checksums=ledger.ingested_checksums(name),
        last_watermark=stored.watermark if stored else None,
        watermark_uri=stored.uri if stored else None,
        watermark_window=window,
        latest_checksums={uri: checksum for uri, (checksum, _run) in known.items()},
    )
    units = source.discover(state)
    changed = [u for u in units if u.checksum and u.replaces in known]
    if changed and getattr(cfg, "on_changed_file", "refuse") == "replace":
        for unit in changed:
            log.info(
                "source %s: %s changed since run %s: its rows replace the earlier version's",
                name,
                unit.uri,
                known[str(unit.replaces)][1],
            )
    else:
        _refuse_changed_files(name, changed, known)
    snapshot = getattr(cfg, "mode", None) == "snapshot" and bool(units)
    earlier_snapshots = ledger.ingested_units(name) if snapshot else {}
    table = work("landing", name)
    ctx.con.execute(f"drop table if exists {table}")
    ctx.progress.task_started(task.name, total=None)
    layout = get_layout(cfg.layout, ctx.project.root)

    def check_columns(unit: InputUnit, header: list[str]) -> None:
        # A CSV header or a Parquet schema is fixed per file, so a column it lacks is a defect
        # of that file. JSON records (files, API pages) simply omit keys that are null.
        if cfg.type in HEADED_SOURCES and not layout.is_pass_through:
            layout.check_header(header, cfg.columns, source=name, origin=unit.uri)
            layout.resolve(clean_column_names(header), cfg.columns, source=name, origin=unit.uri)

    landed = land(
        ctx.con,
        source,
        units,
        table,
        progress=lambda rows: ctx.progress.task_advanced(task.name, rows),
        check_columns=check_columns,
    )
    if snapshot and _unchanged_snapshot(name, landed, earlier_snapshots):
        ctx.con.execute(f"drop table if exists {table}")
        landed, earlier_snapshots = [], {}
    elif snapshot:
        _refuse_empty_snapshot(cfg, landed, earlier_snapshots)
        for uri, (run_id, _rows, _checksum) in earlier_snapshots.items():
            log.info(
                "source %s: this run's records replace those of %s, ingested by run %s",
                name,
                uri,
                run_id,
            )
    replaced = [u.replaces for u in changed] + sorted(earlier_snapshots)
    # an extraction from a stored watermark that found nothing new records nothing: the
    # stored watermark and its window stay the ones to start from
    landed = [u for u in landed if u.rows or u.watermark_from is None]
    watermark = source.new_watermark() if landed else None
    rows = sum(u.rows for u in landed)
    return TaskOutput(
        rows_in=rows,
        rows_out=rows,
        payload={
            "source": name,
            "dataset": cfg.target_dataset,
            "table": table if landed else None,
            "watermark": watermark,
            "watermark_window": _keep_window(ctx, name, source.watermark_window())
            if watermark
            else None,
            "units": [_unit_dict(u) for u in landed],
            # files whose earlier version's rows this run's rows replace (on_changed_file)
            "replaces": replaced,
            "skipped_unchanged": _skipped(source, state, len(units)),
        },
    )


def _refuse_moved_dataset(cfg: SourceConfig, ledger: Ledger) -> None:
    """Stop a source whose earlier rows are in another dataset than the one it now feeds.

    retailhub before 2026-12-08 put a source with layout none and no ``dataset`` in a
    dataset called 'none'; it now feeds the dataset of its own name. Without this check its
    history would split silently between ``raw.none`` and ``raw.<source>``, and its stored
    watermark or file checksums would keep the old rows from ever being read again.
    """
    earlier = ledger.datasets_of_source(cfg.name)
    if not earlier or cfg.target_dataset in earlier:
        return
    shown = ", ".join(f"raw.{d}" for d in sorted(earlier))
    raise ConfigError(
        f"source {cfg.name!r} now feeds dataset {cfg.target_dataset!r}, but its earlier rows "
        f"are in {shown}: set its dataset to {sorted(earlier)[0]!r} to go on there, or give "
        f"the source a new name to start {cfg.target_dataset!r} afresh (nothing was ingested)",
        key=f"sources.{cfg.name}.dataset",
    )


def _unchanged_snapshot(
    source: str, landed: list, earlier: dict[str, tuple[str, int, str | None]]
) -> bool:
    """Whether the API answered exactly as it did last time (same records, by checksum):
    then nothing is ingested, and a scheduled run finds the warehouse up to date instead of
    replacing every record with itself and rebuilding the star schema."""
    if not earlier or len(landed) != 1:
        return False
    run_id, _rows, checksum = list(earlier.values())[-1]
    if checksum is None or landed[0].checksum != checksum:
        return False
    log.info("source %s: the API answers as it did for run %s: nothing new", source, run_id)
    return True


def _refuse_empty_snapshot(
    cfg: SourceConfig, landed: list, earlier: dict[str, tuple[str, int, str | None]]
) -> None:
    """An API that answers with no record, where its last answer had some, is more often
    broken (an expired filter, an outage answering []) than empty: as a snapshot it would
    empty the dataset's history, so the run stops unless the source allows it."""
    had = max((rows for _run, rows, _checksum in earlier.values()), default=0)
    if not earlier or had == 0 or any(u.rows for u in landed):
        return
    if getattr(cfg, "allow_empty_snapshot", False):
        log.warning("source %s: the API answered with no record: its %d rows go", cfg.name, had)
        return
    raise SourceError(
        f"source {cfg.name!r}: the API answered with no record, where its earlier answers "
        f"had up to {had:,}; as a snapshot this would empty the dataset's history, so nothing "
        "was ingested. If the API really is empty now, set allow_empty_snapshot: true",
        source=cfg.name,
    )


def _keep_window(
    ctx: RunContext, source: str, window: StoredWindow | None
) -> dict[str, str | None] | None:
    """Where the new watermark's window waits for the publish to record it: its fingerprints
    in a scratch table (a window with a lookback can hold many rows: too many for the task's
    JSON payload), its start in the payload."""
    import pyarrow as pa

    if window is None:
        return None
    table = work("landing", f"{source}__watermark_window")
    rows = pa.table({"row_hash": pa.array(window.fingerprints, pa.string())})
    ctx.con.register("__rh_window", rows)
    try:
        ctx.con.execute(f"create or replace table {table} as select * from __rh_window")
    finally:
        ctx.con.unregister("__rh_window")
    return {"table": table, "start": window.start}


def _refuse_changed_files(
    source: str, changed: list[InputUnit], known: dict[str, tuple[str, str]]
) -> None:
    """Fail before landing anything when a file already ingested comes back changed.

    Files are known by their checksum, so a file rewritten in place looks new; appended to
    the raw history, its rows would be counted twice (every invoice of a corrected monthly
    file doubled). Unless the source takes changed files as corrections
    (``on_changed_file: replace``), the run stops here, naming the files, and nothing is
    ingested.
    """
    if not changed:
        return

    def describe(unit: InputUnit) -> str:
        checksum, run_id = known[str(unit.replaces)]
        return (
            f"{unit.uri} (ingested by run {run_id} as sha256 {checksum[:12]}…, "
            f"now {str(unit.checksum)[:12]}…)"
        )

    shown = "; ".join(describe(u) for u in changed[:5])
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    raise SourceError(
        f"source '{source}': {len(changed)} file(s) already ingested came back with different "
        f"content: {shown}{more}. The warehouse keeps every row ingested before, so a changed "
        "file would count its rows twice: put the ingested version back and deliver "
        "additions as a new file, or set the source's on_changed_file: replace to take "
        "changed files as corrections. Nothing was ingested by this run.",
        source=source,
    )


def _unit_dict(unit: object) -> dict[str, object]:
    from dataclasses import asdict, is_dataclass

    data = asdict(unit) if is_dataclass(unit) else dict(vars(unit))  # type: ignore[arg-type]
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}


def _skipped(source: object, state: SourceState, new_units: int) -> int | None:
    # Reported for the summary only; not every source type can count what it skipped.
    return None if not state.ingested_checksums else len(state.ingested_checksums)

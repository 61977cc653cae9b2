"""Everything the command line prints: tables, the run summary, progress bars, errors.

Library code never prints; it logs, and reports progress through a ``ProgressSink``.
This module is the one place that turns those into terminal output.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from retailhub.pipeline.context import ProgressSink
from retailhub.pipeline.report import RunReport
from retailhub.warehouse.base import QueryResult


def _console(stderr: bool = False) -> Console:
    # Piped output (CI logs, `| less`) gets a wide fixed width so rule and table names are not
    # cut to "online_re…"; a terminal keeps its own width.
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, width=None if probe.is_terminal else 160)


out = _console()
err = _console(stderr=True)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=verbose > 1)],
        force=True,
    )


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)


class RichProgress(ProgressSink):
    """Progress bars per task; silent when stdout is not a terminal unless forced."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = err.is_terminal if enabled is None else enabled
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<32}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
            disable=not self.enabled,
        )
        self._ids: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def task_started(self, task: str, total: int | None = None) -> None:
        if task not in self._ids:
            self._ids[task] = self._progress.add_task(task, total=total, detail="")
        else:
            self._progress.update(self._ids[task], total=total)

    def task_advanced(self, task: str, advance: int = 0, total: int | None = None) -> None:
        if task not in self._ids:
            self.task_started(task, total)
        self._progress.update(self._ids[task], advance=advance, total=total)
        done = self._progress.tasks[self._ids[task]].completed if self._ids else 0
        self._progress.update(self._ids[task], detail=f"{int(done):,}")

    def stage(self, name: str, done: int, total: int) -> None:
        """Absolute progress of a named stage (the generator reports this way)."""
        self.task_started(name, total)
        self._progress.update(self._ids[name], completed=done, detail=f"{done:,}/{total:,}")

    def task_finished(self, task: str, status: str, seconds: float, detail: str = "") -> None:
        if task not in self._ids:
            self.task_started(task, 1)
        mark = {"success": "[green]ok[/]", "failed": "[red]failed[/]"}.get(status, status)
        t = self._progress.tasks[self._ids[task]]
        self._progress.update(
            self._ids[task], total=t.total or 1, completed=t.total or 1, detail=f"{mark} {detail}"
        )


def render_report(report: RunReport) -> None:
    title = f"retailhub {report.command} {report.run_id}: {report.status}"
    if report.datasets:
        t = Table(title="Datasets", title_justify="left")
        for col in ("dataset", "rows in", "accepted", "quarantined", "score", "rules failed"):
            t.add_column(col, justify="left" if col == "dataset" else "right")
        for d in report.datasets:
            t.add_row(
                d.dataset,
                f"{d.input_rows:,}",
                f"{d.accepted_rows:,}",
                f"{d.quarantined_rows:,}",
                f"{d.score:.1f}" if d.score is not None else "-",  # no row checked
                f"{d.rules_failed}/{d.rules_total}",
            )
        out.print(t)
    if report.quality:
        q = Table(title="Quality scorecard", title_justify="left")
        for col in ("dataset", "rule", "severity", "metric", "threshold", "failing", "result"):
            q.add_column(
                col, justify="right" if col in ("metric", "threshold", "failing") else "left"
            )
        for r in sorted(report.quality, key=lambda r: (r["passed"], r["dataset"], r["rule"])):
            result = (
                "[green]pass[/]"
                if r["passed"]
                else ("[red]FAIL[/]" if r["severity"] == "error" else "[yellow]warn[/]")
            )
            q.add_row(
                r["dataset"],
                r["rule"],
                r["severity"],
                _num(r.get("metric")),
                _num(r.get("threshold")),
                f"{r.get('failing_rows') or 0:,}",
                result,
            )
        out.print(q)
    if report.tables:
        t = Table(title="Tables published", title_justify="left")
        t.add_column("table")
        t.add_column("rows", justify="right")
        for name, rows in sorted(report.tables.items()):
            t.add_row(name, f"{rows:,}")
        out.print(t)
    nothing_new = report.datasets and all(d.input_rows == 0 for d in report.datasets)
    if report.command == "check" and report.ok and nothing_new:
        out.print(
            "No new input: every source file or row here is already in the warehouse, so "
            "there was nothing to judge (check judges only what a run would take in next; "
            "retailhub runs show RUN_ID has an earlier run's scorecard)."
        )
    if report.up_to_date_with and report.ok:
        out.print(
            f"Warehouse up to date: no new input and no change to the configuration or models "
            f"since run {report.up_to_date_with}, so nothing was rebuilt "
            "(retailhub run --full-refresh rebuilds anyway; retailhub insights lists the "
            "current findings)."
        )
    if report.stages:
        t = Table(title="Stages", title_justify="left")
        for col in ("task", "status", "seconds", "rows out"):
            t.add_column(col, justify="right" if col in ("seconds", "rows out") else "left")
        for s in report.stages:
            rows = "" if s["rows_out"] is None else f"{s['rows_out']:,}"
            t.add_row(s["task"], s["status"], f"{s['seconds']:.2f}", rows)
        out.print(t)
    # model warnings (a score not to be trusted) come with the top insights whatever their
    # rank, under their own heading so the numbering does not seem to skip
    warnings = [i for i in report.insights if i.get("severity") == "warning"]
    for heading, items in (
        ("Top insights", [i for i in report.insights if i not in warnings]),
        ("Model warnings", warnings),
    ):
        if items:
            out.print(f"[bold]{heading}[/]")
        for i in items:
            text = " ".join(str(i.get("text", "")).split())  # one line each, however written
            out.print(f"  {i.get('rank', '-')}. {text}")
    style = "green" if report.ok else "red"
    out.print(f"[bold {style}]{title}[/] in {report.seconds:.1f}s")
    if report.error:
        error(report.error)
    if report.resumable:
        err.print(f"resume with: retailhub run --resume {report.run_id}")


def _num(v: Any) -> str:
    """A metric as a person reads it: ``0.9951``, and counts as ``10,000,000``, not ``1e+07``."""
    if v is None:
        return ""
    if isinstance(v, float) and abs(v) >= 1000:
        return f"{v:,.0f}" if v.is_integer() else f"{v:,.1f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render_rows(
    rows: list[dict[str, Any]], title: str | None = None, *, readable: bool = False
) -> None:
    """A table of ``rows``. ``readable`` rounds numbers and times for people (ledger views);
    without it every value is printed exactly as the warehouse returned it (``query``)."""
    if not rows:
        out.print("(none)")
        return
    t = Table(title=title, title_justify="left")
    for col in rows[0]:
        numeric = readable and any(_is_number(r[col]) for r in rows)
        # Identifiers are what a reader copies into the next command: never cut them.
        ident = str(col).endswith("_id")
        t.add_column(
            str(col),
            justify="right" if numeric else "left",
            no_wrap=ident,
            min_width=max((len(_exact(r[col])) for r in rows), default=0) if ident else None,
        )
    for r in rows:
        t.add_row(*[_readable(v, k) if readable else _exact(v) for k, v in r.items()])
    out.print(t)


def render_record(record: dict[str, Any], title: str | None = None, *, exact: bool = False) -> None:
    """One record as ``field  value`` lines (a row with many columns does not fit across)."""
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for key, value in record.items():
        t.add_row(str(key), _exact(value) if exact else _readable(value, key))
    out.print(t)


def _exact(value: Any) -> str:
    return "" if value is None else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _readable(value: Any, column: str = "") -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, bool) or value is None:
        return _exact(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if column == "seconds":
            return f"{value:,.2f}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _json_value(value: Any) -> Any:
    """A value strict JSON can hold: NaN and infinities become null (json.dumps would write
    bare NaN, which JSON parsers reject), bytes become hex, the rest of the non-JSON types
    their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def unique_names(columns: list[str]) -> list[str]:
    """Column names as JSON keys: a repeated name gets ``_2``, ``_3``... (``select *`` over a
    join repeats names, and a JSON object would silently keep only the last value)."""
    seen: set[str] = set()
    out = []
    for name in columns:
        key, n = name, 2
        while key in seen:
            key, n = f"{name}_{n}", n + 1
        seen.add(key)
        out.append(key)
    return out


def render_query(result: QueryResult, fmt: str) -> None:
    # a repeated column name (select 1 as a, 2 as a) gets a suffix (a, a_2) where rows are
    # keyed by name, as in JSON, instead of the second value hiding the first
    keys = unique_names(list(result.columns))
    if fmt == "json":
        rows = [{c: _json_value(v) for c, v in zip(keys, r, strict=True)} for r in result.rows]
        sys.stdout.write(json.dumps(rows, indent=2, allow_nan=False) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(result.columns)
        w.writerows(result.rows)
        sys.stdout.write(buf.getvalue())
    elif not result.rows:
        # the columns still tell whether the query asked what was meant (as psql shows them)
        empty = Table()
        for name in result.columns:
            empty.add_column(str(name))
        out.print(empty)
        out.print("(0 rows)")
    elif _table_width(result) > out.width and len(result.columns) > 1:
        # Too wide to show without cutting values to '…': one block per row, as psql's \x.
        for i, row in enumerate(result.rows, start=1):
            render_record(dict(zip(keys, row, strict=True)), f"row {i}", exact=True)
    else:
        render_rows([dict(zip(keys, r, strict=True)) for r in result.rows])


def _table_width(result: QueryResult) -> int:
    """Characters a table of ``result`` needs for no value to be cut (borders included).

    A cell wraps at spaces, so what must fit is each column's longest word: a long sentence
    in one column does not force the row-per-block layout, thirty ids and amounts do."""

    def longest_word(value: Any) -> int:
        return max((len(w) for w in _exact(value).split()), default=0)

    widths = [
        max([len(str(c)), *(longest_word(r[i]) for r in result.rows)])
        for i, c in enumerate(result.columns)
    ]
    return sum(widths) + 3 * len(widths) + 1

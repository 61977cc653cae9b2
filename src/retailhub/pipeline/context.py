"""State shared by the steps of one run.

Each step returns a :class:`TaskOutput`; its ``payload`` is JSON and is stored in the
ledger, which is what lets ``--resume`` rebuild the context of the tasks that already
succeeded without re-running them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from retailhub.config.loader import LoadedProject
from retailhub.warehouse.base import PublishBatch, Warehouse

WORK = "work"
#: Schemas whose tables the publish step makes visible (raw and quarantine are appended to).
PUBLISHED_SCHEMAS = ("core", "marts")


@dataclass
class TaskOutput:
    rows_in: int | None = None
    rows_out: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


class ProgressSink:
    """Receives progress from steps. The default is silent (Airflow, tests, libraries)."""

    def task_started(self, task: str, total: int | None = None) -> None: ...

    def task_advanced(self, task: str, advance: int = 0, total: int | None = None) -> None: ...

    def task_finished(self, task: str, status: str, seconds: float, detail: str = "") -> None: ...


@dataclass
class RunContext:
    project: LoadedProject
    warehouse: Warehouse
    run_id: str
    progress: ProgressSink = field(default_factory=ProgressSink)
    outputs: dict[str, TaskOutput] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    # Test seam: called with each table name while publishing (failure injection).
    publish_hook: Callable[[str], None] | None = None
    # Extra changes other steps want applied in the same atomic publish.
    pending: PublishBatch = field(default_factory=PublishBatch)
    # Replace every published table instead of appending new fact rows (``run --full-refresh``).
    full_refresh: bool = False
    # False for ``retailhub check``: nothing is built in the warehouse's staging tables.
    publishes: bool = True
    #: this run may pseudonymise with another key than the published pseudonyms' (on purpose)
    rotate_pseudonym_key: bool = False

    @property
    def settings(self):
        return self.project.settings

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.warehouse.compute

    def staging_table(self, target: str) -> str | None:
        """Where to build the future content of published table ``target`` so that publishing
        is a rename (see ``Warehouse.staging_table``); None: build in the scratch database."""
        if not self.publishes:
            return None
        return self.warehouse.staging_table(target, self.run_id)

    def payload(self, task: str) -> dict[str, Any]:
        out = self.outputs.get(task)
        return out.payload if out else {}


def work(schema: str, name: str) -> str:
    """Qualified name of a scratch table of this run (never published as is)."""
    return f"{WORK}.{schema}.{_ident(name)}"


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)

"""SIGKILL in the middle of a PostgreSQL publish leaves the previous state, readable throughout.

A real child process publishes a large batch; the test kills it with SIGKILL while its COPY
streams run (and, separately, while it sits inside the swap transaction). A reader thread
queries the published tables the whole time and must only ever see the previous state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase, open_postgres

from retailhub.warehouse.base import PublishBatch
from retailhub.warehouse.postgres import STAGING_SCHEMA

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

CHILD = Path(__file__).with_name("pg_publish_child.py")
V1_ROWS = 5_000
CHILD_ROWS = 1_500_000


class Reader(threading.Thread):
    """Reads the published tables in a loop on its own connection; records what it saw."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.seen: list[tuple[Any, ...]] = []
        self.errors: list[str] = []
        self.slowest = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    row = conn.execute(
                        "select (select count(*) from core.big), (select sum(val) from core.big), "
                        "(select count(*) from raw.events)"
                    ).fetchone()
                    self.seen.append(tuple(row or ()))
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.slowest = max(self.slowest, time.perf_counter() - started)
                time.sleep(0.02)


def publish_v1(db: PgDatabase, tmp: Path) -> None:
    wh = open_postgres(db, tmp, label="v1")
    try:
        wh.init_schema()
        con = wh.compute
        con.execute("create schema if not exists work.core")
        con.execute(
            f"create table work.core.big as select range as id, 1 as val, 'p' as pad "
            f"from range({V1_ROWS})"
        )
        con.execute(
            "create table work.core.events as select range as id, 'run-1' as _run_id, "
            f"'q' as pad from range({V1_ROWS})"
        )
        wh.publish(
            PublishBatch(
                replace={"core.big": "work.core.big"}, append={"raw.events": "work.core.events"}
            )
        )
    finally:
        wh.close()


def start_child(db: PgDatabase, tmp: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), db.url, str(tmp / "child"), mode, str(CHILD_ROWS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_copy(db: PgDatabase, child: subprocess.Popen[str], timeout: float = 120) -> None:
    """Block until the child's COPY streams are loading rows into the staging schema."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        rows = db.sql(
            "select count(*) from pg_stat_activity where application_name like %s "
            "and query ilike 'copy%%' and state = 'active'",
            ("retailhub writer crash-child%",),
        )
        if rows[0][0] > 0:
            time.sleep(0.5)  # let some rows land in staging before the kill
            return
        time.sleep(0.05)
    pytest.fail("the child never started its COPY")


def wait_for_line(child: subprocess.Popen[str], prefix: str, timeout: float = 180) -> str:
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and child.poll() is not None:
            pytest.fail(
                f"child exited before {prefix}: {child.stderr.read() if child.stderr else ''}"
            )
    pytest.fail(f"child never printed {prefix}")


def assert_previous_state(db: PgDatabase, reader: Reader) -> None:
    assert reader.errors == []
    assert reader.seen, "the reader never completed a query"
    assert set(reader.seen) == {(V1_ROWS, V1_ROWS, V1_ROWS)}
    assert db.sql("select count(*), sum(val) from core.big") == [(V1_ROWS, V1_ROWS)]
    assert db.sql("select count(*), min(_run_id), max(_run_id) from raw.events") == [
        (V1_ROWS, "run-1", "run-1")
    ]


def assert_recovers(db: PgDatabase, tmp: Path) -> None:
    """The killed run's lock is gone, its leftovers are cleaned, the next publish works."""
    wh = open_postgres(db, tmp, label="after-crash", lock_wait_s=15)
    try:
        con = wh.compute
        con.execute("create schema if not exists work.core")
        con.execute(
            "create table work.core.big as select range as id, 2 as val, 'r' as pad from range(10)"
        )
        wh.publish(PublishBatch(replace={"core.big": "work.core.big"}))
        assert wh.query("select count(*), sum(val) from core.big").rows == [(10, 20)]
        leftovers = wh.query(
            "select count(*) from pg_tables where schemaname = ?", [STAGING_SCHEMA]
        ).rows
        assert leftovers == [(0,)]
    finally:
        wh.close()


def test_sigkill_during_copy_leaves_previous_state(pg_db: PgDatabase, tmp_path: Path) -> None:
    publish_v1(pg_db, tmp_path)
    reader = Reader(pg_db.admin.conninfo())
    reader.start()
    child = start_child(pg_db, tmp_path, "load")
    try:
        wait_for_line(child, "READY")
        wait_for_copy(pg_db, child)
        staged = pg_db.sql(
            "select count(*) from pg_tables where schemaname = %s", (STAGING_SCHEMA,)
        )
        assert staged[0][0] >= 1, "the kill must hit a load in progress"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        time.sleep(0.5)
    finally:
        reader.stop.set()
        reader.join(timeout=30)
        if child.poll() is None:
            child.kill()
    assert_previous_state(pg_db, reader)
    # Readers were never blocked by the load: every query answered promptly.
    assert reader.slowest < 5.0
    assert_recovers(pg_db, tmp_path)


def test_sigkill_inside_swap_transaction_rolls_back(pg_db: PgDatabase, tmp_path: Path) -> None:
    publish_v1(pg_db, tmp_path)
    reader = Reader(pg_db.admin.conninfo())
    reader.start()
    child = start_child(pg_db, tmp_path, "swap")
    try:
        wait_for_line(child, "SWAPPING")
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        time.sleep(1.0)
    finally:
        reader.stop.set()
        reader.join(timeout=60)
        if child.poll() is None:
            child.kill()
    assert_previous_state(pg_db, reader)
    assert_recovers(pg_db, tmp_path)

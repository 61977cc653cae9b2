"""Two writers against one PostgreSQL warehouse are serialised by an advisory lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase, open_postgres

from retailhub.errors import WarehouseUnavailable
from retailhub.warehouse.base import PublishBatch

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_second_writer_fails_naming_the_first(pg_db: PgDatabase, tmp_path: Path) -> None:
    first = open_postgres(pg_db, tmp_path, label="20260102T030405-aaaaaa")
    try:
        first.init_schema()
        with pytest.raises(WarehouseUnavailable) as info:
            open_postgres(pg_db, tmp_path, label="20260102T030406-bbbbbb")
        message = str(info.value)
        assert "run 20260102T030405-aaaaaa" in message
        assert pg_db.name in message
        assert "wait for it to finish" in message
        assert info.value.transient
        # Readers are never blocked by a writer.
        reader = open_postgres(pg_db, tmp_path, read_only=True)
        assert reader.query("select count(*) from meta.pipeline_runs").rows == [(0,)]
        reader.close()
    finally:
        first.close()
    second = open_postgres(pg_db, tmp_path, label="20260102T030406-bbbbbb")
    second.close()


def test_waiting_writer_gets_the_lock_when_the_first_finishes(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    first = open_postgres(pg_db, tmp_path, label="first")
    first.init_schema()
    con = first.compute
    con.execute("create schema work.core")
    con.execute("create table work.core.t as select 1 as id")
    order: list[str] = []

    def second_writer() -> None:
        wh = open_postgres(pg_db, tmp_path, label="second", lock_wait_s=30)
        order.append("second acquired")
        wh.close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(1.0)
    first.publish(PublishBatch(replace={"core.t": "work.core.t"}))
    order.append("first published")
    first.close()
    thread.join(timeout=30)
    assert order == ["first published", "second acquired"]


def test_read_only_session_refuses_writes(pg_db: PgDatabase, tmp_path: Path) -> None:
    writer = open_postgres(pg_db, tmp_path)
    writer.init_schema()
    writer.close()
    reader = open_postgres(pg_db, tmp_path, read_only=True)
    try:
        with pytest.raises(Exception, match="read-only"):
            reader.execute("create table core.sneaky (id int)")
    finally:
        reader.close()

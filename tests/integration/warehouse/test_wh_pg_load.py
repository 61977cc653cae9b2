"""The bulk loader's streams: a table bigger than one batch is copied on every worker
connection at once, a small one on one, and the rows arrive exactly once either way."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase

from retailhub.warehouse.pg_load import BulkLoader, LoadJob

pytestmark = [pytest.mark.integration]


def test_big_tables_use_every_stream_and_small_ones_one(pg_db: PgDatabase, tmp_path: Path):
    pg_db.sql("create table public.big (id bigint, label text)")
    pg_db.sql("create table public.small (id bigint, label text)")
    compute = duckdb.connect(":memory:")
    # A stored table comes out in whole row groups' worth of vectors, a little under the batch
    # size asked for (122,880 rows for 131,072): the first batch is never "full".
    rows = 300_000
    compute.execute(f"create table big as select range as id, 'row ' || range as label "
                    f"from range({rows})")  # fmt: skip
    with BulkLoader(compute, lambda: pg_db.admin.connect_adbc(), workers=2) as loader:
        loader.load([LoadJob("public", "small", "select range as id, 'x' as label from range(7)")])
        assert len(loader._conns) == 1
        stats = loader.load([LoadJob("public", "big", "select * from big")])
        assert len(loader._conns) == 2  # the second stream opened for the big table
    assert stats["public.big"].rows == rows
    assert pg_db.sql("select count(*), count(distinct id), sum(id) from public.big") == [
        (rows, rows, rows * (rows - 1) // 2)
    ]
    assert pg_db.sql("select count(*) from public.small") == [(7,)]

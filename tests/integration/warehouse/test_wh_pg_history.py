"""The local mirror of PostgreSQL's raw history: fetched once, then only the runs it lacks.

Runs the pipeline into a throwaway database on the local server, then checks the mirror file
against the warehouse run by run, including after the mirror was damaged by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase

from retailhub.errors import EXIT_OK
from retailhub.pipeline.project import Project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RAW = "raw.online_retail"
# A child process that holds a DuckDB file open (and so locked) until it is killed.
HOLD = (
    "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); "
    "print('open', flush=True); time.sleep(120)"
)
LOCAL = 'main."raw__online_retail"'


def warehouse_runs(db: PgDatabase) -> dict[str, int]:
    return dict(db.sql(f"select _run_id, count(*) from {RAW} group by 1"))


def mirror_file(project: Path) -> Path:
    files = list((project / ".retailhub" / "work" / "history").glob("*.duckdb"))
    assert len(files) == 1, files
    return files[0]


def mirror_runs(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute(f"select _run_id, count(*) from {LOCAL} group by 1").fetchall())


def rows_of(con_rows: list[tuple]) -> list[str]:
    return sorted(repr(r) for r in con_rows)


def test_mirror_fetches_only_missing_runs_and_repairs_itself(
    demo_project: Path, pg_db: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monthly = sorted((demo_project / "data" / "online_retail").glob("*.csv"))
    held_back, parked = monthly[-1], tmp_path / monthly[-1].name
    shutil.move(held_back, parked)
    project = Project.load(demo_project, warehouse_url=pg_db.url)
    first = project.run()
    assert first.exit_code == EXIT_OK, first.error

    # A first run has no history to read: the mirror starts empty and fills on the next run.
    shutil.move(parked, held_back)
    second = project.run()
    assert second.exit_code == EXIT_OK, second.error
    path = mirror_file(demo_project)
    assert mirror_runs(path) == {first.run_id: warehouse_runs(pg_db)[first.run_id]}

    # Damage the mirror: lose three rows of a run and invent a run the warehouse never had.
    with duckdb.connect(str(path)) as con:
        con.execute(f"delete from {LOCAL} where rowid in (select rowid from {LOCAL} limit 3)")
        con.execute(
            f"insert into {LOCAL} select * replace ('bogus' as _run_id) from {LOCAL} limit 2"
        )

    with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
        relation = wh.history_relation(RAW)
        mirror = getattr(wh, "history_mirror", None)
        assert mirror is not None and relation.startswith("rh_history.")
        [refresh] = mirror.refreshes
        # The damaged run and the invented one are dropped; the damaged run and the second
        # run's partition are fetched; nothing else is read.
        assert (refresh.kept_runs, refresh.dropped_runs, refresh.fetched_runs) == (0, 2, 2)
        assert refresh.fetched_rows == sum(warehouse_runs(pg_db).values())
        mirrored = wh.compute.execute(f"select * from {relation}").fetchall()
    assert mirror_runs(path) == warehouse_runs(pg_db)
    # Row for row what streaming the whole table (the mirror switched off) gives.
    monkeypatch.setenv("RETAILHUB_WAREHOUSE__HISTORY_CACHE", "false")
    streaming = Project.load(demo_project, warehouse_url=pg_db.url)
    with streaming.open_warehouse(work_db=tmp_path / "stream.duckdb") as wh:
        streamed = wh.compute.execute(f"select * from {wh.history_relation(RAW)}").fetchall()
    monkeypatch.delenv("RETAILHUB_WAREHOUSE__HISTORY_CACHE")
    assert len(streamed) == sum(warehouse_runs(pg_db).values())
    assert rows_of(mirrored) == rows_of(streamed)

    # Level with the warehouse: the next read fetches nothing.
    with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
        wh.history_relation(RAW)
        [refresh] = wh.history_mirror.refreshes  # type: ignore[attr-defined]
        assert (refresh.kept_runs, refresh.fetched_runs, refresh.dropped_runs) == (2, 0, 0)

    # A correction deletes a file's rows from its run: the mirror deletes the same file and
    # fetches nothing. Part of a file deleted is not a correction's delete: fetched again.
    [(run_id, file)] = pg_db.sql(
        f"select _run_id, min(_source_file) from {RAW} group by 1 order by 1 limit 1"
    )
    pg_db.sql(f"delete from {RAW} where _run_id = %s and _source_file = %s", (run_id, file))
    with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
        relation = wh.history_relation(RAW)
        [refresh] = wh.history_mirror.refreshes  # type: ignore[attr-defined]
        assert (refresh.kept_runs, refresh.trimmed_runs, refresh.fetched_runs) == (2, 1, 0)
        files = f"select count(*) from {relation} where _source_file = ?"
        assert wh.compute.execute(files, [file]).fetchall() == [(0,)]
    assert mirror_runs(path) == warehouse_runs(pg_db)
    pg_db.sql(
        f"delete from {RAW} where _run_id = %s and ctid in "
        f"(select ctid from {RAW} where _run_id = %s limit 2)",
        (run_id, run_id),
    )
    with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
        wh.history_relation(RAW)
        [refresh] = wh.history_mirror.refreshes  # type: ignore[attr-defined]
        assert (refresh.trimmed_runs, refresh.fetched_runs, refresh.dropped_runs) == (0, 1, 1)
    assert mirror_runs(path) == warehouse_runs(pg_db)

    # A raw row changed in the warehouse (same row count, a new row version): that run is
    # fetched again.
    [(run_id,)] = pg_db.sql(f"select _run_id from {RAW} group by 1 order by 1 limit 1")
    pg_db.sql(
        f"update {RAW} set description = 'ERASED' where _run_id = %s and ctid = "
        f"(select ctid from {RAW} where _run_id = %s limit 1)",
        (run_id, run_id),
    )
    with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
        relation = wh.history_relation(RAW)
        [refresh] = wh.history_mirror.refreshes  # type: ignore[attr-defined]
        assert (refresh.kept_runs, refresh.fetched_runs, refresh.dropped_runs) == (1, 1, 1)
        erased = f"select count(*) from {relation} where description = 'ERASED'"
        assert wh.compute.execute(erased).fetchall() == [(1,)]

    # Held open by another process: this read streams the table and leaves the file alone.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
            relation = wh.history_relation(RAW)
            assert relation is not None and relation.startswith("work.")
            n = wh.compute.execute(f"select count(*) from {relation}").fetchall()[0][0]
            assert n == sum(warehouse_runs(pg_db).values())
    finally:
        holder.kill()
        holder.wait()
    assert mirror_runs(path) == warehouse_runs(pg_db)

    # A mirror file DuckDB cannot open is replaced and filled again, not a failed run.
    path.write_bytes(b"not a duckdb file" * 100)
    with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
        wh.history_relation(RAW)
        [refresh] = wh.history_mirror.refreshes  # type: ignore[attr-defined]
        assert (refresh.kept_runs, refresh.fetched_runs) == (0, 2)
    assert mirror_runs(path) == warehouse_runs(pg_db)


def test_mirror_can_be_switched_off(
    demo_project: Path, pg_db: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAILHUB_WAREHOUSE__HISTORY_CACHE", "false")
    project = Project.load(demo_project, warehouse_url=pg_db.url)
    assert project.run().exit_code == EXIT_OK
    with project.open_warehouse(work_db=tmp_path / "work.duckdb") as wh:
        assert getattr(wh, "history_mirror", "absent") is None
        relation = wh.history_relation(RAW)
        assert relation is not None and relation.startswith("work.")
        n = wh.compute.execute(f"select count(*) from {relation}").fetchall()[0][0]
    assert n == sum(warehouse_runs(pg_db).values())
    assert not (demo_project / ".retailhub" / "work" / "history").exists()

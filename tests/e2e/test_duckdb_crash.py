"""SIGKILL while a run writes its staging tables into the DuckDB warehouse file.

The big tables of a run are built inside the warehouse file (``core._rh_stage_<run>__...``)
and published by a rename. A run killed in the middle of writing one must leave the file
readable, the published tables exactly as they were, and nothing the next run trips over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.e2e.helpers import fetch, staging_tables, table_fingerprints

from retailhub.config.scaffold import scaffold
from retailhub.demo import generate
from retailhub.errors import EXIT_OK
from retailhub.pipeline.project import Project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS = 60_000  # enough that fct_sales takes a moment to write (the kill lands in it)


def signal_in_star_schema(project: Path, signum: int, *args: str) -> tuple[int, str, str]:
    """Run ``retailhub -v run`` and send ``signum`` as the star schema starts being written;
    (exit code, stdout, stderr)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "retailhub", "-v", "run", "--project", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    try:
        assert child.stderr is not None
        deadline = time.monotonic() + 240
        for line in child.stderr:
            # int_sales_lines is a view, logged just before fct_sales starts being written
            # into core._rh_stage_<run>__fct_sales (inside the transform task)
            if "int_sales_lines" in line:
                child.send_signal(signum)
                break
            assert time.monotonic() < deadline, "the run never reached the star schema"
        else:
            pytest.fail(f"the run ended before the star schema (exit {child.wait()})")
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    return child.returncode, out, err


def test_sigkill_while_building_staging_tables_leaves_the_published_state(tmp_path: Path):
    project = tmp_path / "shop"
    scaffold(project)
    data = project / "data"
    generate(data, rows=ROWS, seed=11, defect_rate=0.01)
    os.environ.pop("RETAILHUB_WAREHOUSE__URL", None)
    first = Project.load(project).run()
    assert first.exit_code == EXIT_OK, first.error
    before = table_fingerprints(project)
    # A full refresh on the same files rebuilds the star schema (into its staging tables):
    # that is where it gets killed.
    returncode, _out, _err = signal_in_star_schema(project, signal.SIGKILL, "--full-refresh")
    assert returncode == -signal.SIGKILL

    assert table_fingerprints(project) == before
    # The kill hit the star schema build: the dimensions built before it are there, unpublished.
    left = staging_tables(project)
    assert "core" in {t.split(".")[0] for t in left}, left
    runs = fetch(project, "select status from meta.pipeline_runs order by started_at")
    assert [s for (s,) in runs] == ["success", "running"]  # killed: never finished

    (killed,) = fetch(project, "select run_id from meta.pipeline_runs where status = 'running'")
    scratch = Project.load(project).work_db(killed[0])
    assert scratch.exists()

    # The next run has nothing new and keeps the published build; it still clears the
    # killed run's leftovers: its staging tables, its scratch database (its resume would
    # load files this run found published) and its 'running' status.
    after = Project.load(project).run()
    assert after.exit_code == EXIT_OK, after.error
    assert after.up_to_date_with == first.run_id
    assert staging_tables(project) == []
    assert table_fingerprints(project) == before  # same inputs: the same published tables
    assert not scratch.exists()
    runs = fetch(project, "select status, error from meta.pipeline_runs order by started_at")
    assert [s for s, _ in runs] == ["success", "failed", "success"]
    # closed as resumable, then this run's publish took its inputs and removed its scratch
    # database: the hint is reworded so the ledger does not keep suggesting a resume
    assert runs[1][1].startswith("interrupted") and "start a new run" in runs[1][1]


@pytest.mark.parametrize(
    ("signum", "label"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")]
)
def test_ctrl_c_stops_the_run_as_a_resumable_failure(tmp_path: Path, signum: int, label: str):
    """Ctrl-C inside a task used to surface as "task transform failed: RuntimeError: Query
    interrupted" (exit 3), or, between DuckDB statements, as a KeyboardInterrupt that left
    the run 'running' without its scratch database. SIGTERM (docker stop, a scheduler's
    timeout) killed the run outright."""
    project = tmp_path / "shop"
    scaffold(project)
    generate(project / "data", rows=ROWS, seed=12, defect_rate=0.01)
    os.environ.pop("RETAILHUB_WAREHOUSE__URL", None)
    returncode, out, err = signal_in_star_schema(project, signum)
    assert returncode == 130, err
    message = " ".join((out + err).split())
    assert f"error: task transform interrupted ({label})" in message
    (run_id, status, error), *_ = fetch(
        project, "select run_id, status, error from meta.pipeline_runs"
    )
    assert (status, error) == ("failed", f"task transform interrupted ({label})")
    assert f"resume with: retailhub run --resume {run_id}" in message
    assert fetch(project, "select count(*) from information_schema.tables "
                 "where table_schema = 'core' and table_name = 'fct_sales'") == [(0,)]  # fmt: skip
    resumed = Project.load(project).run(resume=run_id)
    assert resumed.exit_code == EXIT_OK, resumed.error
    tasks = dict(fetch(project, "select task, count(*) from meta.task_runs group by task"))
    assert tasks["ingest:online_retail"] == 1 and tasks["transform"] == 2

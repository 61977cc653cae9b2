"""``retailhub bench``'s harness: a real generate + pipeline in child processes, measured."""

from __future__ import annotations

import os

import pytest

from retailhub.errors import UsageError
from retailhub.pipeline.bench import run_benchmark

pytestmark = pytest.mark.e2e


def test_bench_reports_every_stage_with_wall_cpu_and_memory_of_the_pipeline(tmp_path) -> None:
    result = run_benchmark(rows=2000, workdir=tmp_path / "bench", keep=True)
    summary = result["summary"]
    assert summary["exit_code"] == 0
    stages = {s["task"]: s for s in result["stages"]}
    assert {"ingest:online_retail", "validate:online_retail", "transform", "publish"} <= set(stages)
    assert all(s["status"] == "success" for s in stages.values())
    # the transaction rows generated are the rows the ingest of Online Retail counted (plus
    # the injected duplicates), so the rows/s figures are of the input asked for
    assert 2000 <= stages["ingest:online_retail"]["rows"] < 2100
    # CPU seconds are the child pipeline's (the parent only waits): more than nothing, and at
    # most every core for the whole wall time
    assert 0.5 < summary["pipeline_cpu_s"] <= summary["pipeline_s"] * (os.cpu_count() or 1) + 0.5
    assert summary["pipeline_peak_mb"] > 50
    # the analytics stage is reported apart, and the run without it is the rest of the wall time
    assert stages["analytics"]["status"] == "success"
    assert summary["analytics_s"] == round(stages["analytics"]["seconds"], 1) > 0
    expected = summary["pipeline_s"] - stages["analytics"]["seconds"]
    assert abs(summary["without_analytics_s"] - expected) <= 0.11
    assert (tmp_path / "bench" / "warehouse").is_dir()


def test_bench_in_a_reused_workdir_still_measures_a_first_run(tmp_path) -> None:
    first = run_benchmark(rows=1000, workdir=tmp_path / "bench", keep=True)
    again = run_benchmark(rows=1000, workdir=tmp_path / "bench", keep=True)
    for result in (first, again):
        stages = {s["task"]: s for s in result["stages"]}
        assert result["summary"]["exit_code"] == 0
        assert 1000 <= stages["ingest:online_retail"]["rows"] < 1100
        assert stages["transform"]["rows"] > 0


def test_bench_refuses_a_warehouse_that_already_holds_runs(tmp_path, pg_db) -> None:
    result = run_benchmark(rows=1000, workdir=tmp_path / "bench", warehouse_url=pg_db.url)
    assert result["summary"]["exit_code"] == 0
    assert result["summary"]["warehouse"].startswith("postgresql://")
    # a database outside the bench's folder is not removed with it, and says so
    assert result["summary"]["warehouse"].endswith(
        "(left in place: the next bench needs it emptied or another empty database)"
    )
    with pytest.raises(UsageError, match=r"\(from the command line\), already holds runs"):
        run_benchmark(rows=1000, workdir=tmp_path / "bench", warehouse_url=pg_db.url)


def test_bench_will_not_clear_a_folder_it_did_not_make(tmp_path) -> None:
    project = tmp_path / "shop"
    (project / "data").mkdir(parents=True)
    (project / "data" / "mine.csv").write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not made by 'retailhub bench'"):
        run_benchmark(rows=1000, workdir=project)
    assert (project / "data" / "mine.csv").is_file()

"""What a run stopped by Ctrl-C or SIGTERM reports: the stopped task's time, the tasks not run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from retailhub.errors import EXIT_INTERRUPTED
from retailhub.pipeline.project import Project

pytestmark = pytest.mark.e2e


def test_an_interrupted_run_reports_its_time_and_the_tasks_it_did_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("id,qty\n1,2\n3,4\n", encoding="utf-8")
    (tmp_path / "retailhub.yaml").write_text(
        "project: t\nsources:\n  items:\n    type: csv\n    path: data/*.csv\n    layout: none\n",
        encoding="utf-8",
    )

    def stopped(ctx, task):
        time.sleep(0.2)
        raise KeyboardInterrupt

    monkeypatch.setattr("retailhub.pipeline.steps.transform.run", stopped)
    report = Project.load(tmp_path).run()
    assert report.exit_code == EXIT_INTERRUPTED and report.resumable
    stages = {s["task"]: s for s in report.stages}
    assert stages["transform"]["status"] == "failed"
    assert stages["transform"]["seconds"] >= 0.2  # was 0.00: the time spent was dropped
    assert [stages[t]["status"] for t in ("analytics", "publish")] == ["skipped", "skipped"]
    assert stages["ingest:items"]["status"] == "success"

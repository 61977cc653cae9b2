"""The analytics marts end to end on the demo project: published, reproducible, explained."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.helpers import fetch, frame, table_fingerprints
from tests.e2e.insight_checks import check_insight

from retailhub.errors import EXIT_OK, EXIT_USAGE
from retailhub.pipeline.marts import MART_NAMES
from retailhub.pipeline.project import Project

pytestmark = pytest.mark.e2e

MARTS = {f"marts.{name}" for name in MART_NAMES}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retailhub", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_run_publishes_every_mart_and_reports_insights(demo_project: Path) -> None:
    report = Project.load(demo_project).run()
    assert report.exit_code == EXIT_OK, report.error
    assert report.tables.keys() >= MARTS
    for name in MARTS - {"marts.mart_anomalies"}:
        assert report.tables[name] > 0, name
    published = {
        f"marts.{r[0]}"
        for r in fetch(
            demo_project,
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'BASE TABLE'",
        )
    }
    assert published == MARTS
    # the headline: the top insights by rank, then any model warning
    ranks = [i["rank"] for i in report.insights]
    assert ranks[:5] == [1, 2, 3, 4, 5]
    assert all(i["text"] for i in report.insights)
    warnings = fetch(
        demo_project, "select rank from marts.mart_insights where severity = 'warning'"
    )
    assert {r[0] for r in warnings} <= set(ranks)
    # lineage: each mart is recorded with what it was built from
    edges = fetch(
        demo_project,
        "select source_table, target_table from meta.lineage where target_table like 'marts.%'",
    )
    assert ("core.fct_sales", "marts.mart_kpi_daily") in edges
    assert ("marts.mart_kpi_daily", "marts.mart_forecast") in edges


def test_every_insight_query_reproduces_its_numbers(demo_project: Path) -> None:
    assert Project.load(demo_project).run().exit_code == EXIT_OK
    insights = fetch(
        demo_project, "select kind, evidence, query from marts.mart_insights order by rank"
    )
    assert len({k for k, _, _ in insights}) >= 5
    for kind, evidence, query in insights:
        check_insight(lambda sql: frame(demo_project, sql), kind, evidence, query)


def test_same_inputs_give_identical_marts(demo_project: Path) -> None:
    assert Project.load(demo_project).run().exit_code == EXIT_OK
    first = table_fingerprints(demo_project, ("marts",))
    assert Project.load(demo_project).run().exit_code == EXIT_OK
    assert table_fingerprints(demo_project, ("marts",)) == first
    assert set(first) == MARTS


def test_cli_run_prints_top_insights_and_insights_lists_them(demo_project: Path) -> None:
    run = cli("run", "--project", str(demo_project))
    assert run.returncode == EXIT_OK, run.stdout + run.stderr
    assert "Top insights" in run.stdout
    top = fetch(demo_project, "select source_system, text from marts.mart_insights where rank = 1")
    source, text = top[0]
    assert f"1. {source}: {text[:40]}" in " ".join(run.stdout.split())
    # model warnings (any rank) come under their own heading, after the top insights
    warned = fetch(demo_project, "select text from marts.mart_insights where severity = 'warning'")
    assert warned, "the demo data has a forecast that does not beat seasonal naive"
    said = " ".join(run.stdout.split())
    assert said.index("Top insights") < said.index("Model warnings") < said.index(warned[0][0][:30])
    listed = cli("insights", "--project", str(demo_project), "--limit", "3")
    assert listed.returncode == EXIT_OK, listed.stderr
    flat = " ".join(listed.stdout.split())
    assert "Insights" in flat
    for rank in (1, 2, 3):
        assert f"│ {rank} " in listed.stdout
    assert "│ 4 " not in listed.stdout
    assert text[:30] in flat


def test_insights_without_marts_is_a_usage_error(demo_project: Path) -> None:
    no_analytics = {"RETAILHUB_ANALYTICS__ENABLED": "false"}
    assert cli("run", "--project", str(demo_project), env=no_analytics).returncode == EXIT_OK
    listed = cli("insights", "--project", str(demo_project))
    assert listed.returncode == EXIT_USAGE
    assert "run 'retailhub run'" in listed.stderr

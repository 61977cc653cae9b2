"""The example project on the real public datasets: exits 0 and reconciles every row.

Expected figures come from each dataset's SOURCE.md and from counting the raw files here
(csv module), never from the platform's own code.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from tests.e2e.helpers import fetch

from retailhub.pipeline.project import Project

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "public-datasets"


@pytest.fixture(scope="module")
def public_run(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path):
    project = tmp_path_factory.mktemp("public")
    shutil.copy(EXAMPLE / "retailhub.yaml", project / "retailhub.yaml")
    mp = pytest.MonkeyPatch()
    mp.setenv("RETAILHUB_DATASETS_DIR", str(datasets_dir))
    cfg = project / "retailhub.yaml"
    # The Windows-1252 Kaggle copy of Superstore, as a second source with its own dataset.
    cfg.write_text(
        cfg.read_text().replace(
            "  product_catalog:\n    type: csv",
            "  superstore_kaggle:\n    type: csv\n    encoding: cp1252\n"
            '    path: "${RETAILHUB_DATASETS_DIR}/superstore/variant-kaggle-2014-2017-cp1252/'
            'Sample - Superstore.csv"\n    layout: superstore\n    dataset: superstore_kaggle\n'
            "  product_catalog:\n    type: csv",
            1,
        )
    )
    report = Project.load(project).run()
    yield project, report, datasets_dir
    mp.undo()


def raw_rows(paths: list[Path], encoding: str = "utf-8-sig") -> list[list[str]]:
    rows: list[list[str]] = []
    for path in paths:
        with path.open(newline="", encoding=encoding) as fh:
            rows.extend(list(csv.reader(fh))[1:])
    return rows


def test_exits_zero_with_warnings_only(public_run) -> None:
    _, report, _ = public_run
    assert report.exit_code == 0, report.error
    failed = {(r["dataset"], r["rule"]) for r in report.quality if not r["passed"]}
    assert ("online_retail", "customer_id_complete") in failed  # 24.93 % missing: a warning
    assert all(r["severity"] == "warn" for r in report.quality if not r["passed"]), (
        "only warnings may fail on real data"
    )


def test_every_row_reconciles(public_run) -> None:
    project, report, datasets = public_run
    by_ds = {d.dataset: d for d in report.datasets}
    uci = by_ds["online_retail"]
    assert uci.input_rows == 541_909  # SOURCE.md: the UCI row count
    assert uci.input_rows == len(
        raw_rows(sorted((datasets / "online-retail" / "by-day").glob("*.csv")))
    )
    assert uci.quarantined_rows == 5_268  # exactly the exact-duplicate copies
    assert uci.accepted_rows + uci.quarantined_rows == uci.input_rows
    for name in ("superstore", "superstore_kaggle"):
        assert by_ds[name].input_rows == 9_994
        assert by_ds[name].quarantined_rows == 0
    assert by_ds["customer_behaviour"].input_rows == 3_900
    assert by_ds["product_catalog"].input_rows == 3_694
    recorded = dict(
        (d, (i, a, q))
        for d, i, a, q in fetch(
            project,
            "select dataset, input_rows, accepted_rows, quarantined_rows "
            "from meta.dataset_accounting",
        )
    )
    for d in report.datasets:
        assert recorded[d.dataset] == (d.input_rows, d.accepted_rows, d.quarantined_rows)


def test_cp1252_variant_reads_the_same_money(public_run) -> None:
    project, _, _ = public_run
    totals = fetch(
        project,
        "select round(sum(sales), 4), round(sum(profit), 4), count(*) from raw.superstore_kaggle",
    )
    assert totals == [(pytest.approx(2_297_200.8603), pytest.approx(286_397.0217), 9_994)]
    names = fetch(
        project,
        "select count(*) from raw.superstore_kaggle where product_name like '%\u00a0%'",
    )
    assert names[0][0] > 0  # the A0 bytes became no-break spaces, not mojibake


def test_fact_table_matches_independent_counts(public_run) -> None:
    project, _, datasets = public_run
    uci = raw_rows(sorted((datasets / "online-retail" / "by-day").glob("*.csv")))
    distinct_lines = len({tuple(r) for r in uci})
    facts = dict(fetch(project, "select source_system, count(*) from core.fct_sales group by 1"))
    assert facts["online_retail"] == distinct_lines == 541_909 - 5_268
    assert facts["superstore"] == 9_994
    revenue = fetch(
        project,
        "select round(sum(net_amount), 2) from core.fct_sales where source_system = 'superstore'",
    )[0][0]
    assert float(revenue) == pytest.approx(2_297_200.86, abs=0.01)
    cancellations = fetch(
        project,
        "select count(distinct order_id) from core.fct_sales "
        "where source_system = 'online_retail' and is_cancellation",
    )[0][0]
    assert cancellations == len({r[0] for r in uci if r[0].startswith("C")}) == 3_836


def test_rerun_reads_nothing_new(public_run) -> None:
    project, _, _ = public_run
    second = Project.load(project).run()
    assert second.exit_code == 0
    assert sum(d.input_rows for d in second.datasets) == 0
    assert fetch(project, "select count(*) from meta.ingested_files")[0][0] == 305 + 4

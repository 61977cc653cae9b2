"""End to end on generated data: accounting, defects found, idempotency, atomicity, resume."""

from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

import pytest
from tests.e2e.helpers import (
    defects,
    fetch,
    staging_tables,
    table_fingerprints,
    tables_in,
    uses_duckdb,
    warehouse_path,
)

from retailhub.config.settings import WarehouseConfig
from retailhub.errors import EXIT_OK, EXIT_QUALITY_GATE, EXIT_RUNTIME, UsageError
from retailhub.pipeline.project import Project
from retailhub.pipeline.report import RunReport
from retailhub.warehouse.factory import open_warehouse

STAR = {
    "core.dim_date",
    "core.dim_customer",
    "core.dim_product",
    "core.dim_geography",
    "core.dim_channel",
    "core.fct_sales",
    "core.fct_customer_activity",
}

# (dataset, defect kind, column) -> the rule of the demo project that must catch it.
RULE_FOR_DEFECT = {
    ("online_retail", "missing_value", "customer_id"): "customer_id_complete",
    ("online_retail", "missing_value", "description"): "description_complete",
    ("online_retail", "duplicate_row", None): "no_exact_duplicates",
    ("online_retail", "negative_price", "unit_price"): "price_not_negative",
    ("online_retail", "impossible_date", "invoice_at"): "type:invoice_at",
    ("online_retail", "non_numeric", "quantity"): "type:quantity",
    ("online_retail", "bad_code", "stock_code"): "stock_code_format",
    ("online_retail", "bad_code", "country"): "country_known",
    ("online_retail", "orphan_key", "stock_code"): "product_in_catalog",
    ("product_catalog", "missing_value", "list_price"): "list_price_complete",
    ("customer_behaviour", "missing_value", "email"): "email_complete",
    ("customer_behaviour", "orphan_key", "customer_id"): "known_customer",
    ("customer_behaviour", "stale_file", None): "files_fresh",
}


def csv_rows(folder: Path) -> int:
    """Data rows in every CSV below ``folder`` (header lines excluded), counted independently."""
    import csv

    total = 0
    for path in folder.rglob("*.csv"):
        with path.open(newline="", encoding="utf-8-sig") as fh:
            total += sum(1 for _ in csv.reader(fh)) - 1
    return total


def test_run_publishes_star_schema_and_reconciles_every_row(demo_project: Path) -> None:
    report = Project.load(demo_project).run()
    assert report.exit_code == EXIT_OK, report.error
    assert set(report.tables) >= STAR
    for d in report.datasets:
        assert d.input_rows == d.accepted_rows + d.quarantined_rows
        raw = demo_project / "data" / d.dataset
        assert d.input_rows == csv_rows(raw), d.dataset
    # the ledger says the same, and the warehouse holds exactly those rows
    for dataset, inp, acc, qua in fetch(
        demo_project,
        "select dataset, input_rows, accepted_rows, quarantined_rows from meta.dataset_accounting",
    ):
        assert inp == acc + qua
        assert fetch(demo_project, f"select count(*) from raw.{dataset}")[0][0] == acc
        # Every dataset's quarantine table exists, empty if nothing was quarantined.
        assert fetch(demo_project, f"select count(*) from quarantine.{dataset}")[0][0] == qua
    assert 0 in {d.quarantined_rows for d in report.datasets}  # the case is covered
    run = fetch(demo_project, "select status, rows_in from meta.pipeline_runs")
    assert run == [("success", sum(d.input_rows for d in report.datasets))]
    assert fetch(demo_project, "select count(*) from meta.lineage")[0][0] > 0


def test_every_injected_defect_is_found_and_counted(demo_project: Path) -> None:
    report = Project.load(demo_project).run()
    assert report.exit_code == EXIT_OK, report.error
    results = {(r["dataset"], r["rule"]): r for r in report.quality}
    injected = defects(demo_project)["defects"]
    assert injected, "the generator injected nothing"
    for d in injected:
        key = (d["dataset"], d["kind"], d.get("column"))
        rule = RULE_FOR_DEFECT[key]
        found = results[(d["dataset"], rule)]
        assert found["failing_rows"] == d["count"], (key, found)
    # quarantined rows carry their reasons, and every quarantine reason is an injected defect
    reasons = fetch(
        demo_project,
        "select count(*) from quarantine.online_retail "
        "where coalesce(array_length(reasons, 1), 0) = 0",
    )
    assert reasons == [(0,)]
    stale = results[("customer_behaviour", "files_fresh")]
    assert not stale["passed"]
    assert "stale" in str(stale["sample"])


def test_rerun_on_same_inputs_is_a_no_op(demo_project: Path) -> None:
    project = Project.load(demo_project)
    first = project.run()
    assert first.exit_code == EXIT_OK
    assert first.up_to_date_with is None
    before = table_fingerprints(demo_project, ("core", "marts", "raw", "quarantine"))
    second = project.run()
    assert second.exit_code == EXIT_OK
    assert all(d.input_rows == 0 for d in second.datasets)
    assert table_fingerprints(demo_project, ("core", "marts", "raw", "quarantine")) == before
    files = fetch(
        demo_project, "select count(*), count(distinct checksum) from meta.ingested_files"
    )
    assert files[0][0] == files[0][1]
    # Nothing new and nothing changed: the build is not repeated, nothing is published, and
    # the summary names the run whose tables are current (also after another such run).
    assert second.up_to_date_with == first.run_id
    assert second.tables == {}
    assert {s["task"]: s["rows_out"] for s in second.stages}["transform"] == 0
    lineage = "select count(*) from meta.lineage where run_id = ?"
    assert fetch(demo_project, lineage, [second.run_id]) == [(0,)]
    assert fetch(demo_project, lineage, [first.run_id])[0][0] > 0
    assert project.run().up_to_date_with == first.run_id
    # A run that checked no row has no quality score (it used to claim 100).
    scores = "select quality_score from meta.pipeline_runs order by started_at"
    assert [s is None for (s,) in fetch(demo_project, scores)] == [False, True, True]


def test_a_run_without_new_input_rebuilds_when_the_build_would_differ(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    assert project.run().up_to_date_with is not None
    # How to run (retries, memory) does not change what is built: nothing to rebuild
    monkeypatch.setenv("RETAILHUB_RUNNER__RETRIES", "3")
    assert Project.load(demo_project).run().up_to_date_with is not None
    # A changed setting of the build (here an environment override) may change what is built.
    monkeypatch.setenv("RETAILHUB_ANALYTICS__TOP_INSIGHTS", "3")
    changed = Project.load(demo_project).run()
    assert changed.exit_code == EXIT_OK, changed.error
    assert changed.up_to_date_with is None and set(changed.tables) >= STAR
    # An explicit full refresh rebuilds.
    refreshed = Project.load(demo_project).run(full_refresh=True)
    assert refreshed.up_to_date_with is None and set(refreshed.tables) >= STAR
    # A pseudonymisation key set since the build changes what analyst-facing tables must hold.
    monkeypatch.setenv("RETAILHUB_PSEUDONYM_KEY", "a-test-key-of-32-characters-0123")
    keyed = Project.load(demo_project).run()
    assert keyed.exit_code == EXIT_OK, keyed.error
    assert keyed.up_to_date_with is None
    names = fetch(demo_project, "select customer_name from core.dim_customer")
    assert names and all(n is None or len(n) == 64 for (n,) in names)
    # A published table dropped by hand (a star-schema table, then a mart) is rebuilt by the
    # next run, not taken as current.
    for table in ("core.fct_customer_activity", "marts.mart_insights"):
        with Project.load(demo_project).open_warehouse() as wh:
            wh.execute(f"drop table {table}")
        repaired = Project.load(demo_project).run()
        assert repaired.exit_code == EXIT_OK, repaired.error
        assert repaired.up_to_date_with is None, table
        assert fetch(demo_project, f"select count(*) from {table}")[0][0] > 0
    assert Project.load(demo_project).run().up_to_date_with == repaired.run_id


def test_the_build_compared_is_the_last_one_published(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    # Another configuration builds and publishes, but the ledger never marks the run a
    # success (killed between the publish's commit and the ledger's last write).
    monkeypatch.setenv("RETAILHUB_ANALYTICS__TOP_INSIGHTS", "3")
    (demo_project / "data" / "online_retail" / "2099-03-extra.csv").write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "990003,POST,POSTAGE,1,2025-12-30 12:00:00,18.0,,United Kingdom\n",
        encoding="utf-8",
    )
    other = Project.load(demo_project).run()
    assert other.exit_code == EXIT_OK and other.up_to_date_with is None
    with Project.load(demo_project).open_warehouse() as wh:
        wh.execute(
            "update meta.pipeline_runs set status = 'running' where run_id = ?", [other.run_id]
        )
    # Back to the first configuration with nothing new: what is published is the other
    # configuration's build, so it is rebuilt, not taken for the first run's.
    monkeypatch.delenv("RETAILHUB_ANALYTICS__TOP_INSIGHTS")
    again = Project.load(demo_project).run()
    assert again.exit_code == EXIT_OK, again.error
    assert again.up_to_date_with is None and set(again.tables) >= STAR


def test_a_resumed_full_refresh_still_rebuilds(demo_project: Path) -> None:
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    models = demo_project / "models"
    (models / "broken.sql").write_text("select * from no_such_table", encoding="utf-8")
    (models / "broken.yml").write_text("name: broken\nschema: core\ngrain: none\n")
    failed = project.run(full_refresh=True)
    assert failed.exit_code == EXIT_RUNTIME and failed.resumable
    (models / "broken.sql").unlink()
    (models / "broken.yml").unlink()
    # Nothing new and the models as at the last build: only the kept --full-refresh rebuilds.
    resumed = project.run(resume=failed.run_id)
    assert resumed.exit_code == EXIT_OK, resumed.error
    assert resumed.up_to_date_with is None and set(resumed.tables) >= STAR


def test_new_file_adds_only_its_rows(demo_project: Path) -> None:
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    before = fetch(demo_project, "select count(*) from raw.online_retail")[0][0]
    extra = demo_project / "data" / "online_retail" / "2099-01-extra.csv"
    extra.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "990001,POST,POSTAGE,1,2025-12-30 10:00:00,18.0,,United Kingdom\n"
        "990001,POST,POSTAGE,2,2025-12-30 10:00:00,18.0,,United Kingdom\n",
        encoding="utf-8",
    )
    report = project.run()
    assert report.exit_code == EXIT_OK, report.error
    by_ds = {d.dataset: d for d in report.datasets}
    assert by_ds["online_retail"].input_rows == 2
    assert by_ds["superstore"].input_rows == 0
    assert fetch(demo_project, "select count(*) from raw.online_retail")[0][0] == before + 2
    lines = fetch(
        demo_project,
        "select count(*) from core.fct_sales where order_id = '990001'",
    )
    assert lines == [(2,)]


def test_a_new_file_repeating_published_keys_quarantines_the_repeats(demo_project: Path) -> None:
    """A re-export repeating Superstore Row IDs used to pass the batch's uniqueness rule and
    break the star schema's key (exit 3 on every later run). Now the repeats fail the rule:
    a file of mostly repeats stops at the gate, a few repeats among new rows are quarantined."""
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    sales = "select count(*) from core.fct_sales where source_system = 'superstore'"
    (before,) = fetch(demo_project, sales)
    published = {r for (r,) in fetch(demo_project, "select row_id from raw.superstore")}
    (original,) = sorted((demo_project / "data" / "superstore").glob("*.csv"))
    with original.open(newline="", encoding="utf-8-sig") as f:
        header, *rows = list(csv.reader(f))
    row_id, order_id = header.index("Row ID"), header.index("Order ID")
    repeats = [r for r in rows if r[row_id].isdigit() and int(r[row_id]) in published][:2]

    def fresh(n: int) -> list[str]:
        row = list(repeats[0])
        row[row_id], row[order_id] = str(9_900_000 + n), f"CA-2099-{990_000 + n}"
        return row

    def deliver(name: str, lines: list[list[str]]) -> Path:
        path = original.parent / name
        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([header, *lines])
        return path

    mostly_repeats = deliver("zz-reexport.csv", [*repeats, fresh(0)])
    gated = project.run()
    # stopped by the gate, not failed: its input must change, resuming it would not
    with pytest.raises(UsageError, match="has status quality_failed; only failed runs resume"):
        project.run(resume=gated.run_id)
    assert gated.exit_code == EXIT_QUALITY_GATE
    assert "superstore.order_line_unique: 2 of 3 rows repeat an earlier key" in (gated.error or "")
    assert fetch(demo_project, sales) == [before]
    mostly_repeats.unlink()

    deliver("zz-new-orders.csv", [repeats[1], *(fresh(n) for n in range(1, 121))])
    report = project.run()
    assert report.exit_code == EXIT_OK, report.error
    store = {d.dataset: d for d in report.datasets}["superstore"]
    assert (store.input_rows, store.accepted_rows, store.quarantined_rows) == (121, 120, 1)
    (reasons,) = fetch(
        demo_project,
        "select reasons from quarantine.superstore where _source_file like '%zz-new-orders.csv'",
    )
    assert reasons[0] == [
        f"order_line_unique: duplicate key (row_id = {repeats[1][row_id]}) first seen at "
        f"{original.relative_to(demo_project).as_posix()}:{rows.index(repeats[1]) + 1} "
        "(published by an earlier run)"
    ]
    assert fetch(demo_project, sales) == [(before[0] + 120,)]


def test_a_later_catalog_delivery_supersedes_the_earlier_listing(demo_project: Path) -> None:
    """Keys that may come back (a catalog lists a product again with its new price) are
    unique within a delivery only: the new listing passes the gate and wins in dim_product."""
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    (catalog,) = sorted((demo_project / "data" / "product_catalog").glob("*.csv"))
    with catalog.open(newline="", encoding="utf-8-sig") as f:
        header, first, *_ = list(csv.reader(f))
    first[header.index("list_price")] = "999.5"
    with (catalog.parent / "zz-price-change.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, first])
    report = project.run()
    assert report.exit_code == EXIT_OK, report.error
    price = "select list_price from core.dim_product where product_id = ? and is_in_catalog"
    assert [float(p) for (p,) in fetch(demo_project, price, [first[0]])] == [999.5]


def test_a_changed_file_already_ingested_stops_the_run(demo_project: Path) -> None:
    """A monthly file rewritten in place once doubled every invoice in it (the history keeps
    the first version's rows); the run now stops before ingesting anything, naming the file."""
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    sql = "select count(*), sum(net_amount) from core.fct_sales"
    published = fetch(demo_project, sql)
    runs = fetch(demo_project, "select count(*) from meta.ingested_files")
    monthly = sorted((demo_project / "data" / "online_retail").glob("*.csv"))[0]
    original = monthly.read_bytes()
    monthly.write_bytes(original.replace(b",", b", ", 1))  # one header byte more
    report = project.run()
    assert report.exit_code == EXIT_RUNTIME
    assert str(monthly) in (report.error or "") and "different content" in (report.error or "")
    assert fetch(demo_project, sql) == published
    assert fetch(demo_project, "select count(*) from meta.ingested_files") == runs
    # The ingested version back in place: nothing new, nothing doubled.
    monthly.write_bytes(original)
    assert project.run().exit_code == EXIT_OK
    assert fetch(demo_project, sql) == published


def test_a_changed_file_replaces_its_earlier_version_when_the_source_says_so(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``on_changed_file: replace`` a rewritten file is a correction: its rows replace
    the earlier version's in the raw history, the quarantine and the facts, and a file put
    back as it was is a correction too."""
    monkeypatch.setenv("RETAILHUB_SOURCES__ONLINE_RETAIL__ON_CHANGED_FILE", "replace")
    monkeypatch.setenv("RETAILHUB_SOURCES__SUPERSTORE__ON_CHANGED_FILE", "replace")
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    # the file with the most quarantined lines, so that both sides are replaced
    ((name,),) = fetch(
        demo_project,
        "select _source_file from quarantine.online_retail group by 1 order by count(*) desc, 1 "
        "limit 1",
    )
    # files are recorded by their path relative to the project
    monthly = demo_project / name
    assert not Path(name).is_absolute() and monthly.is_file()
    in_file = "select count(*) from {} where _source_file = ?"
    published = fetch(demo_project, "select count(*), sum(net_amount) from core.fct_sales")
    raw_before = fetch(demo_project, "select count(*) from raw.online_retail")[0][0]
    file_raw = fetch(demo_project, in_file.format("raw.online_retail"), [name])[0][0]
    file_quarantined = fetch(demo_project, in_file.format("quarantine.online_retail"), [name])[0][0]
    assert file_raw > 0 and file_quarantined > 0  # both sides of the replacement are covered
    (line,) = fetch(
        demo_project,
        "select min(_line) from raw.online_retail where _source_file = ?",
        [name],
    )[0]

    # The correction: one accepted line's quantity changed, the file's last line dropped.
    original = monthly.read_bytes()
    with monthly.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    quantity = rows[0].index("Quantity")
    rows[line][quantity] = str(int(rows[line][quantity]) + 1000)
    with monthly.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows[:-1])
    report = project.run()
    assert report.exit_code == EXIT_OK, report.error
    (batch,) = [d for d in report.datasets if d.dataset == "online_retail"]
    assert batch.input_rows == len(rows) - 2  # header and dropped line
    run = report.run_id
    assert fetch(
        demo_project,
        "select count(*), count(distinct _run_id) from raw.online_retail where _source_file = ?",
        [name],
    ) == [(batch.accepted_rows, 1)]
    assert fetch(
        demo_project,
        "select min(_run_id) from quarantine.online_retail where _source_file = ?",
        [name],
    ) == [(run if batch.quarantined_rows else None,)]
    assert fetch(demo_project, "select count(*) from raw.online_retail") == [
        (raw_before - file_raw + batch.accepted_rows,)
    ]
    lines = fetch(
        demo_project,
        "select count(*), sum(case when _line = ? then quantity end) from core.fct_sales "
        "where _source_file = ?",
        [line, name],
    )
    assert lines == [(batch.accepted_rows, int(rows[line][quantity]))]
    deleted = fetch(
        demo_project,
        "select object_name, rows_affected from meta.audit_log "
        "where operation = 'delete' and run_id = ? order by 1",
        [run],
    )
    assert deleted == [
        ("quarantine.online_retail", file_quarantined),
        ("raw.online_retail", file_raw),
    ]

    # The first version back in place is a correction of the correction: as first published.
    monthly.write_bytes(original)
    assert project.run().exit_code == EXIT_OK
    assert fetch(demo_project, "select count(*), sum(net_amount) from core.fct_sales") == published
    assert fetch(demo_project, in_file.format("raw.online_retail"), [name]) == [(file_raw,)]

    # A Superstore file emptied to its header (no volume rule there): no row to check, but the
    # file's rows still leave the history and the facts.
    orders = sorted((demo_project / "data" / "superstore").glob("*.csv"))[0]
    recorded = orders.relative_to(demo_project).as_posix()
    assert fetch(demo_project, in_file.format("core.fct_sales"), [recorded])[0][0] > 0
    header = orders.read_bytes().splitlines(keepends=True)[0]
    orders.write_bytes(header)
    assert project.run().exit_code == EXIT_OK
    for table in ("raw.superstore", "core.fct_sales"):
        assert fetch(demo_project, in_file.format(table), [recorded]) == [(0,)], table


def test_a_moved_project_still_knows_its_files(
    demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are recorded by their path relative to the project, so a project moved (or
    cloned, or mounted elsewhere) finds nothing new, and a file corrected there replaces its
    earlier version instead of counting as a new file beside it."""
    monkeypatch.setenv("RETAILHUB_SOURCES__ONLINE_RETAIL__ON_CHANGED_FILE", "replace")
    assert Project.load(demo_project).run().exit_code == EXIT_OK
    lines = (
        "select (select count(*) from raw.online_retail)"
        " + (select count(*) from quarantine.online_retail)"
    )
    (before,) = fetch(demo_project, lines)
    moved = tmp_path / "moved"
    shutil.move(demo_project, moved)

    report = Project.load(moved).run()
    assert report.exit_code == EXIT_OK, report.error
    assert {d.dataset: d.input_rows for d in report.datasets} == {
        d.dataset: 0 for d in report.datasets
    }
    assert fetch(moved, lines) == [before]

    monthly = sorted((moved / "data" / "online_retail").glob("*.csv"))[0]
    monthly.write_bytes(b"".join(monthly.read_bytes().splitlines(keepends=True)[:-1]))
    report = Project.load(moved).run()
    assert report.exit_code == EXIT_OK, report.error
    assert fetch(moved, lines) == [(before[0] - 1,)]
    recorded = monthly.relative_to(moved).as_posix()
    assert fetch(moved, "select count(*) from meta.ingested_files where uri = ?", [recorded]) == [
        (2,)
    ]


def test_a_history_recorded_by_absolute_path_keeps_its_names(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warehouses written before files were named relative to the project hold absolute
    names. Such a source keeps recording absolute names, so a correction still replaces the
    rows of the name its file was recorded under, and no file is known by two kinds of name."""
    monkeypatch.setenv("RETAILHUB_SOURCES__ONLINE_RETAIL__ON_CHANGED_FILE", "replace")
    assert Project.load(demo_project).run().exit_code == EXIT_OK
    root = demo_project.resolve().as_posix() + "/"
    url = os.environ.get("RETAILHUB_WAREHOUSE__URL", f"duckdb:///{warehouse_path(demo_project)}")
    with open_warehouse(WarehouseConfig(url=url), demo_project) as wh:  # as an older run wrote it
        wh.execute(
            "update meta.ingested_files set uri = ? || uri where source = 'online_retail'", [root]
        )
        for table in ("raw.online_retail", "quarantine.online_retail", "core.fct_sales"):
            wh.execute(
                f"update {table} set _source_file = ? || _source_file "
                "where _source = 'online_retail'",
                [root],
            )
    lines = (
        "select (select count(*) from raw.online_retail)"
        " + (select count(*) from quarantine.online_retail)"
    )
    (before,) = fetch(demo_project, lines)
    monthly = sorted((demo_project / "data" / "online_retail").glob("*.csv"))[0]
    monthly.write_bytes(b"".join(monthly.read_bytes().splitlines(keepends=True)[:-1]))
    report = Project.load(demo_project).run()
    assert report.exit_code == EXIT_OK, report.error
    assert fetch(demo_project, lines) == [(before[0] - 1,)]
    recorded = "select count(*) from meta.ingested_files where uri = ?"
    assert fetch(demo_project, recorded, [str(monthly.resolve())]) == [(2,)]
    relative = (
        "select count(*) from {} where _source = 'online_retail' and _source_file not like '/%'"
    )
    for table in ("raw.online_retail", "core.fct_sales"):
        assert fetch(demo_project, relative.format(table)) == [(0,)], table


def test_failure_between_two_table_writes_leaves_previous_state(demo_project: Path) -> None:
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    before = table_fingerprints(demo_project)
    (demo_project / "data" / "online_retail" / "2099-02-extra.csv").write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "990002,POST,POSTAGE,1,2025-12-30 11:00:00,18.0,,United Kingdom\n",
        encoding="utf-8",
    )
    written: list[str] = []

    def explode(table: str) -> None:
        written.append(table)
        if len(written) == 3:
            raise RuntimeError("injected failure between two table writes")

    report = project.run(publish_hook=explode)
    assert report.exit_code == EXIT_RUNTIME
    assert len(written) == 3
    assert table_fingerprints(demo_project) == before
    status = fetch(demo_project, "select status from meta.pipeline_runs order by started_at")
    assert [s for (s,) in status] == ["success", "failed"]
    # The failed run's builds wait, unpublished, for its resume; the next publish removes them.
    left = staging_tables(demo_project)
    assert bool(left) == uses_duckdb(demo_project)  # PostgreSQL stages in its own schema
    assert all(report.run_id.lower().replace("-", "_") in t for t in left)
    again = project.run()
    assert again.exit_code == EXIT_OK, again.error
    assert staging_tables(demo_project) == []
    assert fetch(demo_project, "select count(*) from core.fct_sales where order_id = '990002'") == [
        (1,)
    ]


def test_resume_continues_from_the_failed_task(demo_project: Path) -> None:
    project = Project.load(demo_project)
    models = demo_project / "models"
    # a project-local model that fails: the transform task breaks after ingest+validate succeed
    (models / "broken.sql").write_text("select * from no_such_table", encoding="utf-8")
    (models / "broken.yml").write_text(
        "name: broken\nschema: core\ngrain: none\n", encoding="utf-8"
    )
    failed = project.run()
    assert failed.exit_code == EXIT_RUNTIME
    assert failed.resumable
    assert "broken" in (failed.error or "")
    assert tables_in(demo_project, "core") == 0
    (models / "broken.sql").unlink()
    (models / "broken.yml").unlink()
    resumed = project.run(resume=failed.run_id)
    assert resumed.exit_code == EXIT_OK, resumed.error
    assert resumed.run_id == failed.run_id
    statuses = {s["task"]: s["status"] for s in resumed.stages}
    assert statuses["ingest:online_retail"] == "reused"
    assert statuses["transform"] == "success"
    attempts = fetch(
        demo_project,
        "select task, count(*) from meta.task_runs where run_id = ? group by task",
        [failed.run_id],
    )
    counts = dict(attempts)
    assert counts["ingest:online_retail"] == 1  # not re-run
    assert counts["transform"] == 2  # failed once, then succeeded
    assert fetch(demo_project, "select count(*) from core.fct_sales")[0][0] > 0
    assert staging_tables(demo_project) == []


def _a_failed_run_then_a_published_one(project: Project) -> tuple[RunReport, RunReport]:
    def explode(table: str) -> None:
        raise RuntimeError("injected failure while publishing")

    failed = project.run(publish_hook=explode)
    assert failed.exit_code == EXIT_RUNTIME and failed.resumable
    later = project.run()
    assert later.exit_code == EXIT_OK, later.error
    return failed, later


def test_a_failed_run_cannot_resume_after_another_run_published(demo_project: Path) -> None:
    """The later run took in the failed run's files too: resuming would load them twice."""
    project = Project.load(demo_project)
    failed, later = _a_failed_run_then_a_published_one(project)
    before = table_fingerprints(demo_project)
    # its scratch database was kept for a resume this publish ruled out: removed with it
    assert not project.work_db(failed.run_id).exists()
    with pytest.raises(UsageError, match=f"run {later.run_id} has published since"):
        project.run(resume=failed.run_id)
    assert table_fingerprints(demo_project) == before
    raw = fetch(demo_project, "select count(*), count(distinct _run_id) from raw.online_retail")
    assert raw[0][1] == 1


def test_a_run_that_published_but_died_before_its_status_is_known_as_published(
    demo_project: Path,
) -> None:
    """A run's status is written after its publish commits. Killed in between, it reads
    'running': resuming an earlier failed run must still see that it published (else the
    earlier run's files load twice), and resuming it must not publish again."""
    project = Project.load(demo_project)
    failed, later = _a_failed_run_then_a_published_one(project)
    url = os.environ.get("RETAILHUB_WAREHOUSE__URL", f"duckdb:///{warehouse_path(demo_project)}")
    with open_warehouse(WarehouseConfig(url=url), demo_project) as wh:  # as if killed then
        wh.execute(
            "update meta.pipeline_runs set status = 'running', finished_at = null where run_id = ?",
            [later.run_id],
        )
        # as at the end of its publish: the time a resume compares with
        published_at = wh.query(
            "select max(recorded_at) from meta.lineage where run_id = ?", [later.run_id]
        ).rows[0][0]
    before = table_fingerprints(demo_project)
    with pytest.raises(UsageError, match=f"run {later.run_id} had already published"):
        project.run(resume=later.run_id)
    status = "select status, finished_at from meta.pipeline_runs where run_id = ?"
    assert fetch(demo_project, status, [later.run_id]) == [("success", published_at)]
    with pytest.raises(UsageError, match=f"run {later.run_id} has published since"):
        project.run(resume=failed.run_id)
    assert table_fingerprints(demo_project) == before


def test_a_killed_run_is_closed_by_the_next_run(demo_project: Path) -> None:
    """A run killed mid-way reads 'running' for ever unless someone closes it: the next run,
    which holds the writer lock and so knows nobody else is running, records it as failed
    (resumable), or as a success when its publish had committed."""
    project = Project.load(demo_project)
    failed, later = _a_failed_run_then_a_published_one(project)
    url = os.environ.get("RETAILHUB_WAREHOUSE__URL", f"duckdb:///{warehouse_path(demo_project)}")
    with open_warehouse(WarehouseConfig(url=url), demo_project) as wh:  # as if both were killed
        wh.execute(
            "update meta.pipeline_runs set status = 'running', finished_at = null "
            "where run_id in (?, ?)",
            [failed.run_id, later.run_id],
        )
        wh.execute(
            "update meta.task_runs set status = 'running', finished_at = null "
            "where run_id = ? and task = 'publish'",
            [failed.run_id],
        )
    # before a run closes them, the history shows them as interrupted: nobody writes
    shown = {r["run_id"]: r["status"] for r in project.runs()}
    assert shown[failed.run_id] == shown[later.run_id] == "interrupted"
    assert project.run_detail(failed.run_id)["run"]["status"] == "interrupted"
    # a run killed before it could record why says what to do next
    assert (
        f"retailhub run --resume {later.run_id}" in project.run_detail(later.run_id)["run"]["error"]
    )
    if not uses_duckdb(demo_project):  # a writer that holds the lock is running
        with project.open_warehouse(work_db=project.work_db(later.run_id)):
            shown = {r["run_id"]: r["status"] for r in project.runs()}
        assert (shown[later.run_id], shown[failed.run_id]) == ("running", "interrupted")
    checked = project.check()
    assert checked.exit_code == EXIT_OK, checked.error
    runs = fetch(
        demo_project,
        "select run_id, status, error from meta.pipeline_runs where run_id in (?, ?)",
        [failed.run_id, later.run_id],
    )
    closed = {run_id: (status, error) for run_id, status, error in runs}
    assert closed[later.run_id] == ("success", None)  # its publish had committed
    assert closed[failed.run_id][0] == "failed"
    assert closed[failed.run_id][1].startswith("interrupted: the process stopped")
    # the later publish removed its scratch database: no resume to suggest
    assert closed[failed.run_id][1].endswith(
        "start a new run (its scratch database is gone, or it was a check)"
    )
    tasks = fetch(
        demo_project,
        "select status, error from meta.task_runs where run_id = ? and task = 'publish' "
        "order by attempt desc",
        [failed.run_id],
    )
    assert tasks[0] == ("failed", "interrupted: the process stopped during this task")


def test_a_publish_removes_only_its_own_warehouses_stale_scratch(demo_project: Path) -> None:
    """A project folder can serve two warehouses (dev and prod profiles): a publish on one
    must not delete the scratch a failed run on the other keeps for its resume."""
    project = Project.load(demo_project)
    other = project.work_db("20200101T000000-abcdef")  # a run id this warehouse never saw
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"another warehouse's failed run")
    failed, _later = _a_failed_run_then_a_published_one(project)
    assert not project.work_db(failed.run_id).exists()
    assert other.read_bytes() == b"another warehouse's failed run"


def test_resume_after_a_failure_inside_the_in_place_split(demo_project: Path, monkeypatch) -> None:
    """The gate deletes the quarantined rows from the typed batch in place: a validate task that
    fails after the delete is re-run from the landed rows, not from the half-split table."""
    from retailhub.quality.compiler import CompiledQuality

    split = CompiledQuality.accept_in_place_sql
    failed_once: list[str] = []

    def fail_once_after_the_delete(self, staged: str, checked: str) -> list[str]:
        statements = split(self, staged, checked)
        if staged.endswith("online_retail") and not failed_once:
            failed_once.append(staged)
            return [*statements, "select error('injected failure after the split')"]
        return statements

    monkeypatch.setattr(CompiledQuality, "accept_in_place_sql", fail_once_after_the_delete)
    project = Project.load(demo_project)
    failed = project.run()
    assert failed.exit_code == EXIT_RUNTIME
    assert failed.resumable and "injected failure" in (failed.error or "")
    resumed = project.run(resume=failed.run_id)
    assert resumed.exit_code == EXIT_OK, resumed.error
    (row,) = fetch(
        demo_project,
        "select input_rows, accepted_rows, quarantined_rows from meta.dataset_accounting "
        "where dataset = 'online_retail'",
    )
    inp, acc, qua = row
    assert inp == csv_rows(demo_project / "data" / "online_retail") == acc + qua
    assert qua > 0
    assert fetch(demo_project, "select count(*) from raw.online_retail")[0][0] == acc
    assert fetch(demo_project, "select count(*) from quarantine.online_retail")[0][0] == qua


def test_blocking_quality_rule_stops_publishing(demo_project: Path) -> None:
    cfg = demo_project / "retailhub.yaml"
    text = cfg.read_text()
    text = text.replace(
        "{name: customer_id_complete, kind: completeness, column: customer_id, severity: warn}",
        "{name: customer_id_complete, kind: completeness, column: customer_id, threshold: 1.0}",
    )
    cfg.write_text(text)
    report = Project.load(demo_project).run()
    assert report.exit_code == EXIT_QUALITY_GATE
    assert "customer_id_complete" in (report.error or "")
    assert tables_in(demo_project, "core", "raw") == 0
    recorded = fetch(
        demo_project,
        "select passed from meta.quality_results where rule = 'customer_id_complete'",
    )
    assert recorded == [(False,)]


def test_check_publishes_nothing(demo_project: Path) -> None:
    report = Project.load(demo_project).check()
    assert report.exit_code == EXIT_OK, report.error
    assert report.datasets and report.quality
    assert not report.tables
    assert tables_in(demo_project, "core", "raw") == 0


def test_stale_file_keeps_its_age(demo_project: Path) -> None:
    stale = [d for d in defects(demo_project)["defects"] if d["kind"] == "stale_file"]
    assert stale
    path = demo_project / "data" / stale[0]["file"]
    assert time.time() - os.path.getmtime(path) > 20 * 86400


@pytest.mark.parametrize("layout_dir", ["superstore"])
def test_second_run_after_rm_data_keeps_history(demo_project: Path, layout_dir: str) -> None:
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    rows = fetch(
        demo_project, "select count(*) from core.fct_sales where source_system = 'superstore'"
    )
    shutil.rmtree(demo_project / "data" / layout_dir)
    (demo_project / "data" / layout_dir).mkdir()
    # an empty folder is a missing input: a clear runtime error, and nothing changes
    before = table_fingerprints(demo_project)
    report = project.run()
    assert report.exit_code == EXIT_RUNTIME
    assert layout_dir in (report.error or "")
    assert table_fingerprints(demo_project) == before
    assert (
        fetch(
            demo_project, "select count(*) from core.fct_sales where source_system = 'superstore'"
        )
        == rows
    )


@pytest.mark.parametrize("demo_project", ["postgres"], indirect=True)  # DuckDB: no connection
def test_a_run_whose_warehouse_connection_dies_stays_resumable(demo_project: Path) -> None:
    """A failover or a DBA's pg_terminate_backend during the publish: recording the failure
    fails too, and the error used to escape without the run id, deleting the scratch
    database (so --resume said it was gone) and leaving the run 'running'."""
    import psycopg

    from retailhub.errors import WarehouseError

    url = os.environ["RETAILHUB_WAREHOUSE__URL"]

    def kill_the_writer(_table: str) -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name like 'retailhub writer%' and pid <> pg_backend_pid() "
                "and datname = current_database()"  # other tests run beside this one
            )

    project = Project.load(demo_project)
    with pytest.raises(WarehouseError) as stopped:
        project.run(publish_hook=kill_the_writer)
    ((run_id,),) = fetch(demo_project, "select run_id from meta.pipeline_runs")
    assert f"run {run_id} stopped: " in stopped.value.message
    assert f"'retailhub run --resume {run_id}'" in stopped.value.message
    assert project.work_db(run_id).exists()
    assert fetch(demo_project, "select count(*) from meta.lineage") == [(0,)]  # rolled back
    resumed = project.run(resume=run_id)
    assert resumed.exit_code == EXIT_OK, resumed.error
    assert fetch(demo_project, "select status from meta.pipeline_runs") == [("success",)]


def test_a_different_pseudonym_key_is_refused_unless_rotating(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong key (the staging key in production) gave every customer a second pseudonym
    and a second SCD2 history, silently and for good."""
    from retailhub.errors import EXIT_USAGE
    from retailhub.warehouse.pseudonymise import KEY_ENV, key_check

    first, second = "first-key-0123456789abcdef", "second-key-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, first)
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    before = table_fingerprints(demo_project)
    monkeypatch.setenv(KEY_ENV, second)
    refused = project.run(full_refresh=True)
    assert refused.exit_code == EXIT_USAGE
    assert f"{KEY_ENV} is not the key the published pseudonyms were made with" in refused.error
    assert key_check(first.encode()) in refused.error and first not in refused.error
    assert table_fingerprints(demo_project) == before
    rotated = project.run(full_refresh=True, rotate_pseudonym_key=True)
    assert rotated.exit_code == EXIT_OK, rotated.error
    assert project.run(full_refresh=True).exit_code == EXIT_OK  # the new key is the key now
    checks = fetch(
        demo_project,
        "select detail from meta.audit_log where operation = 'pseudonymise' order by logged_at",
    )
    assert [d for (d,) in checks][-1] == f"key check {key_check(second.encode())}"


def test_a_run_without_the_pseudonym_key_does_not_publish_pseudonymised_data_in_clear(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler that lost RETAILHUB_PSEUDONYM_KEY published names and e-mails in clear
    (a warning only) and gave every customer a second history; going back to clear values
    is now a deliberate --rotate-pseudonym-key, after which keyless runs are normal again."""
    from retailhub.errors import EXIT_USAGE
    from retailhub.warehouse.pseudonymise import KEY_ENV

    monkeypatch.setenv(KEY_ENV, "first-key-0123456789abcdef")
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    before = table_fingerprints(demo_project)
    monkeypatch.delenv(KEY_ENV)
    refused = project.run(full_refresh=True)
    assert refused.exit_code == EXIT_USAGE
    assert f"{KEY_ENV} is not set, but the published personal columns are pseudonyms" in (
        refused.error or ""
    )
    assert table_fingerprints(demo_project) == before
    assert project.run(full_refresh=True, rotate_pseudonym_key=True).exit_code == EXIT_OK
    clear = fetch(demo_project, "select count(*) from core.dim_customer where email like '%@%'")
    assert clear[0][0] > 0
    assert project.run(full_refresh=True).exit_code == EXIT_OK  # clear is the state now
    monkeypatch.setenv(KEY_ENV, "first-key-0123456789abcdef")
    assert project.run(full_refresh=True).exit_code == EXIT_OK  # and a key may come back
    assert fetch(demo_project, "select count(*) from core.dim_customer where email like '%@%'") == [
        (0,)
    ]


def test_a_nul_character_quarantines_its_row_instead_of_failing_the_publish(
    demo_project: Path,
) -> None:
    """DuckDB stores a NUL in text, PostgreSQL refuses it: one NUL byte in one field of a
    feed made the whole PostgreSQL publish fail (COPY: invalid byte sequence 0x00)."""
    (demo_project / "data" / "online_retail" / "2099-08-nul.csv").write_bytes(
        b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        b"990008,85123A,WHITE\x00HEART,1,2025-12-30 12:00:00,2.55,17850,United Kingdom\n"
        b"990009,85123A,WHITE HEART,1,2025-12-30 12:00:00,2.55,17850,United Kingdom\n"
    )
    report = Project.load(demo_project).run()
    assert report.exit_code == EXIT_OK, report.error
    quarantined = fetch(
        demo_project,
        "select invoice_no, description, reasons from quarantine.online_retail "
        "where invoice_no in ('990008', '990009') order by invoice_no",
    )
    nul = "type:description: contains a NUL character (kept as U+FFFD)"
    invoice, description, reasons = quarantined[0]
    assert (invoice, description, reasons[0]) == ("990008", "WHITE\ufffdHEART", nul)
    assert all(nul not in list(r) for _i, _d, r in quarantined[1:])  # only the row with it


@pytest.mark.parametrize("demo_project", ["postgres"], indirect=True)  # DuckDB: one process
def test_a_publish_blocked_by_readers_names_them(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said only that "readers held the tables": which session to go and ask was left
    to pg_locks."""
    import psycopg

    from retailhub.warehouse import pg_publish

    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    before = table_fingerprints(demo_project)
    monkeypatch.setattr(pg_publish, "SWAP_ATTEMPTS", 1)
    monkeypatch.setattr(pg_publish, "SWAP_LOCK_TIMEOUT", "200ms")
    url = os.environ["RETAILHUB_WAREHOUSE__URL"]
    with psycopg.connect(url, application_name="dashboard-blocker") as reader:
        reader.execute("select count(*) from core.fct_sales").fetchall()  # holds ACCESS SHARE
        blocked = project.run(full_refresh=True)
    assert blocked.exit_code == EXIT_RUNTIME
    assert "readers held the tables it replaces (pid " in (blocked.error or "")
    assert "application dashboard-blocker in a transaction for" in (blocked.error or "")
    assert table_fingerprints(demo_project) == before


def test_the_pseudonym_key_check_holds_on_resume_and_follows_a_restore(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A resumed run reused its health task's success, so another key slipped through; and
    after a restore the last key check in the audit trail could be newer than the data."""
    from retailhub.errors import EXIT_USAGE
    from retailhub.warehouse.pseudonymise import KEY_ENV

    first, second = "first-key-0123456789abcdef", "second-key-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, first)
    project = Project.load(demo_project)
    assert project.run().exit_code == EXIT_OK
    backup = project.backup(tmp_path / "first-key.backup")

    def explode(_table: str) -> None:
        raise RuntimeError("injected failure while publishing")

    failed = project.run(full_refresh=True, publish_hook=explode)
    assert failed.exit_code == EXIT_RUNTIME and failed.resumable
    monkeypatch.setenv(KEY_ENV, second)
    resumed = project.run(resume=failed.run_id)
    assert resumed.exit_code == EXIT_USAGE
    assert "is not the key the published pseudonyms were made with" in (resumed.error or "")
    assert project.run(full_refresh=True, rotate_pseudonym_key=True).exit_code == EXIT_OK

    project.restore(backup.path)  # the first key's pseudonyms are back
    assert project.run(full_refresh=True).exit_code == EXIT_USAGE  # the second key is wrong now
    monkeypatch.setenv(KEY_ENV, first)
    assert project.run(full_refresh=True).exit_code == EXIT_OK


def test_a_failed_run_cannot_be_resumed_after_a_restore(demo_project: Path, tmp_path: Path) -> None:
    """The restored warehouse holds none of the failed run's builds (a backup leaves staging
    tables out): its resume failed half-way (a CatalogException, exit 3) and offered the same
    resume again. An empty --resume (an unset variable) started a new run."""
    project = Project.load(demo_project)

    def explode(_table: str) -> None:
        raise RuntimeError("injected failure while publishing")

    failed = project.run(publish_hook=explode)
    assert failed.exit_code == EXIT_RUNTIME and failed.resumable
    backup = project.backup(tmp_path / "after-the-failure.backup")
    project.restore(backup.path)
    assert not project.work_db(failed.run_id).exists()
    with pytest.raises(UsageError, match=f"run {failed.run_id} cannot be resumed"):
        project.run(resume=failed.run_id)
    with pytest.raises(UsageError, match="--resume needs a run id"):
        project.run(resume="")
    assert project.run().exit_code == EXIT_OK


def test_a_resume_that_fails_before_deciding_keeps_its_scratch(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scratch database was deleted whenever a resume failed before its plan was read
    (the warehouse did not answer a ledger query): the retry then said it was gone."""
    from retailhub.errors import WarehouseUnavailable
    from retailhub.warehouse.ledger import Ledger

    project = Project.load(demo_project)

    def explode(_table: str) -> None:
        raise RuntimeError("injected failure while publishing")

    failed = project.run(publish_hook=explode)
    assert failed.exit_code == EXIT_RUNTIME and failed.resumable

    def unreachable(*_args: object, **_kwargs: object) -> list[tuple[str, str]]:
        raise WarehouseUnavailable("injected: the warehouse did not answer")

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "close_interrupted", unreachable)
        with pytest.raises(WarehouseUnavailable):
            project.run(resume=failed.run_id)
    assert project.work_db(failed.run_id).exists()
    assert project.run(resume=failed.run_id).exit_code == EXIT_OK

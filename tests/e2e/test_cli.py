"""The retailhub command as a person uses it: help, exit codes, clear errors, no partial state."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.helpers import fetch, table_fingerprints

pytestmark = pytest.mark.e2e

COMMANDS = ["init", "generate", "run", "check", "runs", "query", "bench"]


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retailhub", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "COLUMNS": "200", **(env or {})},
    )


def test_help_teaches_and_version_prints() -> None:
    top = cli("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert command in top.stdout
    assert "Exit codes" in top.stdout and "130 interrupted" in top.stdout
    assert "<int>" not in top.stdout  # -v counts: -vv, not -v 2
    for command in COMMANDS:
        sub = cli(command, "--help")
        assert sub.returncode == 0, command
        assert "Usage" in sub.stdout
        assert "<bool>" not in sub.stdout, command  # a flag takes no value
    assert "--full-refresh " in cli("run", "--help").stdout
    assert cli("runs", "show", "--help").returncode == 0
    from retailhub.cli.main import DEMO_MIN_ROWS
    from retailhub.demo import MIN_ROWS

    assert DEMO_MIN_ROWS == MIN_ROWS  # generate --help states the generator's own minimum
    assert "x>=100" in " ".join(cli("generate", "--help").stdout.split())
    version = cli("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("retailhub ")


def test_init_generate_run_query_runs(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    assert cli("init", str(project)).returncode == 0
    assert (project / "retailhub.yaml").is_file()
    again = cli("init", str(project))
    assert again.returncode == 2
    assert "already exists" in again.stderr
    gen = cli("generate", "--out", str(project / "data"), "--rows", "1500", "--seed", "3")
    assert gen.returncode == 0, gen.stderr
    run = cli("run", "--project", str(project))
    assert run.returncode == 0, run.stdout + run.stderr
    for heading in ("Datasets", "Quality scorecard", "Tables published", "Stages"):
        assert heading in run.stdout
    # Nothing new: the summary says the warehouse is current and publishes no table.
    rerun = cli("run", "--project", str(project))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Warehouse up to date" in rerun.stdout and "Tables published" not in rerun.stdout
    # No row checked, no score: the dataset rows read "0 0 0 - 0/0", not a score of 100.
    rows = [line.split("│") for line in rerun.stdout.splitlines() if "online_retail" in line]
    assert [c.strip() for c in rows[0][2:7]] == ["0", "0", "0", "-", "0/0"]
    # ... and so does the ledger: the rerun's accounting has no score, the first run's has one.
    scores = cli(
        "query",
        "-p",
        str(project),
        "--format",
        "csv",
        "select count(a.quality_score) as scored, count(*) as datasets "
        "from meta.dataset_accounting a join meta.pipeline_runs r using (run_id) "
        "group by r.started_at order by r.started_at",
    )
    assert scores.returncode == 0, scores.stderr
    assert scores.stdout.split() == ["scored,datasets", "4,4", "0,4"]
    as_json = cli(
        "query",
        "-p",
        str(project),
        "--format",
        "json",
        "select source_system, count(*) as n from core.fct_sales group by 1 order by 1",
    )
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [r["source_system"] for r in rows] == ["online_retail", "superstore"]
    assert all(r["n"] > 0 for r in rows)
    # strict JSON: NaN and infinity are null, a blob its hex, a date its ISO text
    odd = cli(
        "query",
        "-p",
        str(project),
        "-f",
        "json",
        "select 'nan'::double as n, 'inf'::double as i, '\\xAB'::blob as b, "
        "date '2024-01-02' as d, [1.5, 'nan'::double] as l",
    )
    assert odd.returncode == 0, odd.stderr
    assert json.loads(odd.stdout, parse_constant=lambda c: pytest.fail(c)) == [
        {"n": None, "i": None, "b": "ab", "d": "2024-01-02", "l": [1.5, None]}
    ]
    empty = cli("query", "-p", str(project), " ; ")
    assert empty.returncode == 2 and "no SQL given" in empty.stderr
    as_csv = cli("query", "-p", str(project), "--format", "csv", "select 1 as a, 'x' as b")
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["a", "b"], ["1", "x"]]
    # a repeated column name keeps both values in the table (the second hid the first)
    twice = cli("query", "-p", str(project), "select 'first' as a, 'second' as a")
    assert twice.returncode == 0 and "first" in twice.stdout and "second" in twice.stdout
    write = cli("query", "-p", str(project), "delete from core.fct_sales")
    assert write.returncode == 2
    assert "read-only" in write.stderr.lower() or "read only" in write.stderr.lower()
    runs = cli("runs", "-p", str(project))
    assert runs.returncode == 0
    assert "success" in runs.stdout
    run_id = json.loads(
        cli(
            "query", "-p", str(project), "-f", "json", "select run_id from meta.pipeline_runs"
        ).stdout
    )[0]["run_id"]
    # The list shows each run id whole: it is what 'runs show' takes.
    assert run_id in runs.stdout
    show = cli("runs", "show", run_id, "-p", str(project))
    assert show.returncode == 0, show.stderr
    # The run record is printed one field per line, numbers grouped for reading.
    sql = "select rows_in from meta.pipeline_runs where run_id = ?"
    [(rows_in,)] = fetch(project, sql, [run_id])
    assert re.search(rf"rows_in\s+│\s+{rows_in:,}\s", show.stdout), show.stdout
    assert "ingest:online_retail" in show.stdout
    assert "publish" in show.stdout
    unknown = cli("runs", "show", "nope", "-p", str(project))
    assert unknown.returncode == 2
    assert "nope" in unknown.stderr
    # --warehouse wins over a RETAILHUB_WAREHOUSE__URL exported for the whole shell.
    elsewhere = {"RETAILHUB_WAREHOUSE__URL": f"duckdb:///{tmp_path / 'elsewhere.duckdb'}"}
    count = "select count(*) as n from meta.pipeline_runs"
    lost = cli("query", "-p", str(project), "-f", "csv", count, env=elsewhere)
    assert lost.returncode == 3 and "elsewhere.duckdb" in lost.stderr
    url = f"duckdb:///{project / 'warehouse' / 'retailhub.duckdb'}"
    flagged = cli("query", "-p", str(project), "-w", url, "-f", "csv", count, env=elsewhere)
    assert flagged.returncode == 0, flagged.stderr
    assert flagged.stdout.split() == ["n", "2"]


@pytest.fixture(scope="module")
def ran_project(tmp_path_factory: pytest.TempPathFactory, generated_data: Path) -> Path:
    """The demo project after one good run, made once for the module."""
    project = tmp_path_factory.mktemp("ran") / "shop"
    assert cli("init", str(project)).returncode == 0
    shutil.rmtree(project / "data")
    shutil.copytree(generated_data, project / "data")
    first = cli("run", "-p", str(project))
    assert first.returncode == 0, first.stderr
    return project


@pytest.fixture
def small_project(tmp_path: Path, ran_project: Path) -> Path:
    """A copy of the project after one good run (so 'no partial state' has a state to
    protect); each test spoils its own copy. The ledger knows the files by checksum, so the
    copy's files are as ingested as the original's."""
    project = tmp_path / "shop"
    shutil.copytree(ran_project, project)
    return project


def test_a_damaged_warehouse_file_is_a_runtime_failure_not_bad_sql(small_project: Path) -> None:
    """A checksum error in a data block used to read as the user's SQL (exit 2)."""
    path = small_project / "warehouse" / "retailhub.duckdb"
    data = bytearray(path.read_bytes())
    for at in range(1 << 20, len(data) - 8, 1 << 18):  # past the header, every 256 KiB
        data[at : at + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    result = cli("query", "-p", str(small_project), "select count(*), sum(net_amount), "
                 "count(distinct customer_id) from core.fct_sales")  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert str(path) in result.stderr and "retailhub restore" in result.stderr
    # the ledger's own reads say the same (they used to print "unexpected Error")
    for command in ("runs", "run", "insights"):
        result = cli(command, "-p", str(small_project))
        message = " ".join(result.stderr.split())
        assert result.returncode == 3, (command, result.stderr)
        assert f"warehouse {path} failed" in message, (command, message)
        assert "retailhub restore" in message and "unexpected" not in message


@pytest.mark.skipif(
    os.access("/proc/sys", os.W_OK), reason="/proc/sys is writable here (a privileged container)"
)
def test_a_folder_the_user_cannot_write_is_named_with_its_key(small_project: Path) -> None:
    """DuckDB reports a folder it cannot write only at its first commit, as an IO or
    transaction error about a .wal or scratch file ("unexpected TransactionException").
    /proc/sys stands in for a read-only mount: even root cannot write there."""
    result = cli("run", "-p", str(small_project), env={"RETAILHUB_RUNNER__WORK_DIR": "/proc/sys"})
    assert result.returncode == 3, result.stderr
    message = " ".join(result.stderr.split())
    assert "cannot write the scratch folder /proc/sys (key 'runner.work_dir')" in message
    result = cli(
        "run",
        "-p",
        str(small_project),
        env={"RETAILHUB_WAREHOUSE__URL": "duckdb:////proc/sys/rh/retailhub.duckdb"},
    )
    assert result.returncode == 3, result.stderr
    message = " ".join(result.stderr.split())
    assert "cannot create the warehouse folder /proc/sys/rh (key 'warehouse.url')" in message


def add_database_source(project: Path, name: str, url: str) -> None:
    """Declare a database source ``name`` (table ``orders``, dataset ``name``) in the project."""
    cfg = project / "retailhub.yaml"
    source = (
        f"  {name}:\n    type: database\n    url: {url}\n    table: orders\n"
        f"    layout: online_retail\n    dataset: {name}\n"
    )
    cfg.write_text(cfg.read_text().replace("sources:\n", "sources:\n" + source, 1))


def _bad_run(project: Path) -> subprocess.CompletedProcess[str]:
    before = table_fingerprints(project)
    result = cli("run", "-p", str(project))
    assert table_fingerprints(project) == before, "a failed run changed published state"
    return result


HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def test_malformed_csv_line_names_file_and_line(small_project: Path) -> None:
    bad = small_project / "data" / "online_retail" / "2099-03-bad.csv"
    bad.write_text(
        HEADER + "1,85123A,X,1,2025-12-01 10:00:00,1.0,12346.0,United Kingdom\n"
        "2,85123A,X,1,2025-12-01 10:00:00,1.0,12346.0,United Kingdom,EXTRA,FIELDS\n",
        encoding="utf-8",
    )
    result = _bad_run(small_project)
    assert result.returncode == 3
    assert "2099-03-bad.csv" in result.stderr
    assert "line" in result.stderr.lower()


def test_wrong_encoding_names_file_and_encoding(small_project: Path) -> None:
    bad = small_project / "data" / "online_retail" / "2099-04-cp1252.csv"
    bad.write_bytes(
        (
            HEADER + "3,85123A,CAF\u00c9 \u201cMUG\u201d,1,2025-12-01 10:00:00,1.0,12346.0,France\n"
        ).encode("cp1252")
    )
    result = _bad_run(small_project)
    assert result.returncode == 3
    assert "2099-04-cp1252.csv" in result.stderr
    assert "encoding" in result.stderr.lower()


def test_truncated_file_is_refused(small_project: Path) -> None:
    bad = small_project / "data" / "online_retail" / "2099-05-cut.csv"
    bad.write_text(HEADER + '4,85123A,"UNFINISHED QUOTE,1,2025-12-01 1', encoding="utf-8")
    result = _bad_run(small_project)
    assert result.returncode == 3
    assert "2099-05-cut.csv" in result.stderr


def test_a_header_only_file_is_named_by_the_gate(small_project: Path) -> None:
    """An export that came out empty holds its header only: the batch has no rows, the
    volume rule stops the run (exit 1), and, since the file is never recorded as ingested
    while the gate refuses it, every later run too: the message names the file."""
    (small_project / "data" / "online_retail" / "2099-07-empty.csv").write_text(HEADER)
    result = _bad_run(small_project)
    assert result.returncode == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert "online_retail.has_rows: 0 accepted rows" in message
    assert "new file(s) with no data rows: data/online_retail/2099-07-empty.csv" in message


def test_a_file_whose_header_lacks_a_column_is_refused(small_project: Path) -> None:
    """The landing table is the union of every file's columns: a file naming Quantity
    'Amount' once landed with NULL quantities and failed only in the model tests (exit 3)."""
    bad = small_project / "data" / "online_retail" / "2099-06-renamed.csv"
    bad.write_text(
        HEADER.replace("Quantity", "Amount")
        + "5,85123A,X,1,2025-12-01 10:00:00,1.0,12346.0,United Kingdom\n",
        encoding="utf-8",
    )
    result = _bad_run(small_project)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "source 'online_retail'" in message
    assert "needs column(s) quantity" in message
    assert f"header of {bad}" in message


def test_a_misspelt_layout_is_named_before_the_rules_that_follow_from_it(
    small_project: Path,
) -> None:
    """A source's dataset is named after its layout: the typo used to read as a referential
    rule pointing at a dataset no source provides."""
    cfg = small_project / "retailhub.yaml"
    cfg.write_text(cfg.read_text().replace("layout: online_retail", "layout: online_retial", 1))
    result = _bad_run(small_project)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "key 'sources.online_retail.layout': unknown layout 'online_retial'" in message
    assert "resume" not in message  # refused before a run was recorded


def test_missing_file_names_the_path(small_project: Path) -> None:
    cfg = small_project / "retailhub.yaml"
    cfg.write_text(cfg.read_text().replace("data/superstore/*.csv", "data/nowhere/superstore.csv"))
    result = _bad_run(small_project)
    assert result.returncode == 3
    assert "nowhere" in result.stderr


def test_unknown_config_key_exits_2(small_project: Path) -> None:
    cfg = small_project / "retailhub.yaml"
    cfg.write_text(cfg.read_text().replace("  retries: 2\n", "  retries: 2\n  paralell: 4\n"))
    result = _bad_run(small_project)
    assert result.returncode == 2
    assert "runner.paralell" in result.stderr
    assert "retailhub.yaml" in result.stderr


def test_reading_the_warehouse_needs_no_source_variable(small_project: Path) -> None:
    """`runs` and `query` used to fail when a source's ${VAR} (a database URL) was unset."""
    add_database_source(small_project, "erp", "${RH_TEST_UNSET_ERP_URL}")
    project = ["-p", str(small_project)]
    assert cli("runs", *project).returncode == 0
    query = cli(
        "query", *project, "-f", "csv", "select count(*) > 0 as published from core.fct_sales"
    )
    assert (query.returncode, query.stdout.split()) == (0, ["published", "True"])
    result = _bad_run(small_project)
    assert result.returncode == 2
    assert "RH_TEST_UNSET_ERP_URL" in result.stderr and "sources.erp.url" in result.stderr


def test_query_of_a_wide_table_cuts_no_value(small_project: Path) -> None:
    """Thirty columns do not fit across 200 characters: each row becomes a block of
    ``column  value`` lines (as psql's \\x) instead of cells cut to '…'."""
    sql = "select * from core.fct_sales order by sales_key limit 2"
    result = cli("query", "-p", str(small_project), sql)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert "row 1" in result.stdout and "row 2" in result.stdout
    (expected,) = fetch(small_project, "select max(product_id) from (" + sql + ")")
    assert "│ product_id " in result.stdout and f" {expected[0]} " in result.stdout
    narrow = cli("query", "-p", str(small_project), "select 1 as a, 2 as b")
    assert "row 1" not in narrow.stdout and "┃ a" in narrow.stdout  # narrow: a table
    empty = cli("query", "-p", str(small_project), "select 1 as a, 2 as b where false")
    assert "┃ a" in empty.stdout and "(0 rows)" in empty.stdout  # the columns, as psql


def test_query_reads_the_warehouse_and_nothing_else(small_project: Path) -> None:
    """A read-only DuckDB connection still writes files: COPY ... TO 'retailhub.yaml' once
    replaced the project file (exit 0)."""
    config = small_project / "retailhub.yaml"
    before = config.read_text()
    for sql in (
        f"copy (select 1 as a) to '{config}' (format csv)",
        f"select * from read_csv('{config}')",
        "set enable_external_access = true",
    ):
        result = cli("query", "-p", str(small_project), sql)
        assert result.returncode == 2, (sql, result.stderr)
    assert config.read_text() == before
    # JSON keys are unique: a repeated column name kept only its last value
    result = cli("query", "-p", str(small_project), "-f", "json", "select 1 as a, 2 as a")
    assert json.loads(result.stdout) == [{"a": 1, "a_2": 2}]
    # several statements: DuckDB would show only the last one's result (PostgreSQL refuses)
    result = cli("query", "-p", str(small_project), "select 1 as a; select 2 as b")
    assert result.returncode == 2 and "one SQL statement at a time" in result.stderr
    assert cli("query", "-p", str(small_project), "select 1 as a;").returncode == 0


def test_generate_does_not_overwrite_data_unless_forced(tmp_path: Path) -> None:
    """Regenerated over ingested files, every later run stopped on 24 'changed' files."""
    data = tmp_path / "data"
    assert cli("generate", "--out", str(data), "--rows", "200").returncode == 0
    before = (data / "defects.json").read_bytes()
    again = cli("generate", "--out", str(data), "--rows", "300", "--seed", "9")
    assert again.returncode == 2, again.stderr
    assert "already holds" in again.stderr and "--force" in again.stderr
    assert (data / "defects.json").read_bytes() == before
    forced = cli("generate", "--out", str(data), "--rows", "300", "--seed", "9", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (data / "defects.json").read_bytes() != before


def test_wrong_paths_limits_and_run_ids_are_usage_errors(tmp_path: Path) -> None:
    """Each used to end in a Python exception name with exit 3."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (("init", str(afile)), ("generate", "--out", str(afile), "--rows", "2000")):
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        assert str(afile) in result.stderr and "not a folder" in result.stderr
        assert "unexpected" not in result.stderr  # no "unexpected NotADirectoryError"
    project = tmp_path / "shop"
    assert cli("init", str(project)).returncode == 0
    assert cli("runs", "-p", str(project), "--limit", "-1").returncode == 2
    resume = cli("run", "-p", str(project), "--resume", "nope")
    assert resume.returncode == 2
    assert "no run nope in the ledger" in resume.stderr


@pytest.mark.parametrize(
    ("before", "after", "named"),
    [
        ("column: customer_id, severity", "column: customer_idx, severity", "customer_idx"),
        ('"unit_price >= 0 or', '"unit_pricez >= 0 or', "unit_pricez"),
        ("layout: superstore", "layout: superstor", "sources.superstore.layout"),
    ],
)
def test_a_broken_rule_or_layout_fails_without_new_input(
    small_project: Path, before: str, after: str, named: str
) -> None:
    """No file arrived, so no rule runs: the health task still compiles every rule and layout."""
    cfg = small_project / "retailhub.yaml"
    assert before in cfg.read_text()
    cfg.write_text(cfg.read_text().replace(before, after, 1))
    for command in ("run", "check"):
        result = cli(command, "-p", str(small_project))
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        assert named in result.stderr + result.stdout


def test_unreachable_database_names_the_host(small_project: Path) -> None:
    add_database_source(small_project, "legacy_orders", "mysql://root@127.0.0.1:1/shop")
    cfg = small_project / "retailhub.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "runner:\n  retries: 2\n  backoff_s: 1.0", "runner:\n  retries: 1\n  backoff_s: 0.1"
        )
    )
    result = _bad_run(small_project)
    assert result.returncode == 3
    assert "127.0.0.1:1" in result.stderr


def test_check_with_nothing_new_says_so(small_project: Path) -> None:
    """After a run took every file in, check has nothing to judge: an empty table alone read
    as if the rules had not run."""
    result = cli("check", "-p", str(small_project))
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "No new input: every source file or row here is already in the warehouse" in said

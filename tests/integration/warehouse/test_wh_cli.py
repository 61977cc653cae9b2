"""The PostgreSQL warehouse through the ``retailhub`` command, as an operator uses it.

Concurrent runs are serialised; ``warehouse init`` → runs as the loader → backup → damage →
restore leaves identical tables and a complete audit trail; the password never shows up in
any output, the ledger, or the backup.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase, free_port

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]

KEY = "cli-pseudonym-key-0123456789abcdef"


def cli(
    *args: str, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RETAILHUB_PSEUDONYM_KEY": KEY, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "retailhub.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retailhub.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RETAILHUB_PSEUDONYM_KEY": KEY},
    )


def loader_url(db: PgDatabase) -> str:
    return db.url.replace(f"//{db.admin.user}@", f"//{db.roles.loader}@")


def test_concurrent_runs_are_serialised(demo_project: Path, pg_db: PgDatabase) -> None:
    other = demo_project.with_name("shop-2")
    shutil.copytree(demo_project, other)
    procs = [
        spawn("run", "--project", str(p), "--warehouse", pg_db.url) for p in (demo_project, other)
    ]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 3], [r[1][-500:] + r[2][-500:] for r in results]
    loser = next(r for r in results if r[0] == 3)
    assert "is being written by run" in loser[1] + loser[2]
    runs = pg_db.sql("select status, count(*) from meta.pipeline_runs group by status")
    assert runs == [("success", 1)]
    raw = pg_db.sql("select count(distinct _run_id) from raw.online_retail")
    assert raw == [(1,)]


def test_query_errors_are_the_users_or_the_servers(tmp_path: Path, pg_db: PgDatabase) -> None:
    """SQL the server refuses is a usage error (2), as on DuckDB; an unreachable server is a
    runtime failure (3)."""
    project = tmp_path / "shop"
    assert cli("init", str(project)).returncode == 0
    pg_db.sql("create schema if not exists core; create table core.kept as select 1 as a")
    writes = (
        "create table core.x (a int)",
        "delete from core.kept",
        # a default_transaction_read_only session used to take these as permission to write
        "set transaction read write; delete from core.kept",
        "commit; delete from core.kept",
        "set transaction read write",
    )
    for sql in ("selec 1", "select * from core.nope", *writes):
        refused = cli("query", "-p", str(project), "--warehouse", pg_db.url, sql)
        assert refused.returncode == 2, (sql, refused.stderr)
        assert "query failed" in refused.stderr
    assert pg_db.sql("select count(*) from core.kept") == [(1,)]
    # no run has written this database yet: said so, not "relation ... does not exist" (3)
    empty = cli("runs", "-p", str(project), "--warehouse", pg_db.url)
    assert empty.returncode == 2 and "holds no retailhub ledger yet" in empty.stderr
    assert cli("query", "-p", str(project), "--warehouse", pg_db.url, "select 1").returncode == 0
    port = free_port()
    down = cli("query", "-p", str(project), "--warehouse", f"postgresql://u@127.0.0.1:{port}/x",
               "select 1")  # fmt: skip
    assert down.returncode == 3, down.stderr


def test_init_runs_backup_restore_and_audit_trail(
    demo_project: Path, pg_db: PgDatabase, tmp_path: Path
) -> None:
    roles = ["--loader-role", pg_db.roles.loader, "--analyst-role", pg_db.roles.analyst]
    project = ["--project", str(demo_project)]
    cli("warehouse", "init", *project, "--warehouse", pg_db.url, *roles, check=True)
    cli("warehouse", "init", *project, "--warehouse", pg_db.url, *roles, check=True)
    # the analyst role cannot run: said so, not "unexpected InsufficientPrivilege"
    analyst = pg_db.url.replace(f"//{pg_db.admin.user}@", f"//{pg_db.roles.analyst}@")
    refused = cli("check", *project, "--warehouse", analyst)
    assert refused.returncode == 2, refused.stderr
    assert (
        f"role {pg_db.roles.analyst} may not use the warehouse's schemas: runs need the "
        "loader role" in " ".join(refused.stderr.split())
    )
    # nor read the ledger: a configuration error (exit 2) that says which role reads what
    history = cli("runs", *project, "--warehouse", analyst)
    assert history.returncode == 2, history.stderr
    assert "the analyst reads core and marts only" in " ".join(history.stderr.split())

    monthly = sorted((demo_project / "data" / "online_retail").glob("*.csv"))
    parked = tmp_path / monthly[-1].name
    shutil.move(monthly[-1], parked)
    cli("run", *project, "--warehouse", loader_url(pg_db), check=True)
    shutil.move(parked, monthly[-1])
    cli("run", *project, "--warehouse", loader_url(pg_db), check=True)
    cli("run", "--full-refresh", *project, "--warehouse", loader_url(pg_db), check=True)

    counts = dict(
        pg_db.sql(
            "select 'fct', count(*) from core.fct_sales union all "
            "select 'raw', count(*) from raw.online_retail"
        )
    )
    backup_file = tmp_path / "backups" / "warehouse.dump"
    out = cli(
        "backup", "--out", str(backup_file), *project, "--warehouse", loader_url(pg_db), check=True
    )
    assert "Backup written" in out.stdout
    assert backup_file.with_name("warehouse.dump.sha256").is_file()

    pg_db.sql("drop schema core cascade")
    assert pg_db.sql("select to_regclass('core.fct_sales') is null") == [(True,)]
    failed = cli("run", *project, "--warehouse", loader_url(pg_db))
    assert failed.returncode != 0  # the loader cannot recreate a schema it does not own

    cli("restore", str(backup_file), *project, "--warehouse", pg_db.url, check=True)
    restored = dict(
        pg_db.sql(
            "select 'fct', count(*) from core.fct_sales union all "
            "select 'raw', count(*) from raw.online_retail"
        )
    )
    assert restored == counts
    # The analyst can read the restored core again (grants came back with the schema).
    with psycopg.connect(pg_db.as_role(pg_db.roles.analyst).conninfo()) as conn:
        assert conn.execute("select count(*) from core.fct_sales").fetchone() == (counts["fct"],)

    ops = {r[0] for r in pg_db.sql("select distinct operation from meta.audit_log")}
    assert {"grant", "load", "replace", "full_refresh", "upsert", "backup", "restore"} <= ops
    who = pg_db.sql(
        "select distinct db_role, os_user is not null from meta.audit_log where operation = 'load'"
    )
    assert who == [(pg_db.roles.loader, True)]
    incremental = pg_db.sql(
        "select count(*) from meta.audit_log where object_name = 'core.fct_sales' "
        "and operation = 'load' and detail like 'new rows%'"
    )
    assert incremental[0][0] >= 1


def test_secret_never_appears_anywhere(
    demo_project: Path, pg_db: PgDatabase, tmp_path: Path
) -> None:
    secret = "Never-Show-This-Secret-31337"
    env = {"RETAILHUB_WAREHOUSE__PASSWORD": secret}
    project = ["--project", str(demo_project)]
    outputs = [
        cli("-vv", "run", *project, "--warehouse", pg_db.url, env=env),
        cli(
            "query",
            "select count(*) from core.fct_sales",
            *project,
            "--warehouse",
            pg_db.url,
            env=env,
        ),
        cli("runs", *project, "--warehouse", pg_db.url, env=env),
        cli("--help", env=env),
        cli("run", "--help", env=env),
        cli("warehouse", "init", "--help", env=env),
        cli(
            "-vv",
            "backup",
            "--out",
            str(tmp_path / "b.dump"),
            *project,
            "--warehouse",
            pg_db.url,
            env=env,
        ),
        cli(
            "-vv",
            "run",
            *project,
            "--warehouse",
            f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere",
            env=env,
        ),
    ]
    assert outputs[0].returncode == 0, outputs[0].stderr[-2000:]
    assert outputs[-1].returncode == 3
    for proc in outputs:
        assert secret not in proc.stdout and secret not in proc.stderr, proc.args
    tables = pg_db.sql(
        "select schemaname || '.' || tablename from pg_tables where schemaname = 'meta'"
    )
    for (table,) in tables:
        text = pg_db.sql(f"select coalesce(string_agg(t::text, ' '), '') from {table} t")[0][0]
        assert secret not in text, table
    assert secret.encode() not in (tmp_path / "b.dump").read_bytes()


def test_init_after_clear_publish_withholds_personal_data_until_pseudonymised(
    demo_project: Path, pg_db: PgDatabase
) -> None:
    """Runs before the analyst role existed published names in clear (allowed then, with a
    warning): init must not hand them to the analyst, and the next run, which must have the
    key, rewrites them, the SCD2 history's old versions included, and gives them back."""
    project = ["--project", str(demo_project)]
    roles = ["--loader-role", pg_db.roles.loader, "--analyst-role", pg_db.roles.analyst]
    no_key = {"RETAILHUB_PSEUDONYM_KEY": ""}
    cli("run", *project, "--warehouse", pg_db.url, env=no_key, check=True)
    clear = "select count(*) from core.dim_customer_history where customer_name !~ '^[0-9a-f]{64}$'"
    assert pg_db.sql(clear)[0][0] > 0
    pg_db.sql("analyze core.dim_customer")  # as autovacuum would, some time after the run

    init = cli("warehouse", "init", *project, "--warehouse", pg_db.url, *roles, check=True)
    assert "core.dim_customer" in init.stdout and "core.dim_customer_history" in init.stdout
    withheld = {
        r[0] for r in pg_db.sql("select object_name from meta.audit_log where operation = 'revoke'")
    }
    assert {"core.dim_customer", "core.dim_customer_history"} <= withheld
    assert "core.fct_sales" not in withheld
    analyst = pg_db.as_role(pg_db.roles.analyst).conninfo()
    with psycopg.connect(analyst, autocommit=True) as conn:
        for table in ("core.dim_customer", "core.dim_customer_history"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select customer_name from {table}")
        assert conn.execute("select count(*) from core.fct_sales").fetchone()[0] > 0

    refused = cli("run", *project, "--warehouse", loader_url(pg_db), env=no_key)
    assert refused.returncode == 2
    assert "RETAILHUB_PSEUDONYM_KEY" in refused.stderr
    # refused by the health check, before any task read input or built a model
    assert "this warehouse has an analyst role" in refused.stderr
    failed = "(select run_id from meta.pipeline_runs where status <> 'success')"
    ran = (
        f"select task, status from meta.task_runs where run_id in {failed} and status <> 'skipped'"
    )
    assert pg_db.sql(ran) == [("health", "failed")]

    cli("run", *project, "--warehouse", loader_url(pg_db), check=True)
    assert pg_db.sql(clear) == [(0,)]
    # giving the withheld tables back is audited, once
    regranted = pg_db.sql(
        "select object_name from meta.audit_log where operation = 'grant' "
        "and detail like 'select to %the table lacked it%' order by 1"
    )
    assert [t for (t,) in regranted] == ["core.dim_customer", "core.dim_customer_history"]
    # The old versions were rewritten, not closed: pseudonymising opened no new version.
    assert pg_db.sql(
        "select count(*) = count(distinct customer_key), bool_and(is_current) "
        "from core.dim_customer_history"
    ) == [(True, True)]
    with psycopg.connect(analyst, autocommit=True) as conn:
        names = conn.execute("select customer_name, email from core.dim_customer").fetchall()
        assert names and all(
            v is None or re.fullmatch("[0-9a-f]{64}", v) for row in names for v in row
        )
        assert conn.execute("select count(*) from core.dim_customer_history").fetchone()[0] > 0
        # nor through the planner's statistics of the merged table (they were of the clear
        # values until the merge analysed it again)
        stats = conn.execute(
            "select attname, coalesce(most_common_vals::text, '') || "
            "coalesce(histogram_bounds::text, '') from pg_stats "
            "where schemaname = 'core' and tablename = 'dim_customer' "
            "and attname in ('customer_name', 'email')"
        ).fetchall()
        assert {name for name, _ in stats} == {"customer_name", "email"}
        assert all(" " not in values and "@" not in values for _, values in stats), stats


def test_a_refused_warehouse_init_changes_nothing(tmp_path: Path, pg_db: PgDatabase) -> None:
    """A login that may not create roles was refused only after the schemas and ledger
    tables had been created."""
    project = tmp_path / "shop"
    assert cli("init", str(project)).returncode == 0
    plain = pg_db.roles.loader + "_plain"
    pg_db.sql(f"create role {plain} login")
    try:
        pg_db.sql(f"grant create on database {pg_db.name} to {plain}")
        url = pg_db.url.replace(f"//{pg_db.admin.user}@", f"//{plain}@")
        before = pg_db.sql("select nspname from pg_namespace order by 1")
        refused = cli("warehouse", "init", "-p", str(project), "--warehouse", url)
        assert refused.returncode == 2, refused.stderr
        assert "creates roles: connect as a superuser" in " ".join(refused.stderr.split())
        assert pg_db.sql("select nspname from pg_namespace order by 1") == before
    finally:
        pg_db.sql(f"drop owned by {plain}")
        pg_db.sql(f"drop role {plain}")

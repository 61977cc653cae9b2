"""The warehouse password never appears in logs, exceptions, the ledger or --help.

The private TLS server has a role that authenticates with a password (SCRAM), so the secret
is really used; every output channel is then searched for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.integration.warehouse.wh_helpers import Cluster, free_port
from typer.testing import CliRunner

from retailhub.config.settings import WarehouseConfig
from retailhub.errors import ConfigError, WarehouseError, WarehouseUnavailable
from retailhub.warehouse import audit
from retailhub.warehouse.base import PublishBatch
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.postgres import PostgresWarehouse

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]


def config(cluster: Cluster, password: str) -> WarehouseConfig:
    return WarehouseConfig(
        url=cluster.url(user=cluster.secret_role, db="rh_secret", sslmode="require"),
        password=SecretStr(password),
    )


def all_text(wh: PostgresWarehouse) -> str:
    """Every value of every table in meta, as text."""
    tables = wh.query(
        "select schemaname || '.' || tablename from pg_tables where schemaname = 'meta'"
    ).rows
    chunks = []
    for (table,) in tables:
        rows = wh.query(f"select t::text from {table} t").rows
        chunks.extend(r[0] for r in rows)
    return "\n".join(chunks)


def test_password_used_but_never_shown(
    tls_cluster: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tls_cluster.secret_password
    caplog.set_level(logging.DEBUG)
    wh = PostgresWarehouse(config(tls_cluster, secret), work_db=tmp_path / "w.duckdb")
    try:
        wh.init_schema()
        wh.compute.execute("create schema work.core")
        wh.compute.execute("create table work.core.t as select range as id from range(1000)")
        wh.publish(
            PublishBatch(
                replace={"core.t": "work.core.t"},
                rows={
                    "meta.pipeline_runs": [
                        {
                            "run_id": "r1",
                            "status": "success",
                            "started_at": audit.entry("load", "x")["logged_at"],
                            "warehouse_url": wh.display_url,
                        }
                    ]
                },
            )
        )
        audit.record(wh, [audit.entry("backup", "test")])
        with pytest.raises(WarehouseError) as info:
            wh.execute("select * from core.does_not_exist")
        outputs = [
            wh.display_url,
            repr(wh.target),
            str(info.value),
            all_text(wh),
            caplog.text,
        ]
    finally:
        wh.close()
    for text in outputs:
        assert secret not in text
    assert "rh_secret@127.0.0.1" in wh.display_url


def test_wrong_password_error_does_not_echo_it(tls_cluster: Cluster) -> None:
    wrong = "Wrong-Password-" + "x" * 12
    with pytest.raises(WarehouseUnavailable) as info:
        PostgresWarehouse(config(tls_cluster, wrong), read_only=True)
    assert "password authentication failed" in str(info.value)
    assert wrong not in str(info.value)
    assert wrong not in repr(info.value.context)


def test_unreachable_server_error_does_not_echo_the_password() -> None:
    secret = "Unreachable-Secret-42"
    cfg = WarehouseConfig(
        url=f"postgresql://someone@127.0.0.1:{free_port()}/db",
        password=SecretStr(secret),
        connect_timeout_s=2,
    )
    with pytest.raises(WarehouseUnavailable) as info:
        PostgresWarehouse(cfg, read_only=True)
    assert secret not in str(info.value)
    assert "cannot connect to the PostgreSQL warehouse" in str(info.value)


def test_password_in_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        PgTarget.from_url("postgresql://u:Hunter2-Secret@127.0.0.1:5432/db")
    assert "Hunter2-Secret" not in str(info.value)
    assert "RETAILHUB_WAREHOUSE__PASSWORD" in str(info.value)


def test_pgpassword_is_used_when_the_setting_is_absent(
    monkeypatch: pytest.MonkeyPatch, tls_cluster: Cluster
) -> None:
    monkeypatch.setenv("PGPASSWORD", tls_cluster.secret_password)
    cfg = WarehouseConfig(url=tls_cluster.url(user="rh_secret", db="rh_secret", sslmode="require"))
    wh = PostgresWarehouse(cfg, read_only=True)
    try:
        assert wh.query("select current_user").rows == [("rh_secret",)]
    finally:
        wh.close()


def test_help_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from retailhub.cli.main import app

    secret = "Help-Secret-Value-77"
    monkeypatch.setenv("RETAILHUB_WAREHOUSE__PASSWORD", secret)
    monkeypatch.setenv("PGPASSWORD", secret)
    runner = CliRunner()
    commands = [[], ["run"], ["query"], ["runs"], ["bench"]]
    for extra in (["warehouse"], ["backup"], ["restore"]):
        commands.append(extra)
    for args in commands:
        result = runner.invoke(app, [*args, "--help"])
        assert secret not in result.output, args

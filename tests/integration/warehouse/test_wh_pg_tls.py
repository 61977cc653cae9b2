"""TLS options pass through to every connection (psycopg, ADBC bulk loads, pg_dump).

A private server with a self-signed certificate accepts TCP only over TLS (``hostssl``
lines, no ``host`` line): ``sslmode=require`` and ``verify-full`` with the certificate work,
a plain connection is refused, a wrong root certificate is rejected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.warehouse.wh_helpers import Cluster

from retailhub.errors import WarehouseUnavailable
from retailhub.warehouse.base import PublishBatch
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.postgres import PostgresWarehouse

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]


def ssl_in_use(wh: PostgresWarehouse) -> bool:
    rows = wh.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()").rows
    return bool(rows and rows[0][0])


def test_sslmode_require_works_and_bulk_loads_use_tls(tls_cluster: Cluster, tmp_path: Path) -> None:
    target = PgTarget.from_url(tls_cluster.url(sslmode="require"))
    wh = PostgresWarehouse(target=target, work_db=tmp_path / "w.duckdb", label="tls")
    try:
        assert ssl_in_use(wh)
        wh.init_schema()
        wh.compute.execute("create schema work.core")
        wh.compute.execute("create table work.core.t as select range as id from range(50000)")
        wh.publish(PublishBatch(replace={"core.t": "work.core.t"}))
        assert wh.query("select count(*) from core.t").rows == [(50000,)]
        # The ADBC connection (bulk COPY, Arrow reads) is encrypted as well.
        table = wh.read_arrow(
            "select bool_and(ssl) as all_ssl, count(*) as n from pg_stat_ssl s "
            "join pg_stat_activity a using (pid) where a.application_name like 'retailhub%'"
        )
        assert table.column("all_ssl").to_pylist() == [True]
        assert table.column("n").to_pylist()[0] >= 2
    finally:
        wh.close()


def test_verify_full_with_the_server_certificate(tls_cluster: Cluster) -> None:
    url = tls_cluster.url(sslmode="verify-full", sslrootcert=str(tls_cluster.cert))
    wh = PostgresWarehouse(target=PgTarget.from_url(url), read_only=True)
    try:
        assert ssl_in_use(wh)
        assert "sslmode=verify-full" in wh.display_url
    finally:
        wh.close()


def test_plain_connection_is_refused(tls_cluster: Cluster) -> None:
    target = PgTarget.from_url(tls_cluster.url(sslmode="disable"))
    with pytest.raises(WarehouseUnavailable) as info:
        PostgresWarehouse(target=target, read_only=True)
    message = str(info.value)
    assert "no encryption" in message
    assert f"127.0.0.1:{tls_cluster.port}" in message


def test_wrong_root_certificate_is_rejected(tls_cluster: Cluster, tmp_path: Path) -> None:
    import subprocess

    other = tmp_path / "other.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-x509",
            "-days",
            "1",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/CN=someone-else",
            "-keyout",
            str(tmp_path / "other.key"),
            "-out",
            str(other),
        ],
        check=True,
        capture_output=True,
    )
    url = tls_cluster.url(sslmode="verify-full", sslrootcert=str(other))
    with pytest.raises(WarehouseUnavailable, match="certificate verify failed"):
        PostgresWarehouse(target=PgTarget.from_url(url), read_only=True)

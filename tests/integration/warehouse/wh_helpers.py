"""Helpers shared by the warehouse tests (a module with a unique name, importable from tests)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retailhub.warehouse.base import Warehouse
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.pg_roles import RoleNames

CANDIDATE_URLS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
PREFIX = "retailhub_test_"


def admin_target() -> PgTarget | None:
    import psycopg

    urls = [os.environ["RETAILHUB_TEST_PG_URL"]] if os.environ.get("RETAILHUB_TEST_PG_URL") else []
    for url in [*urls, *CANDIDATE_URLS]:
        target = PgTarget.from_url(url, connect_timeout_s=3)
        try:
            with psycopg.connect(target.conninfo(), autocommit=True) as conn:
                row = conn.execute(
                    "select rolsuper or rolcreatedb from pg_roles where rolname = current_user"
                ).fetchone()
                if row and row[0]:
                    return target
        except psycopg.Error:
            continue
    return None


@dataclass
class PgDatabase:
    """One throwaway database with its own role names."""

    admin: PgTarget  # administrator, connected to the throwaway database
    name: str
    roles: RoleNames

    @property
    def url(self) -> str:
        return f"postgresql://{self.admin.user}@{self.admin.host}:{self.admin.port}/{self.name}"

    def as_role(self, role: str) -> PgTarget:
        return self.admin.with_user(role)

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.admin.conninfo(), autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


def open_postgres(db: PgDatabase, tmp: Path, **kwargs: Any) -> Warehouse:
    from retailhub.warehouse.postgres import PostgresWarehouse

    label = kwargs.pop("label", "run-" + secrets.token_hex(3))
    target = kwargs.pop("target", db.admin)
    return PostgresWarehouse(target=target, work_db=tmp / "work" / f"{label}.duckdb", **kwargs)


def open_duckdb(path: Path, tmp: Path, **kwargs: Any) -> Warehouse:
    from retailhub.warehouse.duckdb import DuckDBWarehouse

    label = kwargs.pop("label", "run-" + secrets.token_hex(3))
    kwargs.pop("target", None)
    read_only = kwargs.pop("read_only", False)
    return DuckDBWarehouse(
        path, work_db=None if read_only else tmp / "work" / f"{label}.duckdb", read_only=read_only
    )


WarehouseOpener = Callable[..., Warehouse]


# -- a private PostgreSQL cluster (TLS, password authentication) -----------------------------
PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/lib/postgresql/16/bin")


@dataclass
class Cluster:
    """A throwaway PostgreSQL server that demands TLS on TCP (self-signed certificate)."""

    root: Path
    port: int
    bin_dir: Path
    run_as: list[str]
    secret_role: str = "rh_secret"
    secret_password: str = ""

    @property
    def cert(self) -> Path:
        return self.root / "server.crt"

    def url(self, user: str = "postgres", db: str = "postgres", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}" + (f"?{query}" if query else "")

    def pg_ctl(self, *args: str) -> None:
        import subprocess

        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )


def find_pg_bin() -> Path | None:
    for d in PG_BIN_DIRS:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_tls_cluster(bin_dir: Path) -> Cluster:
    """initdb + self-signed certificate + ``ssl=on`` + hostssl-only pg_hba, then start.

    ``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system
    user (or ``nobody``) in a world-traversable temporary directory.
    """
    import pwd
    import shutil
    import subprocess
    import tempfile

    run_as: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if owner is None or shutil.which("setpriv") is None:
            raise RuntimeError("running as root without a 'postgres'/'nobody' user or setpriv")
        run_as = [
            "setpriv",
            f"--reuid={owner.pw_uid}",
            f"--regid={owner.pw_gid}",
            "--clear-groups",
        ]
    root = Path(tempfile.mkdtemp(prefix="rh-tls-"))
    root.chmod(0o755)
    port = free_port()
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(root / "server.key"),
            "-out",
            str(root / "server.crt"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (root / "server.key").chmod(0o600)
    if owner is not None:
        for p in (root, root / "server.key", root / "server.crt"):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=root,
    )
    data = root / "data"
    secret_password = "Tls-" + secrets.token_urlsafe(18)
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
            f"ssl = on\nssl_cert_file = '{root / 'server.crt'}'\n"
            f"ssl_key_file = '{root / 'server.key'}'\nfsync = off\nshared_buffers = 32MB\n"
            "max_connections = 30\n"
        )
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostssl all rh_secret 127.0.0.1/32 scram-sha-256\n"
        "hostssl all all 127.0.0.1/32 trust\n"
    )
    cluster = Cluster(root, port, bin_dir, run_as, secret_password=secret_password)
    cluster.pg_ctl("-l", str(root / "server.log"), "-w", "start")
    import psycopg

    with psycopg.connect(
        host=str(root), port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"create role rh_secret login password '{secret_password}'")
        conn.execute("create database rh_secret owner rh_secret")
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    import shutil

    try:
        cluster.pg_ctl("-m", "immediate", "stop")
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)

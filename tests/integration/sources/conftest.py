"""Real services for the sources integration tests: an HTTP API on 127.0.0.1, MariaDB, PostgreSQL.

A database test skips with the reason when its server is down, except under CI=true, where a
missing service is a failure (CI must start what the tests need).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from tests.support import skip_or_fail

PG_URL = os.environ.get("RETAILHUB_TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("RETAILHUB_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def require_service(what: str, url: str) -> None:
    """Skip (locally) or fail (CI=true) when nothing listens at the URL's host:port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 0
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        reason = f"{what} not reachable at {host}:{port} ({exc.strerror or exc})"
    skip_or_fail(reason)


# -- HTTP --------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the server saw it


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class FakeApi:
    """A real HTTP server whose replies come from ``handler(request) -> Reply``."""

    url: str
    handler: Callable[[Request], Reply] = lambda req: Reply(404, {"error": "no handler"})
    requests: list[Request] = field(default_factory=list)
    # Test modules build replies with ``api.Reply(...)`` (no import from conftest needed).
    Reply = Reply


@pytest.fixture
def api() -> Iterator[FakeApi]:
    state = FakeApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            request = Request(
                method=self.command,
                path=parts.path,
                params=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                at=time.monotonic(),
            )
            state.requests.append(request)
            reply = state.handler(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            payload = (
                reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            )
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:  # keep test output clean
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# -- databases --------------------------------------------------------------------------------


@dataclass
class Db:
    """A reachable test database with a fresh, uniquely named table prefix."""

    kind: str  # "mysql" | "postgres"
    url: str
    prefix: str
    execute: Callable[[str], None]


def _mysql_executor(url: str) -> tuple[Callable[[str], None], Callable[[], None]]:
    import pymysql

    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=os.environ.get("MYSQL_PWD", ""),
        database=parts.path.lstrip("/"),
        autocommit=True,
    )

    def run(sql: str) -> None:
        with conn.cursor() as cur:
            cur.execute(sql)

    return run, conn.close


def _pg_executor(url: str) -> tuple[Callable[[str], None], Callable[[], None]]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)

    def run(sql: str) -> None:
        conn.execute(sql)

    return run, conn.close


@pytest.fixture(
    params=[
        pytest.param("mysql", marks=pytest.mark.mysql),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    kind = request.param
    url = MYSQL_URL if kind == "mysql" else PG_URL
    require_service("MariaDB" if kind == "mysql" else "PostgreSQL", url)
    execute, close = (_mysql_executor if kind == "mysql" else _pg_executor)(url)
    prefix = f"rh_src_{uuid.uuid4().hex[:10]}"
    created: list[str] = []

    def tracked(sql: str) -> None:
        if sql.lstrip().upper().startswith("CREATE TABLE"):
            created.append(sql.split()[2])
        execute(sql)

    try:
        yield Db(kind, url, prefix, tracked)
    finally:
        for table in created:
            execute(f"DROP TABLE IF EXISTS {table}")
        close()

"""How retailhub reaches a PostgreSQL warehouse, without ever showing the password.

The warehouse URL (``postgresql://user@host:port/db?sslmode=require&sslrootcert=...``) names
everything but the secret; the password comes from ``RETAILHUB_WAREHOUSE__PASSWORD`` (the
``password`` setting) or ``PGPASSWORD``. One :class:`PgTarget` turns both into the libpq
connection string that psycopg, ADBC and ``pg_dump`` share, so TLS options given once apply to
every connection. Every message that leaves this module goes through :meth:`PgTarget.scrub`.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from retailhub.errors import ConfigError, WarehouseUnavailable

if TYPE_CHECKING:
    import psycopg

    from retailhub.config.settings import WarehouseConfig

MASK = "***"
DEFAULT_PORT = 5432
# libpq options that carry a secret: accepted from the environment only, never from the URL.
SECRET_OPTIONS = frozenset({"password", "sslpassword"})
# libpq options a URL may pass through (TLS above all); anything else is a typo we report.
PASSTHROUGH_OPTIONS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "sslcompression",
        "gssencmode",
        "channel_binding",
        "requiressl",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "krbsrvname",
        "service",
        "passfile",
    }
)


@dataclass(frozen=True)
class PgTarget:
    """One PostgreSQL database to connect to: host, database, user, TLS options, secret."""

    host: str
    port: int
    dbname: str
    user: str
    options: Mapping[str, str] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 10.0

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: WarehouseConfig) -> PgTarget:
        """Build the target of ``cfg.url``; the password from the setting, else PGPASSWORD."""
        secret = cfg.password.get_secret_value() if cfg.password is not None else None
        return cls.from_url(
            cfg.url,
            password=secret or os.environ.get("PGPASSWORD") or None,
            connect_timeout_s=cfg.connect_timeout_s,
        )

    @classmethod
    def from_url(
        cls, url: str, *, password: str | None = None, connect_timeout_s: float = 10.0
    ) -> PgTarget:
        try:
            parts = urlsplit(url)
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ConfigError(
                f"key 'warehouse.url': not a valid PostgreSQL URL ({exc}): expected "
                "postgresql://user@host:5432/database",
                key="warehouse.url",
            ) from None
        if parts.password is not None:
            raise ConfigError(
                "key 'warehouse.url': the URL contains a password; remove it and set "
                "RETAILHUB_WAREHOUSE__PASSWORD (or PGPASSWORD) instead, so it never reaches "
                "a file, a process list or a log",
                key="warehouse.url",
            )
        dbname = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not dbname:
            raise ConfigError(
                f"key 'warehouse.url': '{url}' must name a host and a database: "
                "postgresql://user@host:5432/database",
                key="warehouse.url",
            )
        options: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in SECRET_OPTIONS:
                raise ConfigError(
                    f"key 'warehouse.url': option '{key}' is a secret and may only come from "
                    "the environment (RETAILHUB_WAREHOUSE__PASSWORD / PGPASSWORD / PGSSLPASSWORD)",
                    key="warehouse.url",
                )
            if key not in PASSTHROUGH_OPTIONS:
                raise ConfigError(
                    f"key 'warehouse.url': unknown connection option '{key}'; expected one of "
                    f"{', '.join(sorted(PASSTHROUGH_OPTIONS))}",
                    key="warehouse.url",
                )
            options[key] = value
        return cls(
            host=parts.hostname,
            port=port,
            dbname=dbname,
            user=unquote(parts.username) if parts.username else _default_user(),
            options=options,
            password=password,
            connect_timeout_s=connect_timeout_s,
        )

    def with_database(self, dbname: str) -> PgTarget:
        """The same server and credentials, another database (admin and test helpers)."""
        return PgTarget(
            self.host,
            self.port,
            dbname,
            self.user,
            self.options,
            self.password,
            self.connect_timeout_s,
        )

    def with_user(self, user: str, password: str | None = None) -> PgTarget:
        """The same database as another role (tests connect as loader and analyst)."""
        return PgTarget(
            self.host,
            self.port,
            self.dbname,
            user,
            self.options,
            password,
            self.connect_timeout_s,
        )

    # -- presentation ----------------------------------------------------------------------
    @property
    def display_url(self) -> str:
        """The URL as a person may see it: never a secret (TLS file paths are not secrets)."""
        query = "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}" + (
            f"?{query}" if query else ""
        )

    def scrub(self, text: object) -> str:
        """``text`` with the password (and the TLS key passphrase) replaced by ``***``."""
        out = str(text)
        for secret in (self.password, os.environ.get("PGSSLPASSWORD")):
            if secret and len(secret) >= 3:
                out = out.replace(secret, MASK)
        return out

    # -- connection strings -----------------------------------------------------------------
    def params(self, *, application_name: str | None = None) -> dict[str, str]:
        """libpq keywords for this target, password included (pass to drivers only)."""
        params: dict[str, str] = {
            "host": self.host,
            "port": str(self.port),
            "dbname": self.dbname,
            "user": self.user,
            "connect_timeout": str(max(1, round(self.connect_timeout_s))),
        }
        params.update(self.options)
        if application_name:
            params["application_name"] = application_name[:63]
        if self.password:
            params["password"] = self.password
        return params

    def conninfo(self, *, application_name: str | None = None) -> str:
        """A libpq ``key=value`` string (contains the password: never log it)."""
        return " ".join(
            f"{k}={_quote(v)}" for k, v in self.params(application_name=application_name).items()
        )

    def subprocess_env(self) -> dict[str, str]:
        """Environment for ``pg_dump``/``pg_restore``: the password travels here, not in argv."""
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def subprocess_dsn(self) -> str:
        """``--dbname`` argument for the client tools: everything but the password."""
        params = self.params()
        params.pop("password", None)
        return " ".join(f"{k}={_quote(v)}" for k, v in params.items())

    # -- connecting ---------------------------------------------------------------------------
    def connect(
        self, *, autocommit: bool = True, application_name: str = "retailhub", **kwargs: Any
    ) -> psycopg.Connection[Any]:
        """Open a psycopg connection; failures become WarehouseUnavailable without secrets."""
        import psycopg

        try:
            return psycopg.connect(
                self.conninfo(application_name=application_name), autocommit=autocommit, **kwargs
            )
        except psycopg.Error as exc:
            raise self.connect_error(exc) from None

    def connect_adbc(self, *, application_name: str = "retailhub-loader") -> Any:
        """Open an ADBC connection (bulk COPY from Arrow, Arrow result sets)."""
        import adbc_driver_postgresql.dbapi as pg_dbapi

        try:
            return pg_dbapi.connect(
                self.conninfo(application_name=application_name), autocommit=True
            )
        except Exception as exc:
            raise self.connect_error(exc) from None

    def connect_error(self, exc: BaseException) -> ConfigError | WarehouseUnavailable:
        """A connection option libpq refuses is a configuration error (exit 2) naming the
        key; anything else (no route, refused, authentication) leaves the server unreached."""
        bad = _BAD_OPTION.search(" ".join(self.scrub(exc).split()))
        if bad:
            return ConfigError(
                f"key 'warehouse.url': {bad.group(0)} in {self.display_url}", key="warehouse.url"
            )
        return self.unavailable(exc)

    def unavailable(self, exc: BaseException) -> WarehouseUnavailable:
        detail = " ".join(self.scrub(exc).split())
        return WarehouseUnavailable(
            f"cannot connect to the PostgreSQL warehouse {self.display_url}: {detail}",
            host=self.host,
            port=self.port,
            database=self.dbname,
        )


#: libpq's words for a connection option it cannot use ("invalid sslmode value: ...").
_BAD_OPTION = re.compile(r"(invalid \w+ value|bad value for \w+|invalid integer value)[^;]*")


def _default_user() -> str:
    return os.environ.get("PGUSER") or getpass.getuser()


def _quote(value: str) -> str:
    """Quote a libpq keyword value (spaces, quotes and backslashes are allowed in values)."""
    if value and all(c.isalnum() or c in "._-/:@+," for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"

"""Pick and open the warehouse adapter for a URL.

``duckdb:///relative/file.duckdb`` is relative to the project folder and
``duckdb:////abs/file.duckdb`` is absolute (the SQLAlchemy convention);
``postgresql://user@host:port/db`` selects the PostgreSQL adapter, imported lazily so a
DuckDB-only install never needs its drivers.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from retailhub.config.settings import WarehouseConfig
from retailhub.errors import ConfigError
from retailhub.warehouse.base import Warehouse

DUCKDB_PREFIX = "duckdb:///"


def engine_of(url: str) -> str:
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    if scheme == "duckdb" or (not scheme and url.endswith((".duckdb", ".db"))):
        return "duckdb"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    raise ConfigError(
        f"key 'warehouse.url': unsupported warehouse URL '{redact(url)}': expected "
        "duckdb:///path/file.duckdb or postgresql://user@host:port/db",
        key="warehouse.url",
    )


def duckdb_path(url: str, root: Path) -> Path | None:
    if url.startswith(DUCKDB_PREFIX):
        rest = url[len(DUCKDB_PREFIX) :]
    elif url.startswith("duckdb:"):
        raise ConfigError(
            f"key 'warehouse.url': '{url}' must start with duckdb:/// "
            "(three slashes; four for an absolute path)",
            key="warehouse.url",
        )
    else:
        rest = url
    if rest in ("", ":memory:"):
        return None
    path = Path(rest)
    return path if path.is_absolute() else (root / path).resolve()


def open_warehouse(
    cfg: WarehouseConfig,
    root: Path,
    *,
    work_db: Path | None = None,
    read_only: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
    history_dir: Path | None = None,
) -> Warehouse:
    """Open the adapter for ``cfg.url``; raises WarehouseUnavailable if it cannot be reached."""
    engine = engine_of(cfg.url)
    if engine == "duckdb":
        from retailhub.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(
            duckdb_path(cfg.url, root),
            work_db=work_db,
            read_only=read_only,
            memory_limit=memory_limit,
            threads=threads,
        )
    try:
        from retailhub.warehouse.postgres import PostgresWarehouse
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "the PostgreSQL warehouse needs the 'postgres' extra: "
            f"pip install 'retailhub[postgres]' "
            f"({exc})",
            key="warehouse.url",
        ) from None
    return PostgresWarehouse(
        cfg,
        work_db=work_db,
        read_only=read_only,
        memory_limit=memory_limit,
        threads=threads,
        history_dir=history_dir if cfg.history_cache else None,
    )


def redact(url: str) -> str:
    """Remove a password from a URL so it can be shown."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url

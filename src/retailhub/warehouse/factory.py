"""Pick and open the warehouse adapter for a URL.

``duckdb:///relative/file.duckdb`` is relative to the project folder and
``duckdb:////abs/file.duckdb`` is absolute (the SQLAlchemy convention);
``postgresql://user@host:port/db`` selects the PostgreSQL adapter, imported lazily so a
DuckDB-only install never needs its drivers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from retailhub import os_user
from retailhub.config.settings import WarehouseConfig
from retailhub.errors import ConfigError, WarehouseUnavailable
from retailhub.warehouse.base import Warehouse

DUCKDB_PREFIX = "duckdb:///"


def engine_of(url: str) -> str:
    try:
        scheme = urlsplit(url).scheme.split("+")[0].lower()
    except ValueError as exc:  # e.g. an unclosed '[' of an IPv6 host
        raise ConfigError(
            f"key 'warehouse.url': '{redact(url)}' is not a valid URL ({exc}): expected "
            "duckdb:///path/file.duckdb or postgresql://user@host:port/db",
            key="warehouse.url",
        ) from None
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
    if not rest.strip():
        # an unset variable in the URL ('duckdb:///${WAREHOUSE_FILE}'): running into memory
        # would report success and keep nothing
        raise ConfigError(
            f"key 'warehouse.url': '{url}' names no file: expected duckdb:///path/file.duckdb "
            "(relative to the project folder) or duckdb:////absolute/path/file.duckdb",
            key="warehouse.url",
        )
    if rest == ":memory:":
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
    if not read_only and work_db is not None:
        writable_folder(work_db.parent, "scratch folder", "runner.work_dir")
    if engine == "duckdb":
        from retailhub.warehouse.duckdb import DuckDBWarehouse

        path = duckdb_path(cfg.url, root)
        if not read_only and path is not None:
            # DuckDB writes its journal (<file>.wal) beside the file at every commit
            writable_folder(path.parent, "warehouse folder", "warehouse.url")
            if path.exists() and not os.access(path, os.W_OK):
                raise WarehouseUnavailable(
                    f"cannot write the warehouse file {path}: permission denied for user "
                    f"{os_user.name()}; run as its owner or give this user write access",
                    path=str(path),
                )
        return DuckDBWarehouse(
            path,
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


def writable_folder(folder: Path, what: str, key: str) -> None:
    """Create ``folder`` if needed; fail naming it and its key when this user cannot write it.

    Checked before DuckDB opens anything: DuckDB reports a folder it cannot write only at
    its first commit, as an IO or transaction error about some ``.wal`` or scratch file.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseUnavailable(
            f"cannot create the {what} {folder} (key '{key}'): {exc.strerror or exc}",
            path=str(folder),
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WarehouseUnavailable(
            f"cannot write the {what} {folder} (key '{key}'): permission denied for user "
            f"{os_user.name()}; give this user write access or point '{key}' elsewhere",
            path=str(folder),
        )


def redact(url: str) -> str:
    """Mask a password in a URL (``user:secret@``) or a libpq keyword string (``password=``)
    so the value can be shown; works on text that does not even parse as a URL."""
    masked = _URL_PASSWORD.sub(r"\1***@", url)
    return _KEYWORD_PASSWORD.sub(r"\1***", masked)


# Up to the LAST '@' (a password may contain '@' or '/'): masking too much beats too little.
_URL_PASSWORD = re.compile(r"(//[^/@:\s]*:)\S*@")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)

"""Backup and restore of the warehouse, for both engines, verified by checksums.

A backup is three files: ``FILE`` (PostgreSQL: a ``pg_dump`` custom-format archive of the
retailhub schemas; DuckDB: a tar of ``EXPORT DATABASE`` as Parquet), ``FILE.manifest.json``
(engine, time, row count of every table) and ``FILE.sha256`` (``sha256sum`` format over both,
so ``sha256sum -c FILE.sha256`` works by hand too).

Restore checks the checksums before touching anything, then replaces the warehouse
atomically: PostgreSQL drops and recreates the retailhub schemas in one transaction that also
checks every table's row count against the manifest before it commits; DuckDB imports into a
new file and renames it over the old one. Either way a failed restore leaves the warehouse as
it was. Both hold the writer lock, so no run publishes halfway through.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retailhub.errors import ConfigError, UsageError, WarehouseError
from retailhub.warehouse import audit
from retailhub.warehouse.base import SCHEMAS, Warehouse, is_staging_table
from retailhub.warehouse.factory import duckdb_path, engine_of

if TYPE_CHECKING:
    from retailhub.config.settings import WarehouseConfig
    from retailhub.warehouse.pg_conn import PgTarget

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CHUNK = 1 << 20


@dataclass
class BackupResult:
    path: Path
    checksum_path: Path
    manifest_path: Path
    sha256: str
    bytes: int
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class RestoreResult:
    path: Path
    tables: dict[str, int]
    seconds: float


# -- checksums ----------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def write_checksums(path: Path) -> Path:
    lines = [f"{sha256_file(p)}  {p.name}\n" for p in (path, manifest_path(path))]
    out = checksum_path(path)
    out.write_text("".join(lines))
    return out


def verify_checksums(path: Path) -> None:
    """Raise UsageError unless FILE and its manifest match ``FILE.sha256``."""
    sums = checksum_path(path)
    if not path.is_file():
        what = "is a folder, not a backup file" if path.is_dir() else "does not exist"
        raise UsageError(f"backup file {path} {what}", file=str(path))
    if not sums.is_file():
        raise UsageError(
            f"checksum file {sums} is missing: refusing to restore an unverified backup",
            file=str(sums),
        )
    expected = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            expected[name.strip()] = digest.strip()
    for p in (path, manifest_path(path)):
        want = expected.get(p.name)
        if want is None:
            raise UsageError(f"{sums} has no checksum for {p.name}", file=str(sums))
        if not p.is_file():
            raise UsageError(f"{p} is missing", file=str(p))
        have = sha256_file(p)
        if have != want:
            raise UsageError(
                f"checksum mismatch for {p}: expected {want[:12]}…, found {have[:12]}…; the "
                "backup is damaged or was changed, nothing was restored",
                file=str(p),
            )


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(manifest_path(path).read_text())


# -- row counts -----------------------------------------------------------------------------------
def table_counts(wh: Warehouse, schemas: tuple[str, ...] = SCHEMAS) -> dict[str, int]:
    """Row count of every base table in ``schemas`` (partitions counted through their parent)."""
    if wh.engine == "postgres":
        listing = wh.query(
            "select n.nspname || '.' || c.relname from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind in ('r', 'p') and not c.relispartition and n.nspname = any(?) "
            "order by 1",
            [list(schemas)],
        )
    else:
        names = ", ".join(f"'{s}'" for s in schemas)
        listing = wh.query(
            "select schema_name || '.' || table_name from duckdb_tables() "
            f"where database_name = current_database() and schema_name in ({names}) order by 1"
        )
    counts = {}
    for (table,) in listing.rows:
        if is_staging_table(table):
            continue  # a failed run's unpublished build (kept for --resume), not content
        schema, name = table.split(".", 1)
        res = wh.query(f'select count(*) from "{schema}"."{name}"')
        counts[table] = int(res.rows[0][0])
    return counts


# -- entry points ----------------------------------------------------------------------------------
def backup(cfg: WarehouseConfig, root: Path, out: Path, *, replace: bool = False) -> BackupResult:
    """Write a verified backup of the warehouse configured by ``cfg`` to ``out``.

    An existing ``out`` is an earlier backup: it is replaced only when asked (``replace``),
    never by a mistyped name."""
    out = out.resolve()
    if out.is_dir():
        raise UsageError(
            f"{out} is a folder: name the backup file, e.g. {out / 'warehouse.backup'}"
        )
    if engine_of(cfg.url) == "duckdb":
        live = _duck_path(cfg, root).resolve()
        if out in (live, live.with_name(live.name + ".wal")):
            raise UsageError(
                f"{out} is the warehouse itself: a backup written over it would destroy what it "
                "saves; choose another file",
                file=str(out),
            )
    if out.exists() and not replace:
        raise UsageError(
            f"{out} already exists: choose another file, or pass --force to replace it "
            "(with its manifest and checksum files)",
            file=str(out),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if engine_of(cfg.url) == "postgres":
        tables = _backup_postgres(cfg, out)
    else:
        tables = _backup_duckdb(cfg, root, out)
    manifest = {
        "format": FORMAT_VERSION,
        "engine": engine_of(cfg.url),
        "created_at": datetime.now(UTC).isoformat(),
        "file": out.name,
        "tables": tables,
        # the key the backed-up pseudonyms were made with (its check), for the restore
        "pseudonym_key_check": _key_check(cfg, root),
    }
    manifest_path(out).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    sums = write_checksums(out)
    digest = sums.read_text().split()[0]
    seconds = time.perf_counter() - started
    _audit(
        cfg,
        root,
        "backup",
        str(out),
        sum(tables.values()),
        f"sha256 {digest}; {len(tables)} tables",
    )
    return BackupResult(out, sums, manifest_path(out), digest, out.stat().st_size, tables, seconds)


def restore(cfg: WarehouseConfig, root: Path, path: Path) -> RestoreResult:
    """Verify ``path`` and replace the warehouse with it, atomically."""
    path = path.resolve()
    verify_checksums(path)
    manifest = read_manifest(path)
    engine = engine_of(cfg.url)
    if manifest.get("engine") != engine:
        raise UsageError(
            f"{path} is a {manifest.get('engine')} backup; the configured warehouse is {engine}",
            file=str(path),
        )
    started = time.perf_counter()
    tables = {str(k): int(v) for k, v in manifest.get("tables", {}).items()}
    if engine == "postgres":
        _restore_postgres(cfg, path, tables)
    else:
        try:
            _restore_duckdb(cfg, root, path, tables)
        except (tarfile.TarError, EOFError) as exc:
            # a damaged archive whose checksum file was rewritten to match it
            raise WarehouseError(
                f"backup {path} is unreadable ({exc}): it is damaged or not a retailhub "
                "backup; the warehouse was not changed",
                file=str(path),
            ) from None
    # The audit trail outlives a restore, so the last key check in it may belong to data the
    # restore just replaced: record the restored pseudonyms' own (or that there is none).
    check = manifest.get("pseudonym_key_check")
    if _key_check(cfg, root) != check:
        _audit(
            cfg,
            root,
            "pseudonymise",
            "the restored tables",
            None,
            audit.KEY_CHECK_PREFIX + check if check else "no key check (restored from a backup)",
        )
    _audit(
        cfg,
        root,
        "restore",
        str(path),
        sum(tables.values()),
        f"from backup of {manifest.get('created_at')}; {len(tables)} tables verified",
    )
    return RestoreResult(path, tables, time.perf_counter() - started)


def _key_check(cfg: WarehouseConfig, root: Path) -> str | None:
    from retailhub.warehouse.factory import open_warehouse

    with open_warehouse(cfg, root, read_only=True) as wh:
        return audit.last_key_check(wh)


def _audit(
    cfg: WarehouseConfig, root: Path, op: str, obj: str, rows: int | None, detail: str
) -> None:
    from retailhub.warehouse.factory import open_warehouse

    with open_warehouse(cfg, root) as wh:
        audit.record(wh, [audit.entry(op, obj, rows, detail=detail)])


# -- PostgreSQL -----------------------------------------------------------------------------------
def _pg_tool(name: str) -> str:
    chosen = os.environ.get("RETAILHUB_PG_BIN")
    if chosen:
        # the operator picked these tools (matching the server's version): no silent fallback
        tool = Path(chosen) / name
        if not os.access(tool, os.X_OK):
            raise ConfigError(
                f"RETAILHUB_PG_BIN={chosen} holds no executable {name}: point it at the "
                "folder of the PostgreSQL client tools (e.g. /usr/lib/postgresql/15/bin)",
                key="RETAILHUB_PG_BIN",
            )
        return str(tool)
    for directory in ("/usr/lib/postgresql/15/bin", None):
        if directory is None:
            found = shutil.which(name)
            if found:
                return found
        elif (Path(directory) / name).exists():
            return str(Path(directory) / name)
    raise WarehouseError(
        f"'{name}' was not found: install the PostgreSQL client tools (or set RETAILHUB_PG_BIN)"
    )


def _run(
    cmd: list[str], target: PgTarget, *, stdin: Any = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(
            cmd, env=target.subprocess_env(), stdin=stdin, capture_output=True, check=False
        )
    except OSError as exc:
        raise WarehouseError(f"cannot run {cmd[0]}: {exc}") from None
    if proc.returncode != 0:
        err = _errors_only(target.scrub(proc.stderr.decode(errors="replace")))
        raise WarehouseError(
            f"{Path(cmd[0]).name} failed for {target.display_url} (exit {proc.returncode}): {err}",
            host=target.host,
        )
    return proc


def _errors_only(stderr: str) -> str:
    """The ERROR/FATAL lines (with their DETAIL and HINT) of a client tool's output.

    A failed restore printed dozens of NOTICE lines ("drop cascades to table ...") before its
    one ERROR, reading as if data had been dropped, when the transaction was rolled back.
    """
    kept: list[str] = []
    in_error = False
    for raw in stderr.splitlines():
        line = " ".join(raw.split())
        if line.startswith(("ERROR:", "FATAL:")) or "error:" in line:
            in_error = True
        elif not line.startswith(("DETAIL:", "HINT:", "CONTEXT:")):
            in_error = False  # a NOTICE/WARNING, and the DETAIL lines that follow it
        if in_error and line:
            kept.append(line)
    return " ".join(kept)[-2000:] if kept else " ".join(stderr.split())[-2000:]


def _schemas_present(wh: Warehouse) -> list[str]:
    rows = wh.query("select nspname from pg_namespace where nspname = any(?)", [list(SCHEMAS)])
    return [r[0] for r in rows.rows]


def _backup_postgres(cfg: WarehouseConfig, out: Path) -> dict[str, int]:
    from retailhub.warehouse.postgres import PostgresWarehouse

    # The writer lock keeps runs from publishing while the dump runs, so the counts in the
    # manifest describe exactly what the archive holds.
    wh = PostgresWarehouse(cfg, label="backup")
    try:
        target = wh.target
        schemas = _schemas_present(wh)
        if not schemas:
            raise UsageError(f"warehouse {wh.display_url} has no retailhub schemas to back up")
        tables = table_counts(wh)
        partial = out.with_name(out.name + ".partial")
        cmd = [
            _pg_tool("pg_dump"),
            "--format=custom",
            "--no-password",
            f"--file={partial}",
            f"--dbname={target.subprocess_dsn()}",
            *[f"--schema={s}" for s in schemas],
        ]
        _run(cmd, target)
        os.replace(partial, out)
        return tables
    finally:
        wh.close()


def _restore_postgres(cfg: WarehouseConfig, path: Path, tables: dict[str, int]) -> None:
    from retailhub.warehouse.postgres import PostgresWarehouse

    wh = PostgresWarehouse(cfg, label="restore")
    try:
        _refuse_outside_dependents(wh)
        target = wh.target
        script = _run([_pg_tool("pg_restore"), "--file=-", str(path)], target).stdout
        # The staging schema stays: it holds nothing published, and its grants belong to init.
        drop = ", ".join(f'"{s}"' for s in SCHEMAS)
        checks = "\n".join(
            f"  if (select count(*) from {_qualified(t)}) <> {n} then "
            f"raise exception 'restore check failed: {t} does not have {n} rows'; end if;"
            for t, n in sorted(tables.items())
        )
        audit_table = _qualified(audit.AUDIT_TABLE)
        program = b"".join(
            [
                b"set lock_timeout = '30s';\n",
                # The audit trail outlives a restore: keep the entries written since the backup.
                (
                    f"do $rh$ begin if to_regclass('{audit.AUDIT_TABLE}') is not null then "
                    f"create temp table rh_audit_keep as select * from {audit_table}; "
                    "end if; end $rh$;\n"
                ).encode(),
                f"drop schema if exists {drop} cascade;\n".encode(),
                script,
                (
                    f"\ndo $rh$ begin\n{checks}\nend $rh$;\n"
                    f"do $rh$ begin if to_regclass('pg_temp.rh_audit_keep') is not null "
                    f"and to_regclass('{audit.AUDIT_TABLE}') is not null then "
                    f"insert into {audit_table} select * from rh_audit_keep "
                    f"except select * from {audit_table}; end if; end $rh$;\n"
                ).encode(),
            ]
        )
        with tempfile.TemporaryFile() as fh:
            fh.write(program)
            fh.seek(0)
            _run_restore(
                [
                    _pg_tool("psql"),
                    "--no-psqlrc",
                    "--quiet",
                    "--single-transaction",
                    "--set=ON_ERROR_STOP=1",
                    "--no-password",
                    f"--dbname={target.subprocess_dsn()}",
                ],
                target,
                stdin=fh,
            )
    finally:
        wh.close()


#: Objects outside retailhub's schemas that depend on tables inside them: views and
#: materialised views (through their rewrite rules) and foreign keys.
_OUTSIDE_DEPENDENTS = """
select distinct dn.nspname || '.' || dc.relname, rn.nspname || '.' || rc.relname
from pg_depend d
join pg_rewrite w on d.classid = 'pg_rewrite'::regclass and d.objid = w.oid
join pg_class dc on dc.oid = w.ev_class
join pg_namespace dn on dn.oid = dc.relnamespace
join pg_class rc on d.refclassid = 'pg_class'::regclass and d.refobjid = rc.oid
join pg_namespace rn on rn.oid = rc.relnamespace
where rn.nspname = any(?) and not dn.nspname = any(?) and dc.oid <> rc.oid
union
select distinct cn.nspname || '.' || cc.relname || ' (foreign key ' || c.conname || ')',
       fn.nspname || '.' || fc.relname
from pg_constraint c
join pg_class cc on cc.oid = c.conrelid
join pg_namespace cn on cn.oid = cc.relnamespace
join pg_class fc on fc.oid = c.confrelid
join pg_namespace fn on fn.oid = fc.relnamespace
where c.contype = 'f' and fn.nspname = any(?) and not cn.nspname = any(?)
order by 1
"""


def _refuse_outside_dependents(wh: Warehouse) -> None:
    """Refuse a restore that would silently drop the site's own objects.

    The restore replaces retailhub's schemas with ``drop schema ... cascade``: a view or a
    foreign key someone built on ``core.fct_sales`` in another schema would vanish with
    them, where a publish refuses to drop it.
    """
    ours = list(SCHEMAS)
    rows = wh.query(_OUTSIDE_DEPENDENTS, [ours, ours, ours, ours]).rows
    if rows:
        shown = "; ".join(f"{dependent} depends on {table}" for dependent, table in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        raise UsageError(
            f"restore would drop objects outside retailhub's schemas that depend on its "
            f"tables: {shown}{more}. Drop them first (and re-create them after the restore); "
            "the warehouse was not changed"
        )


#: (text in the server's error, what to do) for the ways a restore is commonly refused.
_RESTORE_HINTS = (
    (
        "lock timeout",
        "a session holds a lock on a retailhub table (see pg_stat_activity): "
        "end it, or retry when readers are done",
    ),
    (
        'role "',
        "the backup grants to roles this server lacks: run 'retailhub warehouse init' "
        "with the --loader-role/--analyst-role names of the backed-up warehouse first",
    ),
    (
        "must be owner",
        "restore as the owner of the retailhub schemas or a superuser (the "
        "loader role may back up, not restore)",
    ),
    ("restore check failed", "the archive does not hold what its manifest says"),
)


def _run_restore(cmd: list[str], target: PgTarget, *, stdin: Any) -> None:
    """psql of the restore script: a failure says it was rolled back, why, and what to do."""
    try:
        _run(cmd, target, stdin=stdin)
    except WarehouseError as exc:
        hint = next((h for needle, h in _RESTORE_HINTS if needle in exc.message), None)
        raise WarehouseError(
            f"restore rolled back, the warehouse was not changed: {exc.message}"
            + (f"; {hint}" if hint else ""),
            host=target.host,
        ) from None


def _qualified(table: str) -> str:
    return ".".join(f'"{p}"' for p in table.split(".", 1))


# -- DuckDB ----------------------------------------------------------------------------------------
def _duck_path(cfg: WarehouseConfig, root: Path) -> Path:
    path = duckdb_path(cfg.url, root)
    if path is None:
        raise UsageError("an in-memory DuckDB warehouse cannot be backed up or restored")
    return path


def _backup_duckdb(cfg: WarehouseConfig, root: Path, out: Path) -> dict[str, int]:
    import duckdb

    from retailhub.warehouse.duckdb import DuckDBWarehouse

    path = _duck_path(cfg, root)
    wh = DuckDBWarehouse(path, read_only=True)
    try:
        tables = table_counts(wh)
        with tempfile.TemporaryDirectory(prefix="rh-backup-", dir=out.parent) as tmp:
            export = Path(tmp) / "export"
            escaped = str(export).replace("'", "''")
            try:
                wh.connection.execute(f"export database '{escaped}' (format parquet)")
            except duckdb.Error as exc:
                raise WarehouseError(f"export of {path} failed: {exc}") from None
            _drop_staging_tables(export)
            partial = out.with_name(out.name + ".partial")
            with tarfile.open(partial, "w") as tar:
                for f in sorted(export.iterdir()):
                    tar.add(f, arcname=f"export/{f.name}")
            os.replace(partial, out)
        return tables
    finally:
        wh.close()


_EXPORTED_TABLE = re.compile(r"(?:CREATE TABLE|COPY)\s+([^\s(]+)", re.IGNORECASE)
_EXPORTED_FILE = re.compile(r"FROM '([^']+)'", re.IGNORECASE)


def _drop_staging_tables(export: Path) -> None:
    """Take a failed run's staging tables out of an ``EXPORT DATABASE`` folder.

    They stay in the warehouse file, unpublished, for ``--resume`` (and the next publish
    removes them); a backup is of the published state only. EXPORT DATABASE has no table
    filter, so their statements and Parquet files are removed from its output.
    """
    for script in ("schema.sql", "load.sql"):
        path = export / script
        kept = []
        for statement in path.read_text(encoding="utf-8").split(";\n"):
            table = _EXPORTED_TABLE.match(statement.strip())
            if table and is_staging_table(table.group(1)):
                data = _EXPORTED_FILE.search(statement)
                if data:
                    (export / Path(data.group(1)).name).unlink(missing_ok=True)
                continue
            kept.append(statement)
        path.write_text(";\n".join(kept), encoding="utf-8")


def _restore_duckdb(cfg: WarehouseConfig, root: Path, path: Path, tables: dict[str, int]) -> None:
    """Import the backup into a new file and rename it over the warehouse, holding the lock.

    The old file stays open (DuckDB's lock on it) from before the import until after the
    rename, and the new file is open (locked) from its creation until after the rename too:
    a run starting at any point meanwhile finds the file in use and stops with that message,
    instead of publishing into the old file just before the rename discards it.
    """
    import duckdb

    from retailhub.warehouse.duckdb import DuckDBWarehouse

    target = _duck_path(cfg, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Fails with a clear message if a run or reader has the warehouse open.
    old = DuckDBWarehouse(target, read_only=False) if target.exists() else None
    try:
        with tempfile.TemporaryDirectory(prefix="rh-restore-", dir=target.parent) as tmp:
            with tarfile.open(path, "r") as tar:
                tar.extractall(tmp, filter="data")
            fresh = Path(tmp) / "restored.duckdb"
            con = duckdb.connect(str(fresh))
            try:
                _import_duckdb(con, Path(tmp) / "export", path, tables, old)
                # Nothing of either file may be left in a journal named after the target:
                # the old one is checkpointed, the new one was checkpointed by the import.
                if old is not None:
                    old.execute("checkpoint")
                target.with_name(target.name + ".wal").unlink(missing_ok=True)
                os.replace(fresh, target)
            finally:
                if old is not None:
                    old.close()  # the old file first: the new one stays locked until the end
                    old = None
                con.close()
    finally:
        if old is not None:
            old.close()


def _import_duckdb(
    con: Any, export: Path, path: Path, tables: dict[str, int], old: Any | None
) -> None:
    """IMPORT DATABASE into ``con``, check the row counts, keep the old file's audit trail."""
    import duckdb

    try:
        escaped = str(export).replace("'", "''")
        # The archive's schema.sql and load.sql are SQL that IMPORT runs: confined to the
        # extracted folder, an edited backup cannot read or write any other file
        # (a checksum proves the archive intact, not who made it).
        con.execute(f"set allowed_directories = ['{escaped}/']")
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
        con.execute(f"import database '{escaped}'")
        for table, expected in tables.items():
            schema, name = table.split(".", 1)
            have = con.execute(f'select count(*) from "{schema}"."{name}"').fetchall()[0][0]
            if have != expected:
                raise WarehouseError(
                    f"restore check failed: {table} has {have} rows, the backup says "
                    f"{expected}; the warehouse was not changed"
                )
        # The audit trail outlives the restore: what the old file recorded since the backup
        # is kept (read now, while no run can add to it).
        if old is not None and old.table_exists(audit.AUDIT_TABLE):
            kept = old.read_arrow(f"select * from {audit.AUDIT_TABLE}")
            if kept.num_rows:
                con.register("rh_audit_keep", kept)
                con.execute(
                    f"create schema if not exists meta; {audit.create_statement()}; "
                    f"insert into {audit.AUDIT_TABLE} by name (select * from rh_audit_keep "
                    f"except select * from {audit.AUDIT_TABLE})"
                )
        con.execute("checkpoint")
    except duckdb.Error as exc:
        raise WarehouseError(
            f"import of {path} failed: {exc}; the warehouse was not changed"
        ) from None

"""Backup → damage → restore gives back identical tables, on both warehouses.

Identical means: the same tables, the same row counts and the same content fingerprint per
table. Restore verifies the checksum file first and is atomic; the audit trail survives it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase, open_duckdb, open_postgres

from retailhub.config.settings import WarehouseConfig
from retailhub.errors import UsageError, WarehouseError
from retailhub.warehouse import audit
from retailhub.warehouse.backup import backup, restore, table_counts
from retailhub.warehouse.base import PublishBatch, Warehouse, is_staging_table

pytestmark = [pytest.mark.integration]


@pytest.fixture
def setup(request: pytest.FixtureRequest, warehouse_engine: str, tmp_path: Path) -> dict[str, Any]:
    if warehouse_engine == "postgres":
        db: PgDatabase = request.getfixturevalue("pg_db")
        cfg = WarehouseConfig(url=db.url)

        def opener(**kw: Any) -> Warehouse:
            return open_postgres(db, tmp_path, **kw)

    else:
        path = tmp_path / "wh" / "warehouse.duckdb"
        cfg = WarehouseConfig(url=f"duckdb:///{path}")

        def opener(**kw: Any) -> Warehouse:
            return open_duckdb(path, tmp_path, **kw)

    return {"cfg": cfg, "open": opener, "root": tmp_path}


def fingerprints(wh: Warehouse) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content digest of every published table."""
    out = {}
    for table, count in table_counts(wh, ("raw", "core", "quarantine", "meta")).items():
        if table == audit.AUDIT_TABLE:
            continue
        schema, name = table.split(".")
        rel = f'"{schema}"."{name}"'
        if wh.engine == "postgres":
            sql = (
                "select coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') "
                f"from {rel} t"
            )
        else:
            sql = (
                f"select coalesce(md5(string_agg(md5(cast(t as varchar)), '' "
                f"order by md5(cast(t as varchar)))), '') from {rel} t"
            )
        out[table] = (count, str(wh.query(sql).rows[0][0]))
    return out


def populate(wh: Warehouse, run: str, rows: int) -> None:
    wh.init_schema()
    con = wh.compute
    for schema in ("core", "acc"):
        con.execute(f"create schema if not exists work.{schema}")
    con.execute(
        f"create or replace table work.core.fct as select range as id, "
        f"cast(range / 7 as decimal(18,4)) as amount, 'r' || range as label from range({rows})"
    )
    con.execute(
        f"create or replace table work.acc.raw as select range as id, '{run}' as _run_id "
        f"from range({rows})"
    )
    wh.publish(
        PublishBatch(
            replace={"core.fct": "work.core.fct"},
            append={"raw.items": "work.acc.raw"},
            rows={"meta.lineage": [{"run_id": run, "source_table": "a", "target_table": "b"}]},
        )
    )


def test_an_existing_backup_is_replaced_only_when_asked(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    cfg, opener, root = setup["cfg"], setup["open"], setup["root"]
    wh = opener(label="populate")
    populate(wh, "run-1", 100)
    wh.close()
    out = tmp_path / "wh.backup"
    first = backup(cfg, root, out)
    with pytest.raises(UsageError, match=r"already exists.*--force"):
        backup(cfg, root, out)
    assert out.read_bytes() and first.checksum_path.read_text().split()[0] == first.sha256
    wh = opener(label="more")
    populate(wh, "run-2", 50)
    wh.close()
    again = backup(cfg, root, out, replace=True)
    assert again.tables["raw.items"] == 150 and again.sha256 != first.sha256


def test_backup_drop_restore_round_trip(setup: dict[str, Any], tmp_path: Path) -> None:
    cfg, opener, root = setup["cfg"], setup["open"], setup["root"]
    wh = opener(label="populate")
    populate(wh, "run-1", 1000)
    populate(wh, "run-2", 500)
    before = fingerprints(wh)
    wh.close()
    assert before["raw.items"][0] == 1500

    out = tmp_path / "backups" / "wh.backup"
    result = backup(cfg, root, out)
    assert out.is_file() and result.checksum_path.is_file() and result.manifest_path.is_file()
    assert result.tables["core.fct"] == 500
    if shutil.which("sha256sum"):
        subprocess.run(
            ["sha256sum", "-c", result.checksum_path.name],
            cwd=out.parent,
            check=True,
            capture_output=True,
        )

    # Damage the warehouse: new rows, a new table, a dropped table.
    wh = opener(label="damage")
    populate(wh, "run-3", 10)
    wh.compute.execute("create table work.core.extra as select 1 as x")
    wh.publish(PublishBatch(replace={"core.extra": "work.core.extra"}))
    wh.execute("drop table meta.lineage")
    audit.record(wh, [audit.entry("delete", "meta.lineage", detail="test damage")])
    wh.close()

    restored = restore(cfg, root, out)
    assert restored.tables == result.tables
    wh = opener(label="check", read_only=True)
    try:
        assert fingerprints(wh) == before
        assert not wh.table_exists("core.extra")
        ops = [
            r[0] for r in wh.query("select operation from meta.audit_log order by logged_at").rows
        ]
        # Entries written after the backup (the damage, the restore) are kept.
        assert "backup" in ops and "delete" in ops and ops[-1] == "restore"
    finally:
        wh.close()


def test_restore_refuses_a_damaged_backup(setup: dict[str, Any], tmp_path: Path) -> None:
    cfg, opener, root = setup["cfg"], setup["open"], setup["root"]
    wh = opener(label="populate")
    populate(wh, "run-1", 100)
    wh.close()
    out = tmp_path / "wh.backup"
    backup(cfg, root, out)
    wh = opener(label="change")
    populate(wh, "run-2", 7)
    after = fingerprints(wh)
    wh.close()

    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="checksum mismatch"):
        restore(cfg, root, out)
    out.with_name(out.name + ".sha256").unlink()
    with pytest.raises(UsageError, match="checksum file"):
        restore(cfg, root, out)
    wh = opener(label="check", read_only=True)
    try:
        assert fingerprints(wh) == after
    finally:
        wh.close()


def test_duckdb_backup_leaves_out_a_failed_runs_staging_tables(tmp_path: Path) -> None:
    """A failed run's unpublished build stays in the DuckDB file for --resume; a backup is of
    the published state only, and restoring it brings back no staging table."""
    path = tmp_path / "wh" / "warehouse.duckdb"
    cfg = WarehouseConfig(url=f"duckdb:///{path}")
    wh = open_duckdb(path, tmp_path, label="populate")
    populate(wh, "run-1", 300)
    staged = wh.staging_table("core.fct", "run-failed")
    assert staged is not None and is_staging_table(staged)
    wh.execute(f"create table {staged} as select range as id from range(50)")
    published = fingerprints(wh)
    wh.close()

    out = tmp_path / "wh.backup"
    result = backup(cfg, tmp_path, out)
    assert not [t for t in result.tables if is_staging_table(t)]
    assert result.tables["core.fct"] == 300
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert not [n for n in names if "stage" in n], names
    assert any(n.endswith(".parquet") and "fct" in n for n in names), names

    restore(cfg, tmp_path, out)
    wh = open_duckdb(path, tmp_path, read_only=True)
    try:
        assert fingerprints(wh) == published
        assert not wh.table_exists(staged)
    finally:
        wh.close()


def test_a_duckdb_restore_runs_the_archives_sql_confined_to_its_folder(tmp_path: Path) -> None:
    """IMPORT DATABASE runs the archive's schema.sql: an edited backup (checksums recomputed:
    they prove integrity, not origin) wrote a file of its choosing during a restore."""
    from retailhub.warehouse.backup import write_checksums

    path = tmp_path / "wh" / "warehouse.duckdb"
    cfg = WarehouseConfig(url=f"duckdb:///{path}")
    wh = open_duckdb(path, tmp_path, label="populate")
    populate(wh, "run-1", 10)
    published = fingerprints(wh)
    wh.close()
    out = tmp_path / "wh.backup"
    backup(cfg, tmp_path, out)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(out) as tar:
        tar.extractall(unpacked, filter="data")
    (schema_sql,) = unpacked.rglob("schema.sql")
    planted = tmp_path / "planted.csv"
    with schema_sql.open("a", encoding="utf-8") as f:
        f.write(f"\nCOPY (SELECT 42) TO '{planted}';\n")
    with tarfile.open(out, "w") as tar:
        for item in sorted(unpacked.iterdir()):
            tar.add(item, arcname=item.name)
    write_checksums(out)
    with pytest.raises(WarehouseError, match="file system operations are disabled"):
        restore(cfg, tmp_path, out)
    assert not planted.exists()
    wh = open_duckdb(path, tmp_path, read_only=True)
    try:
        assert fingerprints(wh) == published
    finally:
        wh.close()


def _open_from_another_process(path: Path) -> str:
    """What a run starting now meets: another process opening the file for writing."""
    probe = (
        "import sys, duckdb\n"
        "try:\n"
        "    duckdb.connect(sys.argv[1]).execute('create table meta.intruder as select 1')\n"
        "except duckdb.Error as exc:\n"
        "    print('refused:', exc)\n"
        "else:\n"
        "    print('opened')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def test_duckdb_restore_keeps_runs_out_until_the_new_file_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore used to check the lock only at its start: a run started while it imported
    published into the old file, which the rename then discarded, run and all."""
    path = tmp_path / "wh" / "warehouse.duckdb"
    cfg = WarehouseConfig(url=f"duckdb:///{path}")
    wh = open_duckdb(path, tmp_path, label="populate")
    populate(wh, "run-1", 200)
    wh.close()
    out = tmp_path / "wh.backup"
    backup(cfg, tmp_path, out)

    seen: dict[str, str] = {}
    extract, replace = tarfile.TarFile.extractall, os.replace

    def extract_then_try(self: tarfile.TarFile, *args: Any, **kwargs: Any) -> None:
        seen["while importing"] = _open_from_another_process(path)
        extract(self, *args, **kwargs)

    def replace_then_try(src: Any, dst: Any) -> None:
        replace(src, dst)
        if Path(dst) == path:
            seen["right after the rename"] = _open_from_another_process(path)

    monkeypatch.setattr(tarfile.TarFile, "extractall", extract_then_try)
    monkeypatch.setattr(os, "replace", replace_then_try)
    restore(cfg, tmp_path, out)
    monkeypatch.undo()

    assert seen["while importing"].startswith("refused:"), seen
    assert "lock" in seen["while importing"].lower(), seen
    assert seen["right after the rename"].startswith("refused:"), seen
    assert _open_from_another_process(path) == "opened"  # the restore let go at its end


def test_duckdb_backup_and_restore_refuse_operator_slips(tmp_path: Path) -> None:
    """Each of these once destroyed the warehouse or ended in an unexpected exception."""
    path = tmp_path / "wh" / "warehouse.duckdb"
    cfg = WarehouseConfig(url=f"duckdb:///{path}")
    wh = open_duckdb(path, tmp_path, label="populate")
    populate(wh, "run-1", 100)
    before = fingerprints(wh)
    wh.close()
    # --force over the warehouse file itself wrote a tar archive in its place
    with pytest.raises(UsageError, match="is the warehouse itself"):
        backup(cfg, tmp_path, path, replace=True)
    with pytest.raises(UsageError, match="is a folder"):
        backup(cfg, tmp_path, tmp_path, replace=True)
    # a truncated archive whose checksum file was recomputed to match it
    out = tmp_path / "wh.backup"
    backup(cfg, tmp_path, out)
    with tarfile.open(out) as tar:  # cut inside the largest member's data
        big = max(tar.getmembers(), key=lambda m: m.size)
    out.write_bytes(out.read_bytes()[: big.offset_data + big.size // 2])
    from retailhub.warehouse.backup import write_checksums

    write_checksums(out)
    with pytest.raises(WarehouseError, match=r"wh\.backup is unreadable .*not changed"):
        restore(cfg, tmp_path, out)
    wh = open_duckdb(path, tmp_path, read_only=True)
    try:
        assert fingerprints(wh) == before
    finally:
        wh.close()


def test_a_postgres_restore_refuses_to_drop_the_sites_own_objects(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    """The restore drops retailhub's schemas with CASCADE: a view or foreign key built on
    its tables in another schema vanished without a word."""
    cfg = WarehouseConfig(url=pg_db.url)
    wh = open_postgres(pg_db, tmp_path, label="populate")
    populate(wh, "run-1", 50)
    wh.close()
    out = tmp_path / "wh.backup"
    backup(cfg, tmp_path, out)
    pg_db.sql("create view public.v_items as select * from raw.items")
    with pytest.raises(UsageError, match=r"public\.v_items depends on raw\.items.*not changed"):
        restore(cfg, tmp_path, out)
    assert pg_db.sql("select count(*) from public.v_items") == [(50,)]
    pg_db.sql("drop view public.v_items")
    assert restore(cfg, tmp_path, out).tables["raw.items"] == 50


def test_a_refused_restore_says_it_was_rolled_back_and_why(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    """A manifest that promises other row counts (with matching checksums): PostgreSQL's
    psql printed dozens of 'drop cascades to ...' notices before the error."""
    import json

    from retailhub.warehouse.backup import manifest_path, write_checksums

    cfg, opener, root = setup["cfg"], setup["open"], setup["root"]
    wh = opener(label="populate")
    populate(wh, "run-1", 100)
    before = fingerprints(wh)
    wh.close()
    out = tmp_path / "wh.backup"
    backup(cfg, root, out)
    manifest = json.loads(manifest_path(out).read_text())
    manifest["tables"]["raw.items"] = 99
    manifest_path(out).write_text(json.dumps(manifest))
    write_checksums(out)
    with pytest.raises(WarehouseError) as refused:
        restore(cfg, root, out)
    message = refused.value.message
    assert "raw.items" in message and "99" in message and "not changed" in message
    assert "drop cascades" not in message and "NOTICE" not in message
    wh = opener(label="check", read_only=True)
    try:
        assert fingerprints(wh) == before
    finally:
        wh.close()


def test_a_wrong_pg_bin_folder_is_named_not_ignored(
    pg_db: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RETAILHUB_PG_BIN picks client tools matching the server; a wrong folder fell back to
    whatever pg_dump was on PATH, silently."""
    from retailhub.errors import ConfigError

    wh = open_postgres(pg_db, tmp_path, label="populate")
    populate(wh, "run-1", 10)
    wh.close()
    monkeypatch.setenv("RETAILHUB_PG_BIN", str(tmp_path / "no-such-bin"))
    out = tmp_path / "wh.backup"
    with pytest.raises(ConfigError, match=r"RETAILHUB_PG_BIN=.*no-such-bin holds no executable"):
        backup(WarehouseConfig(url=pg_db.url), tmp_path, out)
    assert not out.exists()

"""DDL of the run ledger (schema ``meta``), written once in SQL both engines accept."""

from __future__ import annotations

LEDGER_TABLES: dict[str, str] = {
    "meta.pipeline_runs": """
        run_id varchar primary key,
        project varchar,
        profile varchar,
        command varchar,
        status varchar not null,
        started_at timestamp not null,
        finished_at timestamp,
        seconds double precision,
        warehouse_url varchar,
        config_hash varchar,
        plan_json varchar,
        resumed_from varchar,
        rows_in bigint,
        rows_accepted bigint,
        rows_quarantined bigint,
        quality_score double precision,
        error varchar
    """,
    "meta.task_runs": """
        run_id varchar not null,
        task varchar not null,
        status varchar not null,
        attempt integer not null,
        started_at timestamp not null,
        finished_at timestamp,
        seconds double precision,
        rows_in bigint,
        rows_out bigint,
        error varchar,
        output_json varchar
    """,
    "meta.quality_results": """
        run_id varchar not null,
        dataset varchar not null,
        rule varchar not null,
        kind varchar,
        column_name varchar,
        severity varchar,
        action varchar,
        metric double precision,
        threshold double precision,
        passed boolean,
        failing_rows bigint,
        rows_checked bigint,
        sample varchar,
        message varchar,
        checked_at timestamp
    """,
    "meta.dataset_accounting": """
        run_id varchar not null,
        dataset varchar not null,
        input_rows bigint not null,
        accepted_rows bigint not null,
        quarantined_rows bigint not null,
        quality_score double precision,
        recorded_at timestamp
    """,
    "meta.ingested_files": """
        run_id varchar not null,
        source varchar not null,
        dataset varchar not null,
        unit_id varchar not null,
        uri varchar not null,
        checksum varchar,
        bytes bigint,
        rows bigint,
        modified_at timestamp,
        arrived_at timestamp,
        watermark varchar
    """,
    # per run and source with a watermark: the lowest watermark its window covers and the
    # fingerprints (MD5 hex, space separated, one per row) of the rows in it, which the next
    # extraction reads again and drops (see retailhub.sources.watermark)
    "meta.watermark_windows": """
        run_id varchar not null,
        source varchar not null,
        watermark varchar not null,
        window_from varchar,
        rows bigint not null,
        row_hashes varchar not null
    """,
    "meta.lineage": """
        run_id varchar not null,
        source_table varchar not null,
        target_table varchar not null,
        rows bigint,
        recorded_at timestamp
    """,
}


def create_statements(prefix: str = "") -> list[str]:
    """``create table if not exists`` for every ledger table, qualified with ``prefix``."""
    return [
        f"create table if not exists {prefix}{name} ({cols.strip()})"
        for name, cols in LEDGER_TABLES.items()
    ]


#: Indexes for the ledger's lookups, by index name (created in schema ``meta``): a run's tasks,
#: results and lineage by run id (``retailhub runs show``), a source's files by uri (every
#: ingest asks which files it has seen), the audit log by time. PostgreSQL only: the tables
#: grow by a few rows per run, and DuckDB scans them faster than it maintains an index.
LEDGER_INDEXES: dict[str, tuple[str, str]] = {
    "task_runs_run_id_idx": ("meta.task_runs", "run_id"),
    "quality_results_run_id_idx": ("meta.quality_results", "run_id"),
    "dataset_accounting_run_id_idx": ("meta.dataset_accounting", "run_id"),
    "ingested_files_run_id_idx": ("meta.ingested_files", "run_id"),
    "ingested_files_uri_idx": ("meta.ingested_files", "source, uri"),
    "lineage_run_id_idx": ("meta.lineage", "run_id"),
    "audit_log_logged_at_idx": ("meta.audit_log", "logged_at"),
}


def index_statements(names: list[str] | None = None) -> list[str]:
    """``create index if not exists`` for the named ledger indexes (default: all of them)."""
    return [
        f"create index if not exists {name} on {LEDGER_INDEXES[name][0]} "
        f"({LEDGER_INDEXES[name][1]})"
        for name in (names if names is not None else list(LEDGER_INDEXES))
    ]

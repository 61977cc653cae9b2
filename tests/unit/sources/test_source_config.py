"""Config models of the ``sources:`` section: defaults, discriminated union, rejected secrets."""

from __future__ import annotations

import pytest

from retailhub.config.sources import (
    CsvSourceConfig,
    DatabaseSourceConfig,
    HttpSourceConfig,
    JsonSourceConfig,
    parse_source_config,
)
from retailhub.errors import ConfigError


def test_csv_defaults_and_dataset_defaults_to_layout() -> None:
    cfg = parse_source_config("retail", {"type": "csv", "layout": "online_retail", "path": "a.csv"})
    assert isinstance(cfg, CsvSourceConfig)
    assert cfg.name == "retail"
    assert cfg.dataset == "online_retail"
    assert (cfg.encoding, cfg.delimiter, cfg.quote, cfg.header) == ("utf-8", ",", '"', True)
    assert cfg.null_values == [""]
    assert cfg.enabled is True


def test_pass_through_source_feeds_its_own_name() -> None:
    cfg = parse_source_config("misc", {"type": "parquet", "layout": "none", "path": "x/*.parquet"})
    assert cfg.dataset is None
    assert cfg.target_dataset == "misc"
    with pytest.raises(ConfigError, match="'Misc-Files' is not a table name"):
        parse_source_config("Misc-Files", {"type": "parquet", "layout": "none", "path": "x"})
    named = {"type": "parquet", "layout": "none", "path": "x", "dataset": "misc"}
    assert parse_source_config("Misc-Files", named).target_dataset == "misc"


def test_unknown_key_fails_naming_the_key_and_file() -> None:
    with pytest.raises(ConfigError) as err:
        parse_source_config(
            "retail",
            {"type": "csv", "layout": "online_retail", "path": "a.csv", "delimter": ";"},
            file="project.yml",
        )
    assert "sources.retail.delimter" in str(err.value)
    assert "project.yml" in str(err.value)
    assert err.value.context["key"] == "sources.retail.delimter"


def test_unknown_type_fails() -> None:
    with pytest.raises(ConfigError, match=r"sources\.x"):
        parse_source_config("x", {"type": "excel", "layout": "none", "path": "a.xlsx"})


def test_unknown_encoding_fails() -> None:
    with pytest.raises(ConfigError, match="unknown encoding 'utf-9'"):
        parse_source_config(
            "x", {"type": "csv", "layout": "none", "path": "a", "encoding": "utf-9"}
        )


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "cp1252", "windows-1252", "latin-1", "utf-16"]
)
def test_common_encodings_accepted(encoding: str) -> None:
    cfg = parse_source_config(
        "x", {"type": "csv", "layout": "none", "path": "a", "encoding": encoding}
    )
    assert cfg.encoding == encoding


def test_json_format_guessed_from_extension() -> None:
    nd = parse_source_config("x", {"type": "json", "layout": "none", "path": "d/*.jsonl"})
    doc = parse_source_config("x", {"type": "json", "layout": "none", "path": "d/a.json"})
    forced = parse_source_config(
        "x", {"type": "json", "layout": "none", "path": "d/a.txt", "format": "ndjson"}
    )
    assert isinstance(nd, JsonSourceConfig)
    assert nd.resolved_format == "ndjson"
    assert doc.resolved_format == "json"  # type: ignore[union-attr]
    assert forced.resolved_format == "ndjson"  # type: ignore[union-attr]


def test_http_rejects_authorization_header_in_config() -> None:
    with pytest.raises(ConfigError, match="token_env") as err:
        parse_source_config(
            "api",
            {
                "type": "http",
                "layout": "none",
                "url": "https://api.example/v1/orders",
                "headers": {"Authorization": "Bearer s3cr3t-token"},
            },
        )
    assert "s3cr3t-token" not in str(err.value)


def test_http_cursor_paging_needs_cursor_path() -> None:
    with pytest.raises(ConfigError, match="cursor_path"):
        parse_source_config(
            "api",
            {"type": "http", "layout": "none", "url": "http://h/x", "paging": {"type": "cursor"}},
        )


def test_http_defaults() -> None:
    cfg = parse_source_config("api", {"type": "http", "layout": "none", "url": "http://h/x"})
    assert isinstance(cfg, HttpSourceConfig)
    assert (cfg.method, cfg.timeout_s, cfg.max_retries, cfg.backoff_s) == ("GET", 30.0, 5, 0.5)
    assert cfg.paging.type == "none"


def test_database_password_in_url_rejected_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="password_env") as err:
        parse_source_config(
            "erp",
            {
                "type": "database",
                "layout": "none",
                "url": "postgresql://app:hunter2secret@db:5432/erp",
                "table": "orders",
            },
        )
    assert "hunter2secret" not in str(err.value)
    assert "hunter2secret" not in repr(err.value.context)


def test_database_needs_exactly_one_of_table_or_query() -> None:
    base = {"type": "database", "layout": "none", "url": "mysql://root@127.0.0.1:3306/test"}
    with pytest.raises(ConfigError, match="exactly one"):
        parse_source_config("erp", base)
    with pytest.raises(ConfigError, match="exactly one"):
        parse_source_config("erp", {**base, "table": "t", "query": "select 1"})
    cfg = parse_source_config("erp", {**base, "query": "select 1"})
    assert isinstance(cfg, DatabaseSourceConfig)
    assert cfg.dialect == "mysql"
    assert cfg.batch_size == 50_000


def test_database_dialect_from_scheme() -> None:
    cfg = parse_source_config(
        "erp",
        {"type": "database", "layout": "none", "url": "postgresql://root@h/db", "table": "t"},
    )
    assert cfg.dialect == "postgresql"  # type: ignore[union-attr]

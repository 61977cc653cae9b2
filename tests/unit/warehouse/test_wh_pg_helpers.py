"""Pure helpers of the PostgreSQL warehouse: URL parsing, placeholders, types, keys."""

from __future__ import annotations

import pytest

from retailhub.errors import ConfigError
from retailhub.warehouse.keys import ForeignKey, Index, keys_from_spec
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.pg_types import duck_type_of, load_columns, pg_type_of
from retailhub.warehouse.postgres import qmark_to_pyformat


def test_url_options_pass_through_and_display_hides_the_secret() -> None:
    t = PgTarget.from_url(
        "postgresql://loader@db.example:6543/wh?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        password="S3cret-value",
    )
    assert (t.host, t.port, t.dbname, t.user) == ("db.example", 6543, "wh", "loader")
    params = t.params()
    assert params["sslmode"] == "verify-full" and params["sslrootcert"] == "/etc/ca.pem"
    assert params["password"] == "S3cret-value"
    assert "S3cret" not in t.display_url and "S3cret" not in repr(t)
    assert "S3cret" not in t.subprocess_dsn()
    assert t.subprocess_env()["PGPASSWORD"] == "S3cret-value"
    assert t.scrub("failed for S3cret-value") == "failed for ***"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw-in-url@h/db", "contains a password"),
        ("postgresql://u@h/db?password=x", "secret"),
        ("postgresql://u@h/db?sslmod=require", "unknown connection option 'sslmod'"),
        ("postgresql://u@h/", "must name a host and a database"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        PgTarget.from_url(url)
    assert "pw-in-url" not in str(info.value)


def test_qmark_placeholders_outside_literals_only() -> None:
    sql = "select '?', \"a?b\", x from t where a = ? and b like '50%' -- why?\nand c = ?"
    assert qmark_to_pyformat(sql) == (
        "select '?', \"a?b\", x from t where a = %s and b like '50%%' -- why?\nand c = %s"
    )
    assert qmark_to_pyformat("select 'it''s ?', ?") == "select 'it''s ?', %s"


@pytest.mark.parametrize(
    ("duck", "pg"),
    [
        ("BIGINT", "bigint"),
        ("DECIMAL(18,4)", "numeric(18,4)"),
        ("VARCHAR", "text"),
        ("VARCHAR[]", "text[]"),
        ("TINYINT", "smallint"),
        ("UBIGINT", "numeric(20,0)"),
        ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
        ("STRUCT(a INTEGER)", "json"),
        ("INTEGER[][]", "json"),
    ],
)
def test_type_mapping(duck: str, pg: str) -> None:
    assert pg_type_of(duck) == pg


@pytest.mark.parametrize(
    ("pg", "duck"),
    [
        ("numeric(18,4)", "DECIMAL(18,4)"),
        ("text[]", "VARCHAR[]"),
        ("character varying(20)", "VARCHAR"),
        ("timestamp without time zone", "TIMESTAMP"),
        ("timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
        ("double precision", "DOUBLE"),
    ],
)
def test_reverse_type_mapping(pg: str, duck: str) -> None:
    assert duck_type_of(pg) == duck


def test_load_expressions_cast_what_copy_cannot_take() -> None:
    cols = load_columns([("a", "TINYINT"), ("b", "BIGINT"), ("c", "STRUCT(x INTEGER)")])
    assert cols[0].load_expr == 'CAST("a" AS SMALLINT) AS "a"'
    assert cols[1].load_expr == '"b"'
    assert cols[2].load_expr.startswith('CAST(to_json("c") AS VARCHAR)')


def test_keys_from_a_model_sidecar() -> None:
    spec = {
        "columns": [
            {"name": "sales_key", "tests": ["not_null", "unique"]},
            {"name": "order_id", "tests": ["not_null"]},
            {
                "name": "customer_key",
                "tests": [
                    "not_null",
                    {"relationships": {"to": "dim_customer", "field": "customer_key"}},
                ],
            },
            {
                "name": "date_key",
                "tests": [{"relationships": {"to": "dim_date", "field": "date_key"}}],
            },
        ]
    }
    keys = keys_from_spec("fct_sales", spec)
    assert keys.primary_key == ("sales_key",)
    assert keys.is_fact and not keys.is_dimension
    assert (
        ForeignKey(("customer_key",), "core.dim_customer", ("customer_key",)) in keys.foreign_keys
    )
    assert Index(("date_key",)) in keys.indexes
    assert (
        keys_from_spec("dim_x", {"columns": [{"name": "id", "tests": ["unique"]}]}).primary_key
        == ()
    )


def test_loads_stream_with_a_small_duckdb_budget_and_restore_the_configured_one() -> None:
    import duckdb

    from retailhub.warehouse.pg_load import STREAMING_MEMORY, size_bytes, streaming_memory

    def limit(con: duckdb.DuckDBPyConnection) -> int | None:
        value = con.sql("select value from duckdb_settings() where name = 'memory_limit'")
        return size_bytes(value.fetchall()[0][0])

    streaming = size_bytes(STREAMING_MEMORY)
    assert streaming is not None
    con = duckdb.connect(":memory:", config={"memory_limit": "2GB"})
    configured = limit(con)
    with streaming_memory(con, "2GB"):
        assert abs((limit(con) or 0) - streaming) < 2**20  # shown rounded to 0.1 MiB
    assert limit(con) == configured
    small = duckdb.connect(":memory:", config={"memory_limit": "256MB"})
    before = limit(small)
    with streaming_memory(small, "256MB"):
        assert limit(small) == before  # already lower: left alone
    default = duckdb.connect(":memory:")
    usual = limit(default)
    with streaming_memory(default, None):
        assert abs((limit(default) or 0) - streaming) < 2**20
    assert limit(default) == usual
    assert size_bytes("1.25GB") == 1_250_000_000 and size_bytes("488.2 MiB") == 511_914_803
    assert size_bytes("lots") is None


@pytest.mark.parametrize(
    ("shown", "masked"),
    [
        ("postgresql://u:TopSecret1@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgresql://u:TopSecret1@[::1/db", "postgresql://u:***@[::1/db"),  # does not parse
        ("postgresql://bob:p@ss/w0rd@db/x", "postgresql://bob:***@db/x"),  # '@' and '/' in it
        ("host=127.0.0.1 dbname=x password=TopSecret1", "host=127.0.0.1 dbname=x password=***"),
        ("host=h password = 'Top Secret1' port=5", "host=h password = *** port=5"),
        ("postgresql://u@db:5432/x", "postgresql://u@db:5432/x"),
    ],
)
def test_a_password_is_masked_in_any_echoed_url(shown: str, masked: str) -> None:
    """A libpq keyword string was echoed whole in 'unsupported warehouse URL ...'."""
    from retailhub.warehouse.factory import redact

    assert redact(shown) == masked


def test_a_url_that_does_not_parse_is_a_config_error() -> None:
    """It was 'unexpected ValueError: Invalid IPv6 URL', exit 3."""
    from retailhub.warehouse.factory import engine_of

    with pytest.raises(ConfigError, match=r"key 'warehouse.url': .*\[::1/db' is not a valid URL"):
        engine_of("postgresql://u:TopSecret1@[::1/db")
    with pytest.raises(ConfigError) as refused:
        engine_of("host=127.0.0.1 dbname=x password=TopSecret1")
    assert "TopSecret1" not in str(refused.value)


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("sslmode=bogus", 'invalid sslmode value: "bogus"'),
        ("connect_timeout=abc", "connect_timeout"),
    ],
)
def test_a_connection_option_libpq_refuses_is_a_config_error(option: str, said: str) -> None:
    """libpq refuses these before any network traffic; they read as an unreachable server."""
    target = PgTarget.from_url(f"postgresql://u@127.0.0.1:9/db?{option}")
    with pytest.raises(ConfigError, match=f"key 'warehouse.url': .*{said}"):
        target.connect()


@pytest.mark.parametrize("url", ["duckdb:///", "duckdb:///  "])
def test_a_duckdb_url_without_a_file_is_a_config_error(url: str, tmp_path) -> None:
    """'duckdb:///${UNSET}' ran the whole pipeline into memory, said success and kept nothing."""
    from retailhub.warehouse.factory import duckdb_path

    with pytest.raises(ConfigError, match=r"key 'warehouse.url': 'duckdb:///\s*' names no file"):
        duckdb_path(url, tmp_path)
    assert duckdb_path("duckdb:///:memory:", tmp_path) is None
    assert duckdb_path("duckdb:///w/x.duckdb", tmp_path) == tmp_path / "w" / "x.duckdb"


@pytest.mark.parametrize("read_only", [True, False])
def test_a_file_that_is_not_a_duckdb_database_is_refused(tmp_path, read_only: bool) -> None:
    """DuckDB 2.0 opened a .json file as an in-memory database ('cannot launch in-memory
    database in read-only mode', or worse, a writable one that keeps nothing)."""
    from retailhub.errors import WarehouseError
    from retailhub.warehouse.duckdb import DuckDBWarehouse

    other = tmp_path / "notes.json"
    other.write_text('{"a": 1}')
    with pytest.raises(WarehouseError, match=r"notes\.json is not a DuckDB database"):
        DuckDBWarehouse(other, read_only=read_only)
    assert other.read_text() == '{"a": 1}'

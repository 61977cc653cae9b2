"""The project file loader: every mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from retailhub.config.loader import load_project
from retailhub.config.scaffold import scaffold, template_text
from retailhub.errors import ConfigError

MINIMAL = """
project: t
sources:
  sales:
    type: csv
    path: data/*.csv
    layout: online_retail
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "retailhub.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_minimal_project_loads_with_seed_defaults(tmp_path: Path) -> None:
    loaded = load_project(write(tmp_path, MINIMAL))
    s = loaded.settings
    assert s.warehouse.url == "duckdb:///warehouse/retailhub.duckdb"
    assert s.sources["sales"].name == "sales"
    d = s.quality.defaults
    assert (d.completeness, d.uniqueness, d.validity, d.freshness_hours) == (0.95, 0.99, 0.90, 24)
    assert loaded.profile == "dev"


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "runner:\n  retrys: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    msg = str(exc.value)
    assert "retailhub.yaml" in msg
    assert "runner.retrys" in msg
    assert "unknown key" in msg
    assert exc.value.exit_code == 2


def test_unknown_key_inside_a_source_names_the_source(tmp_path: Path) -> None:
    write(
        tmp_path,
        MINIMAL.replace("layout: online_retail", "layout: online_retail\n    encodng: cp1252"),
    )
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "sources.sales" in str(exc.value)
    assert "encodng" in str(exc.value)


def test_a_pass_through_source_needs_a_name_that_can_name_its_tables(tmp_path: Path) -> None:
    """It feeds the dataset of its own name; ERP-Orders failed later, inside DuckDB."""
    write(
        tmp_path,
        "project: t\nsources:\n  ERP-Orders:\n    type: csv\n    path: a.csv\n    layout: none\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert exc.value.exit_code == 2 and exc.value.context["key"] == "sources.ERP-Orders"
    assert "'ERP-Orders' is not a table name" in str(exc.value)
    write(
        tmp_path,
        "project: t\nsources:\n  ERP-Orders:\n    type: csv\n    path: a.csv\n"
        "    layout: none\n    dataset: erp_orders\n",
    )
    assert load_project(tmp_path).settings.sources["ERP-Orders"].target_dataset == "erp_orders"


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "runner:\n  retries: many\n")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "runner.retries" in str(exc.value)
    assert "integer" in str(exc.value)
    assert "'many'" in str(exc.value)


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    write(tmp_path, "project: t\nsources: [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "line" in str(exc.value)
    assert "invalid YAML" in str(exc.value)


def test_missing_project_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path / "nowhere")
    assert "retailhub init" in str(exc.value)


def test_env_expansion_with_default_and_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = MINIMAL.replace("data/*.csv", "${SALES_DIR:-data}/*.csv")
    write(tmp_path, text)
    monkeypatch.delenv("SALES_DIR", raising=False)
    assert load_project(tmp_path).settings.sources["sales"].path == "data/*.csv"
    monkeypatch.setenv("SALES_DIR", "/srv/in")
    assert load_project(tmp_path).settings.sources["sales"].path == "/srv/in/*.csv"


def test_env_var_without_default_must_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    write(tmp_path, MINIMAL.replace("data/*.csv", "${NOPE_NOT_SET}/*.csv"))
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "NOPE_NOT_SET" in str(exc.value)
    assert "sources.sales.path" in str(exc.value)
    assert "variable NOPE_NOT_SET is not set" in str(exc.value)
    monkeypatch.setenv("NOPE_NOT_SET", "")  # set, but to nothing: said as it is
    with pytest.raises(ConfigError, match="variable NOPE_NOT_SET is empty"):
        load_project(tmp_path)


def test_commands_reading_only_the_warehouse_need_no_source_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDERS_DB", raising=False)
    monkeypatch.delenv("NOPE_STAGING_DIR", raising=False)
    write(
        tmp_path,
        MINIMAL
        + "  orders:\n    type: database\n    url: ${ORDERS_DB}\n    table: orders\n"
        + "    layout: online_retail\n    dataset: orders\n"
        + "profiles:\n  prod:\n    sources:\n      orders: {batch_size: 10}\n"
        + "      sales: {path: /prod/*.csv}\n"
        + "  staging:\n    sources:\n      sales: {path: '${NOPE_STAGING_DIR}/*.csv'}\n",
    )
    with pytest.raises(ConfigError, match="ORDERS_DB"):
        load_project(tmp_path)  # a run needs it: named as before
    for profile in ("dev", "prod"):
        loaded = load_project(tmp_path, profile=profile, sources_optional=True)
        assert set(loaded.settings.sources) == {"sales"}  # the unresolvable one is left out
    # staging's unset variable leaves out staging's part only, not prod's.
    prod = load_project(tmp_path, profile="prod", sources_optional=True)
    assert prod.settings.sources["sales"].path == "/prod/*.csv"
    monkeypatch.setenv("ORDERS_DB", "postgresql://db.example:5432/shop")
    loaded = load_project(tmp_path, profile="prod", sources_optional=True)
    assert loaded.settings.sources["orders"].batch_size == 10


def test_retailhub_env_overrides_nested_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, MINIMAL)
    monkeypatch.setenv("RETAILHUB_WAREHOUSE__URL", "duckdb:///elsewhere.duckdb")
    monkeypatch.setenv("RETAILHUB_RUNNER__RETRIES", "7")
    s = load_project(tmp_path).settings
    assert s.warehouse.url == "duckdb:///elsewhere.duckdb"
    assert s.runner.retries == 7


def test_command_line_value_beats_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--warehouse names the warehouse a command uses even with RETAILHUB_WAREHOUSE__URL
    exported for the shell (it lost to the variable once, so a command read another one)."""
    write(tmp_path, MINIMAL)
    monkeypatch.setenv("RETAILHUB_WAREHOUSE__URL", "duckdb:///from-env.duckdb")
    monkeypatch.setenv("RETAILHUB_WAREHOUSE__PASSWORD", "from-env-secret")
    monkeypatch.setenv("RETAILHUB_RUNNER__RETRIES", "7")
    s = load_project(tmp_path, overrides={"warehouse": {"url": "duckdb:///flag.duckdb"}}).settings
    assert s.warehouse.url == "duckdb:///flag.duckdb"
    # the rest of the environment still applies, the secret included
    assert s.warehouse.password is not None
    assert s.warehouse.password.get_secret_value() == "from-env-secret"
    assert s.runner.retries == 7


def test_command_line_value_of_a_wrong_type_names_the_key(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path, overrides={"warehouse": {"connect_timeout_s": "soon"}})
    assert "warehouse.connect_timeout_s" in str(exc.value)


def test_password_comes_only_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, MINIMAL + "warehouse:\n  url: duckdb:///w.duckdb\n  password: hunter2\n")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "RETAILHUB_WAREHOUSE__PASSWORD" in str(exc.value)
    assert "hunter2" not in str(exc.value)
    write(tmp_path, MINIMAL)
    monkeypatch.setenv("RETAILHUB_WAREHOUSE__PASSWORD", "s3cret")
    s = load_project(tmp_path).settings
    assert s.warehouse.password is not None
    assert s.warehouse.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_profile_overrides_any_key(tmp_path: Path) -> None:
    text = MINIMAL + "profiles:\n  prod:\n    warehouse: {url: 'duckdb:///prod.duckdb'}\n"
    write(tmp_path, text)
    assert load_project(tmp_path, profile="dev").settings.warehouse.url.endswith("retailhub.duckdb")
    assert load_project(tmp_path, profile="prod").settings.warehouse.url == "duckdb:///prod.duckdb"
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path, profile="qa")
    assert "qa" in str(exc.value)


def test_scaffolded_template_is_valid_and_matches_the_demo_example(tmp_path: Path) -> None:
    scaffold(tmp_path / "shop")
    loaded = load_project(tmp_path / "shop")
    assert loaded.settings.project == "shop"  # runs are recorded with the folder's name
    assert set(loaded.settings.sources) == {
        "online_retail",
        "superstore",
        "product_catalog",
        "customer_behaviour",
    }
    for folder in ("data", "warehouse", "models"):
        assert (tmp_path / "shop" / folder).is_dir()
    demo = Path(__file__).resolve().parents[3] / "examples" / "demo" / "retailhub.yaml"
    assert demo.read_text(encoding="utf-8") == template_text()


def test_dataset_must_be_a_table_name(tmp_path: Path) -> None:
    """A dataset names warehouse tables: a name SQL cannot take fails at load, not mid-run."""
    write(tmp_path, MINIMAL + "    dataset: web-sales\n")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    msg = str(exc.value)
    assert "sources.sales.dataset" in msg and "web-sales" in msg and "table name" in msg
    assert exc.value.exit_code == 2
    write(tmp_path, MINIMAL + "    dataset: web_sales_2\n")
    assert load_project(tmp_path).settings.sources["sales"].dataset == "web_sales_2"


def test_a_typo_in_a_profile_not_selected_fails_now(tmp_path: Path) -> None:
    """prod's typo must not wait for the first production run to surface."""
    write(tmp_path, MINIMAL + "profiles:\n  prod:\n    runner:\n      retires: 5\n")
    for profile in ("dev", "prod"):
        with pytest.raises(ConfigError) as exc:
            load_project(tmp_path, profile=profile)
        assert "'profiles.prod.runner.retires'" in str(exc.value), profile


def test_another_profiles_variables_need_not_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production does not have STAGING_WH: a prod or dev run must not ask for it."""
    monkeypatch.delenv("STAGING_WH", raising=False)
    write(
        tmp_path,
        MINIMAL + "profiles:\n  staging:\n    warehouse: {url: '${STAGING_WH}'}\n"
        "    runner: {retries: 7}\n",
    )
    assert load_project(tmp_path, profile="prod").settings.runner.retries != 7
    with pytest.raises(ConfigError, match="STAGING_WH"):
        load_project(tmp_path, profile="staging")
    # The other profile's keys are still checked where their values resolve.
    write(tmp_path, MINIMAL + "profiles:\n  staging:\n    runner: {retrys: 7}\n")
    with pytest.raises(ConfigError, match=r"profiles\.staging"):
        load_project(tmp_path, profile="prod")


def test_an_environment_value_is_named_by_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, MINIMAL)
    monkeypatch.setenv("RETAILHUB_RUNNER__RETRIES", "abc")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "environment variable RETAILHUB_RUNNER__RETRIES" in str(exc.value)


def test_a_section_variable_without_a_key_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RETAILHUB_WAREHOUSE (for RETAILHUB_WAREHOUSE__URL) used to escape as an unexpected
    pydantic-settings error, exit 3."""
    write(tmp_path, MINIMAL)
    monkeypatch.setenv("RETAILHUB_WAREHOUSE", "postgresql://x@h/db")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    message = str(exc.value)
    assert "RETAILHUB_WAREHOUSE does not hold a valid value" in message
    assert "RETAILHUB_WAREHOUSE__URL" in message


def test_a_variable_for_no_top_level_key_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, MINIMAL)
    monkeypatch.setenv("RETAILHUB_RUNNR__RETRIES", "1")
    monkeypatch.setenv("RETAILHUB_DATASETS_DIR", "/somewhere")  # not a setting: left alone
    with caplog.at_level("WARNING", logger="retailhub.config.loader"):
        load_project(tmp_path)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "RETAILHUB_RUNNR__RETRIES sets nothing" in warned[0]


@pytest.mark.parametrize("value", ["lots", "1.2.3GB", "GB"])
def test_memory_limit_must_be_a_size(tmp_path: Path, value: str) -> None:
    write(tmp_path, MINIMAL + f"runner:\n  memory_limit: '{value}'\n")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "runner.memory_limit" in str(exc.value) and "1.25GB" in str(exc.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("150%", "at most 100%"),
        ("0%", "above 0%"),
        ("0GB", "too small"),
        ("10MB", "too small"),
        ("100000000", "such as 1.25GB"),  # DuckDB wants a unit
    ],
)
def test_memory_limit_must_be_a_workable_size(tmp_path: Path, value: str, problem: str) -> None:
    """DuckDB refused these only when the warehouse opened: exit 3, 'cannot open warehouse'."""
    write(tmp_path, MINIMAL + f"runner:\n  memory_limit: '{value}'\n")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "runner.memory_limit" in str(exc.value) and problem in str(exc.value)


@pytest.mark.parametrize("value", ["80%", "1.25GB", "512MiB", "64mb", "2 GiB"])
def test_memory_limit_accepts_duckdb_sizes(tmp_path: Path, value: str) -> None:
    write(tmp_path, MINIMAL + f"runner:\n  memory_limit: '{value}'\n")
    assert load_project(tmp_path).settings.runner.memory_limit == value


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a second 'sales:' block replaced the first,
    and the run read only the files of the second (exit 0)."""
    text = (
        MINIMAL + "  sales:\n    type: csv\n    path: data/2024-*.csv\n    layout: online_retail\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_project(write(tmp_path, text))
    assert "line 8, column 3" in str(exc.value)
    assert "duplicate key 'sales' (first given on line 4)" in str(exc.value)
    with pytest.raises(ConfigError, match="duplicate key 'retries'"):
        load_project(write(tmp_path, MINIMAL + "runner:\n  retries: 1\n  retries: 7\n"))
    with pytest.raises(ConfigError, match="duplicate key 'retries'"):  # on one line too
        load_project(write(tmp_path, MINIMAL + "runner: {retries: 1, retries: 7}\n"))


def test_yaml_merge_keys_may_repeat_what_they_override(tmp_path: Path) -> None:
    text = MINIMAL + (
        "runner: &base {retries: 1, backoff_s: 2.0}\n"
        "profiles:\n  prod:\n    runner:\n      <<: *base\n      retries: 5\n"
    )
    loaded = load_project(write(tmp_path, text), profile="prod")
    assert (loaded.settings.runner.retries, loaded.settings.runner.backoff_s) == (5, 2.0)
    # an anchored mapping that itself merges and overrides, merged again elsewhere
    nested = MINIMAL + (
        "runner: &base\n  <<: {retries: 1}\n  retries: 2\n"
        "profiles:\n  prod:\n    runner:\n      <<: *base\n"
    )
    assert load_project(write(tmp_path, nested)).settings.runner.retries == 2


def test_an_override_of_a_key_the_file_lacks_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read as validator messages that named no variable."""
    write(tmp_path, MINIMAL)
    monkeypatch.setenv("RETAILHUB_SOURCES__SALSE__PATH", "/x/*.csv")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert (
        "key 'sources.salse' (from environment variable RETAILHUB_SOURCES__SALSE__PATH; "
        "retailhub.yaml declares no such key: is the name misspelt?)"
    ) in str(exc.value)
    monkeypatch.delenv("RETAILHUB_SOURCES__SALSE__PATH")
    monkeypatch.setenv("RETAILHUB_QUALITY__DEFAULTS__COMPLETENESS", "95")
    with pytest.raises(ConfigError) as exc:
        load_project(tmp_path)
    assert "RETAILHUB_QUALITY__DEFAULTS__COMPLETENESS sets a value in it" in str(exc.value)


@pytest.mark.parametrize(
    ("how", "origin"),
    [
        ("file", "key 'warehouse.url' in {path}"),
        ("profile", "key 'profiles.prod.warehouse.url' in {path}"),
        ("env", "key 'warehouse.url' (from environment variable RETAILHUB_WAREHOUSE__URL)"),
        ("flag", "key 'warehouse.url' (from the command line)"),
    ],
)
def test_a_rejected_warehouse_url_is_named_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, origin: str
) -> None:
    """The adapter rejects the URL after loading (a password in it): the message must say
    which of the four places to fix, not only the key."""
    from retailhub.pipeline.project import Project

    bad = "postgresql://u:Pw-In-Url@127.0.0.1:5432/db"
    text = MINIMAL
    if how == "file":
        text += f"warehouse:\n  url: {bad}\n"
    if how == "profile":
        text += f"profiles:\n  prod:\n    warehouse:\n      url: {bad}\n"
    if how == "env":
        monkeypatch.setenv("RETAILHUB_WAREHOUSE__URL", bad)
    project = Project.load(
        write(tmp_path, text),
        profile="prod" if how == "profile" else None,
        warehouse_url=bad if how == "flag" else None,
        reads_sources=False,
    )
    with pytest.raises(ConfigError) as exc:
        project.open_warehouse(read_only=True)
    message = str(exc.value)
    assert message.startswith(origin.format(path=tmp_path / "retailhub.yaml") + ":"), message
    assert "the URL contains a password" in message
    assert "Pw-In-Url" not in message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sources: 5", "key 'sources': Input should be a valid dictionary"),
        ("sources: true", "key 'sources': Input should be a valid dictionary"),
        ("profiles: 5", "key 'profiles' must be a mapping"),
        ("profiles: [a]", "key 'profiles' must be a mapping"),
        (
            "profiles:\n  prod:\n    warehouse:\n      password: x",
            "key 'profiles.prod.warehouse.password' is a secret",
        ),
    ],
)
def test_sections_of_the_wrong_shape_name_their_key(tmp_path: Path, body: str, message) -> None:
    """They were 'unexpected TypeError/AttributeError' (exit 3), or named a profile's secret
    as if it were the top-level key."""
    write(tmp_path, f"project: t\n{body}\n")
    with pytest.raises(ConfigError, match=message):
        load_project(tmp_path, sources_optional=True)
    with pytest.raises(ConfigError, match=message):
        load_project(tmp_path)

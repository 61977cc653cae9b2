"""The models' shortcuts give what the obvious formulation gives (see models_oracles).

Run on the known-answer rows and on a synthetic input dense in the cases the shortcuts must
get right: invoices scattered over files, customers and countries; repeated file lines; NULL,
aliased and repeated places; behaviour rows tied on everything that ranks them.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pytest
from models_fixtures import load_known_sources
from models_oracles import ORACLES
from models_synthetic import load_synthetic_sources

from retailhub.models import BuiltModel, build_models, load_models, test_models

INPUTS: dict[str, Callable[[duckdb.DuckDBPyConnection], dict[str, str]]] = {
    "known": load_known_sources,
    "synthetic": load_synthetic_sources,
}


@pytest.fixture(scope="module", params=sorted(INPUTS))
def star(request) -> tuple[duckdb.DuckDBPyConnection, list[BuiltModel]]:
    con = duckdb.connect()
    built = build_models(con, load_models(), INPUTS[request.param](con))
    yield con, built
    con.close()


@pytest.mark.parametrize("oracle", ORACLES, ids=lambda f: f.__name__)
def test_models_agree_with_the_reference_formulation(star, oracle):
    con, built = star
    assert oracle(con, built) == 0


def test_synthetic_input_passes_the_column_tests(star):
    con, built = star
    assert test_models(con, built) == []


def test_synthetic_input_has_the_cases_the_shortcuts_must_handle():
    """Guard the generator: the cases above must actually occur in its rows."""
    con = duckdb.connect()
    sources = load_synthetic_sources(con)
    built = {b.name: b.relation for b in build_models(con, load_models(), sources)}
    lines = built["stg_online_retail"]
    checks = {
        "invoice over two files": f"select count(*) from (select order_id from {lines} "
        "group by order_id having count(distinct _source_file) > 1)",
        "invoice over two minutes": f"select count(*) from (select order_id from {lines} "
        "group by order_id having count(distinct invoice_at) > 1)",
        "customer with two countries": f"select count(*) from (select customer_nk from {lines} "
        "where customer_nk is not null group by customer_nk "
        "having count(distinct country_raw) > 1)",
        "repeated file line": f"select count(*) from (select _source_file, _line from {lines} "
        "group by all having count(*) > 1)",
        "line without a country": f"select count(*) from {lines} where country_raw is null",
        "superstore place without ZIP": f"select count(*) from {built['stg_superstore']} "
        "where postal_code is null",
        "duplicate suspect": f"select count(*) from {built['stg_superstore']} "
        "where is_duplicate_suspect",
    }
    for case, sql in checks.items():
        assert con.sql(sql).fetchall()[0][0] > 0, case

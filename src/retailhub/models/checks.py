"""Run the sidecars' column tests (unique, not_null, relationships) against built tables.

All tests of one model are compiled into a single ``union all`` query that returns one failing
row count per test, so a model costs one scan-heavy query however many tests it declares.
Samples of offending values are fetched only for tests that failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from retailhub.errors import ModelError
from retailhub.models.runner import BuiltModel
from retailhub.models.sidecar import column_tests

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class ColumnTestFailure:
    """One failed column test: which model, column and test, how many rows, and a sample."""

    model: str
    relation: str
    column: str
    test: str
    failing_rows: int
    sample: tuple[object, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.relation}.{self.column}: {self.test} failed for {self.failing_rows} rows"
        if self.detail:
            text += f" ({self.detail})"
        if self.sample:
            text += f", e.g. {list(self.sample)}"
        return text


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _failing_rows_sql(relation: str, column: str, test: str, parent: str | None, field: str) -> str:
    """SQL selecting the offending values of one test (one row per offending row)."""
    col = _quote(column)
    if test == "not_null":
        return f"select {col} as v from {relation} where {col} is null"
    if test == "unique":
        return (
            f"select t.{col} as v from {relation} t join (select {col} from {relation} "
            f"where {col} is not null group by {col} having count(*) > 1) d on t.{col} = d.{col}"
        )
    return (
        f"select c.{col} as v from {relation} c where c.{col} is not null and not exists "
        f"(select 1 from {parent} p where p.{_quote(field)} = c.{col})"
    )


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {row[0] for row in con.sql(f"describe {relation}").fetchall()}


def test_models(
    con: duckdb.DuckDBPyConnection, built: Iterable[BuiltModel]
) -> list[ColumnTestFailure]:
    """Run every column test of every built model; return the failures (empty list = all pass)."""
    built = list(built)
    relations = {b.name: b.relation for b in built}
    failures: list[ColumnTestFailure] = []
    for model in built:
        tests = column_tests(model.spec)
        if not tests:
            continue
        present = _columns(con, model.relation)
        branches: list[str] = []
        queries: list[tuple[str, str, str]] = []
        for column, test, target in tests:
            if column not in present:
                failures.append(
                    ColumnTestFailure(
                        model.name, model.relation, column, test, 0, (), "no such column"
                    )
                )
                continue
            parent, field = None, ""
            if target is not None:
                parent, field = relations.get(target["to"]), target["field"]
                if parent is None:
                    failures.append(
                        ColumnTestFailure(
                            model.name,
                            model.relation,
                            column,
                            test,
                            0,
                            (),
                            f"relationship target '{target['to']}' was not built",
                        )
                    )
                    continue
            sql = _failing_rows_sql(model.relation, column, test, parent, field)
            branches.append(f"select {len(queries)} as i, count(*) as n from ({sql}) f")
            queries.append((column, test, sql))
        if not branches:
            continue
        try:
            counts = dict(con.sql("\nunion all\n".join(branches)).fetchall())
            for index, (column, test, sql) in enumerate(queries):
                if counts.get(index, 0):
                    sample = con.sql(f"select distinct v from ({sql}) s limit {SAMPLE_SIZE}")
                    failures.append(
                        ColumnTestFailure(
                            model.name,
                            model.relation,
                            column,
                            test,
                            int(counts[index]),
                            tuple(r[0] for r in sample.fetchall()),
                        )
                    )
        except duckdb.Error as exc:
            raise ModelError(
                f"column tests of model '{model.name}' ({model.relation}) failed to run: {exc}",
                model=model.name,
                table=model.relation,
            ) from exc
    return failures


# Not a pytest test, although the name starts with "test_".
test_models.__test__ = False  # type: ignore[attr-defined]

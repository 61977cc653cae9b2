"""The CLI's last line of defence: every failure is one readable line and a documented code."""

from __future__ import annotations

import psycopg
import pytest
import typer

from retailhub.cli.main import handle_errors
from retailhub.errors import EXIT_RUNTIME


def test_a_statement_the_server_cancelled_is_a_runtime_failure_said_plainly(capsys) -> None:
    """A statement_timeout in the URL's options surfaced as 'unexpected QueryCanceled'."""

    @handle_errors
    def command() -> None:
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout\n")

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == EXIT_RUNTIME
    said = capsys.readouterr().err
    assert "the PostgreSQL warehouse stopped the command: canceling statement" in said
    assert "unexpected" not in said


def test_a_postgres_error_of_our_own_sql_stays_unexpected(capsys) -> None:
    """Only what the server stops (SQLSTATE class 57, lock_not_available) reads as stopped by
    the warehouse; a bug of retailhub's SQL keeps 'unexpected' and the -vv hint."""

    @handle_errors
    def command() -> None:
        raise psycopg.errors.UndefinedColumn('column "nope" does not exist')

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == EXIT_RUNTIME
    said = capsys.readouterr().err
    assert "unexpected UndefinedColumn" in said and "-vv" in said

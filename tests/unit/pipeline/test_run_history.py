"""The run history shows a killed run as interrupted without changing the rows' shape."""

from __future__ import annotations

from retailhub.pipeline.project import _show_dead_runs


class _NoWriter:
    """A warehouse nobody writes: every 'running' run of its ledger is dead."""

    def active_writer(self) -> None:
        return None


def test_a_killed_run_in_the_history_keeps_every_row_the_same_columns() -> None:
    """The history's rows have no error column; adding one to the killed run's row only made
    the table printer (which takes its columns from the first row) fail on the others."""
    rows = [
        {"run_id": "b", "status": "running", "seconds": None},
        {"run_id": "a", "status": "success", "seconds": 3.0},
    ]
    shown = _show_dead_runs(_NoWriter(), rows)  # type: ignore[arg-type]
    assert [r["status"] for r in shown] == ["interrupted", "success"]
    assert {tuple(r) for r in shown} == {("run_id", "status", "seconds")}


def test_one_killed_runs_detail_says_how_to_continue_it() -> None:
    (shown,) = _show_dead_runs(_NoWriter(), [{"run_id": "b", "status": "running", "error": None}])  # type: ignore[arg-type]
    assert shown["status"] == "interrupted"
    assert "retailhub run --resume b" in shown["error"]

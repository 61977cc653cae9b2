"""Which signal stopped a run, for its ledger record and message.

The CLI turns SIGTERM (docker stop, systemd, a scheduler's timeout) into a KeyboardInterrupt,
as Ctrl-C is. When either arrives while DuckDB runs a query, DuckDB reports only "Query
interrupted", so the signal's name is kept here as well.
"""

from __future__ import annotations

import signal

#: The name of the last signal :func:`stop` turned into an interrupt (None: Ctrl-C).
received: str | None = None


def stop(signum: int, _frame: object) -> None:
    """Signal handler: interrupt the run as Ctrl-C would, remembering which signal it was."""
    global received
    received = signal.Signals(signum).name
    raise KeyboardInterrupt(received)


def name(exc: BaseException) -> str:
    """ "SIGTERM" (or another handled signal) or "Ctrl-C", for the interrupt ``exc``."""
    if isinstance(exc, KeyboardInterrupt) and str(exc).startswith("SIG"):
        return str(exc)
    return received or "Ctrl-C"

"""One error hierarchy for the whole platform.

Every error carries the context a person needs to act on it (file, key, source, table, host)
and knows two things the entry points need: the CLI exit code, and whether retrying can help.
The runner retries only ``transient`` errors; the CLI maps ``exit_code`` to the documented
exit-code table (0 ok, 1 quality gate failed, 2 usage/config error, 3 runtime failure).
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_QUALITY_GATE = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C


class RetailhubError(Exception):
    """Root of every error raised on purpose by retailhub."""

    exit_code: int = EXIT_RUNTIME
    transient: bool = False

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        return self.message


class ConfigError(RetailhubError):
    """The project file, a profile or an environment override is wrong (names file and key)."""

    exit_code = EXIT_USAGE


class UsageError(RetailhubError):
    """The command line asked for something impossible (unknown run id, bad option combination)."""

    exit_code = EXIT_USAGE


class SourceError(RetailhubError):
    """A source could not be read: missing file, malformed content, wrong encoding."""

    exit_code = EXIT_RUNTIME


class SourceUnavailable(SourceError):
    """A remote source (HTTP API, database) did not answer; retrying may help."""

    transient = True


class SourceRetriesExhausted(SourceUnavailable):
    """A remote source stayed unavailable through its own retries (``max_retries``): the task
    is not retried on top, which would multiply the attempts and the waiting."""

    transient = False


class QualityGateFailed(RetailhubError):
    """A dataset-level rule of severity ``error`` was breached: nothing was published."""

    exit_code = EXIT_QUALITY_GATE


class AccountingError(RetailhubError):
    """Input rows != accepted + quarantined: a row was lost or invented. Never expected."""

    exit_code = EXIT_RUNTIME


class WarehouseError(RetailhubError):
    """The warehouse refused an operation; the previous published state is intact."""

    exit_code = EXIT_RUNTIME


class WarehouseAccessDenied(WarehouseError):
    """The warehouse role lacks a privilege the command needs (the analyst role asked for the
    ledger, say): the connection's configuration is wrong, so the usage exit code."""

    exit_code = EXIT_USAGE


class WarehouseUnavailable(WarehouseError):
    """The warehouse could not be reached or is locked by another run; retrying may help."""

    transient = True


class Interrupted(RetailhubError):
    """The user stopped the run (Ctrl-C / SIGINT); it is recorded as failed and resumable."""

    exit_code = EXIT_INTERRUPTED


class ModelError(RetailhubError):
    """A SQL model failed to build (names the model and its file)."""

    exit_code = EXIT_RUNTIME

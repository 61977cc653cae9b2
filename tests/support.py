"""What every test folder shares: the skip-or-fail rule for services and the datasets folder.

Locally a missing service or dataset skips the test with the reason; in CI (``CI=true``) it
fails, because a suite that silently skips its database tests proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The public datasets: $RETAILHUB_DATASETS_DIR (as the example project reads it), else
#: ``shared/datasets`` beside the repository (where CI has them too).
DATASETS = Path(os.environ.get("RETAILHUB_DATASETS_DIR", REPO.parent / "shared" / "datasets"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(message: str) -> None:
    """Skip locally, fail in CI, naming what is missing."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: service-backed tests must run)")
    pytest.skip(message)


def require_service(name: str, reason: str) -> None:
    """Skip locally, fail in CI, when ``name`` is not available."""
    skip_or_fail(f"{name} unavailable: {reason}")


def datasets_or_skip() -> Path:
    """The public datasets folder, or skip/fail (see :func:`skip_or_fail`)."""
    if not (DATASETS / "online-retail").is_dir():
        skip_or_fail(f"public datasets not found at {DATASETS} (set RETAILHUB_DATASETS_DIR)")
    return DATASETS

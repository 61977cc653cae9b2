"""Shared fixtures: real services, real datasets, throwaway projects.

A test that needs a service calls ``require_service``: locally a missing service skips the
test with the reason; in CI (``CI=true``) it fails, because a suite that silently skips its
database tests proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("RETAILHUB_DATASETS_DIR", REPO.parent / "shared" / "datasets"))


def require_service(name: str, reason: str) -> None:
    """Skip locally, fail in CI, when ``name`` is not available."""
    message = f"{name} unavailable: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: service-backed tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        require_service("public datasets", f"{DATASETS} does not exist (set RETAILHUB_DATASETS_DIR)")
    return DATASETS

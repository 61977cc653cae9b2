"""Importing the analytics modules must not import the heavy libraries (fast CLI start-up)."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["rfm", "clv", "churn", "forecast", "anomalies", "insights", "products"]
HEAVY = ["scipy", "sklearn", "statsmodels"]


def test_import_is_light() -> None:
    code = (
        "import sys\n"
        + "".join(f"import retailhub.analytics.{m}\n" for m in MODULES)
        + f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"heavy modules imported at import time: {out}"

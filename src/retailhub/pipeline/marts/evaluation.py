"""``marts.mart_model_evaluation``: how good every model of this run is, stored with the run.

Long format, one row per (source, model, metric): churn ROC AUC against the recency-only
baseline, precision and lift in the top decile, the calibration table; forecast backtest errors
against seasonal naive; the fitted CLV parameters; anomaly flag rates. A number is in ``value``,
a note or a structured detail (JSON) in ``detail``. So a report read next month can be checked
against the exact figures of the run that produced it.
"""

from __future__ import annotations

from typing import Any

from retailhub.pipeline.marts.context import MartContext

NAME = "mart_model_evaluation"
COLUMNS = {
    "source_system": "VARCHAR",
    "model": "VARCHAR",
    "metric": "VARCHAR",
    "value": "DOUBLE",
    "detail": "VARCHAR",
}


def build(ctx: MartContext) -> dict[str, Any]:
    import pandas as pd

    frame = pd.DataFrame(ctx.evaluation, columns=list(COLUMNS))
    return ctx.create_mart_from_frame(
        NAME,
        frame,
        COLUMNS,
        "source_system, model, metric",
        ("marts.mart_customer_360", "marts.mart_forecast", "marts.mart_anomalies"),
        indexes=(("source_system", "model"),),
    )

"""Analytics marts builder (placeholder until the analytics marts land: builds nothing)."""

from __future__ import annotations

from typing import Any

from retailhub.pipeline.context import RunContext


def build_marts(ctx: RunContext) -> list[dict[str, Any]]:
    return []

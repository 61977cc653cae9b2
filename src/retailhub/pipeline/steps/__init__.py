"""One module per task kind; each exposes ``run(ctx, task) -> TaskOutput``."""

from __future__ import annotations

from collections.abc import Callable

from retailhub.pipeline.context import RunContext, TaskOutput
from retailhub.pipeline.plan import Task

StepFn = Callable[[RunContext, Task], TaskOutput]


def step_for(kind: str) -> StepFn:
    """The function that executes tasks of ``kind`` (imported lazily: analytics is heavy)."""
    from importlib import import_module

    module = import_module(f"retailhub.pipeline.steps.{kind}")
    return module.run  # type: ignore[no-any-return]

"""The pipeline as data: a task graph built from the configuration.

The in-process runner executes this plan, and the same plan can be rendered as an Airflow
DAG, so the two orchestrators can never disagree about what a run does. Tasks carry only
names and parameters; the code that runs them lives in :mod:`retailhub.pipeline.steps`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from retailhub.config.settings import ProjectSettings
from retailhub.errors import ConfigError

HEALTH, INGEST, VALIDATE, GATE, TRANSFORM, ANALYTICS, PUBLISH = (
    "health",
    "ingest",
    "validate",
    "gate",
    "transform",
    "analytics",
    "publish",
)


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    target: str | None = None
    depends_on: tuple[str, ...] = ()
    retries: int = 0


@dataclass(frozen=True)
class Plan:
    tasks: tuple[Task, ...]
    publishes: bool = True
    meta: dict[str, str] = field(default_factory=dict)
    # A run option that a resume must keep: the run rebuilds and replaces everything.
    full_refresh: bool = False

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def downstream(self, name: str) -> set[str]:
        """Every task that (transitively) depends on ``name``."""
        out: set[str] = set()
        frontier = {name}
        while frontier:
            nxt = {t.name for t in self.tasks if set(t.depends_on) & frontier} - out
            out |= nxt
            frontier = nxt
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "publishes": self.publishes,
                "full_refresh": self.full_refresh,
                "tasks": [asdict(t) for t in self.tasks],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        tasks = tuple(Task(**{**t, "depends_on": tuple(t["depends_on"])}) for t in data["tasks"])
        return cls(
            tasks=tasks,
            publishes=data.get("publishes", True),
            full_refresh=bool(data.get("full_refresh", False)),
        )


def datasets_of(settings: ProjectSettings) -> dict[str, list[str]]:
    """Dataset name -> the enabled sources feeding it, in configuration order."""
    out: dict[str, list[str]] = {}
    for name, src in settings.sources.items():
        if not getattr(src, "enabled", True):
            continue
        dataset = src.target_dataset
        out.setdefault(dataset, []).append(name)
    return out


def _check_layout_names(settings: ProjectSettings) -> None:
    """A misspelt built-in layout, named before anything else is checked.

    A source's dataset is named after its layout, so a typo there renamed the dataset, and
    the first error was about a referential rule pointing at a dataset no source provides.
    (Layout files, by path, are read and checked by the health task.)
    """
    from retailhub.sources.layout import available_layouts

    known = available_layouts()
    for name, src in settings.sources.items():
        layout = src.layout
        if src.enabled and not layout.endswith((".yaml", ".yml")) and layout not in known:
            raise ConfigError(
                f"key 'sources.{name}.layout': unknown layout {layout!r}; available: "
                f"{', '.join(known)} (or a path to a layout .yaml file)",
                key=f"sources.{name}.layout",
            )


def referenced_datasets(settings: ProjectSettings, dataset: str) -> set[str]:
    """Datasets that ``dataset``'s referential rules point at (they must validate first)."""
    cfg = settings.quality.datasets.get(dataset)
    refs: set[str] = set()
    for rule in getattr(cfg, "rules", []) or []:
        target = getattr(rule, "references", None)
        if target is not None:
            refs.add(target.dataset)
    return refs


def build_plan(
    settings: ProjectSettings,
    *,
    publish: bool = True,
    analytics: bool | None = None,
    full_refresh: bool = False,
) -> Plan:
    """Plan: health → ingest per source → validate per dataset → gate → transform → publish."""
    retries = settings.runner.retries
    tasks: list[Task] = [Task(HEALTH, HEALTH)]
    _check_layout_names(settings)
    datasets = datasets_of(settings)
    if not datasets:
        raise ConfigError("key 'sources': the project declares no enabled source", key="sources")
    for sources in datasets.values():
        for source in sources:
            tasks.append(Task(f"{INGEST}:{source}", INGEST, source, (HEALTH,), retries))
    validate_names = []
    for dataset, sources in datasets.items():
        deps = [f"{INGEST}:{s}" for s in sources]
        for ref in sorted(referenced_datasets(settings, dataset)):
            if ref not in datasets:
                raise ConfigError(
                    f"key 'quality.datasets.{dataset}': a referential rule points at dataset "
                    f"'{ref}', which no enabled source provides",
                    key=f"quality.datasets.{dataset}",
                )
            if ref != dataset:
                deps.append(f"{VALIDATE}:{ref}")
        name = f"{VALIDATE}:{dataset}"
        validate_names.append(name)
        tasks.append(Task(name, VALIDATE, dataset, tuple(deps)))
    tasks.append(Task(GATE, GATE, None, tuple(validate_names)))
    if publish:
        tasks.append(Task(TRANSFORM, TRANSFORM, None, (GATE,)))
        last = TRANSFORM
        use_analytics = settings.analytics.enabled if analytics is None else analytics
        if use_analytics:
            tasks.append(Task(ANALYTICS, ANALYTICS, None, (TRANSFORM,)))
            last = ANALYTICS
        tasks.append(Task(PUBLISH, PUBLISH, None, (last,), retries))
    return Plan(tasks=tuple(_ordered(tasks)), publishes=publish, full_refresh=full_refresh)


def _ordered(tasks: list[Task]) -> list[Task]:
    done: set[str] = set()
    out: list[Task] = []
    pending = list(tasks)
    while pending:
        ready = [t for t in pending if set(t.depends_on) <= done]
        if not ready:
            names = ", ".join(t.name for t in pending)
            raise ConfigError(f"the pipeline plan has a dependency cycle among: {names}")
        for t in ready:
            out.append(t)
            done.add(t.name)
            pending.remove(t)
    return out

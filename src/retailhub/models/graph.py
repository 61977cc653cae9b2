"""Find the SQL models, read their sidecars and dependencies, and order them.

Built-in models ship as package data under ``staging/``, ``intermediate/`` and ``marts/``; a
project can add its own directories. Dependencies come from the ``ref``/``source`` tags in the
SQL itself, so the graph can never disagree with what a model actually reads.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retailhub.errors import ConfigError, ModelError
from retailhub.models.sidecar import IDENTIFIER, default_schema, load_sidecar
from retailhub.models.template import find_tags

BUILTIN_DIR = Path(__file__).resolve().parent
BUILTIN_LAYERS = ("staging", "intermediate", "marts")


@dataclass(frozen=True)
class Model:
    """One SQL model: its SQL text as written, its sidecar and what it reads."""

    name: str
    schema: str
    sql_path: Path
    sql: str
    spec: dict[str, Any] = field(compare=False, hash=False)
    depends_on: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def materialized(self) -> str:
        """How the model is built: ``table`` (the default) or ``view``."""
        return str(self.spec.get("materialized", "table"))


def load_model(sql_path: Path) -> Model:
    """Read one ``.sql`` file and its sidecar into a Model."""
    name = sql_path.stem
    if not IDENTIFIER.match(name):
        raise ModelError(
            f"{sql_path}: model name '{name}' must be a lower-case identifier",
            model=name,
            file=str(sql_path),
        )
    try:
        sql = sql_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"{sql_path}: cannot read: {exc}", model=name, file=str(sql_path)) from exc
    refs, sources, unsupported = find_tags(sql)
    if unsupported:
        raise ModelError(
            f"{sql_path}: unsupported template tag {unsupported[0]!r} "
            "(only {{ ref('model') }} and {{ source('dataset') }})",
            model=name,
            file=str(sql_path),
        )
    spec = load_sidecar(sql_path)
    return Model(
        name=name,
        schema=spec.get("schema", default_schema(name)),
        sql_path=sql_path,
        sql=sql,
        spec=spec,
        depends_on=refs,
        sources=sources,
    )


def _sql_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.sql") if p.is_file())


def load_models(extra_dirs: Sequence[Path] = ()) -> list[Model]:
    """Load the built-in models plus every ``*.sql`` under ``extra_dirs`` (recursively).

    A name defined twice is an error naming both files: silently letting one win would make
    the star schema depend on directory order.
    """
    paths: list[Path] = []
    for layer in BUILTIN_LAYERS:
        paths.extend(_sql_files(BUILTIN_DIR / layer))
    for directory in extra_dirs:
        directory = Path(directory)
        if not directory.is_dir():
            raise ConfigError(f"model directory {directory} does not exist", file=str(directory))
        paths.extend(_sql_files(directory))
    models: dict[str, Model] = {}
    for path in paths:
        model = load_model(path)
        if model.name in models:
            raise ModelError(
                f"model '{model.name}' is defined twice: {models[model.name].sql_path} and {path}",
                model=model.name,
                file=str(path),
            )
        models[model.name] = model
    return list(models.values())


def ordered(models: Iterable[Model]) -> list[Model]:
    """Topological order (ties broken by name, so the order is reproducible).

    Raises ModelError for a ref to a model that is not in ``models`` and for a cycle, naming
    the cycle as ``a -> b -> a``.
    """
    by_name = {m.name: m for m in models}
    for model in by_name.values():
        for dep in model.depends_on:
            if dep not in by_name:
                raise ModelError(
                    f"model '{model.name}' ({model.sql_path}) refs unknown model '{dep}'",
                    model=model.name,
                    file=str(model.sql_path),
                )
    waiting = {name: set(m.depends_on) for name, m in by_name.items()}
    dependants: dict[str, list[str]] = {name: [] for name in by_name}
    for name, deps in waiting.items():
        for dep in deps:
            dependants[dep].append(name)
    ready = [name for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    out: list[Model] = []
    while ready:
        name = heapq.heappop(ready)
        out.append(by_name[name])
        for child in dependants[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                heapq.heappush(ready, child)
    if len(out) < len(by_name):
        cycle = _find_cycle({n: d for n, d in waiting.items() if d})
        first = by_name[cycle[0]]
        raise ModelError(
            f"models form a cycle: {' -> '.join(cycle)}",
            model=first.name,
            file=str(first.sql_path),
        )
    return out


def _find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """Walk unresolved dependencies from any node until a node repeats."""
    node = min(edges)
    path: list[str] = []
    seen: dict[str, int] = {}
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(edges[node])
    return [*path[seen[node] :], node]

"""``retailhub init``: lay out a new project from the packaged template."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from retailhub.config.loader import CONFIG_FILE
from retailhub.errors import UsageError

FOLDERS = ("data", "warehouse", "models")
GITIGNORE = "warehouse/\n.retailhub/\ndata/\n"


def template_text() -> str:
    return (files("retailhub.config") / "templates" / CONFIG_FILE).read_text(encoding="utf-8")


def project_file(name: str) -> str:
    """The template, named after the project's folder (the name every run is recorded with);
    everything else is the demo's configuration, which runs on ``retailhub generate`` data."""
    return template_text().replace("project: demo\n", f"project: {json.dumps(name)}\n", 1)


def scaffold(directory: Path, *, force: bool = False) -> list[Path]:
    """Create ``directory`` with retailhub.yaml and its folders; never clobber without force."""
    directory = directory.resolve()
    config = directory / CONFIG_FILE
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a folder: choose another project folder")
    blocking = [directory / n for n in FOLDERS if (directory / n).exists()]
    blocking = [p for p in blocking if not p.is_dir()]
    if blocking:
        raise UsageError(f"{blocking[0]} exists and is not a folder; the project needs it as one")
    if config.exists() and not force:
        raise UsageError(f"{config} already exists (use --force to overwrite it)")
    created: list[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(project_file(directory.name), encoding="utf-8")
    created.append(config)
    for name in FOLDERS:
        path = directory / name
        if not path.exists():
            path.mkdir()
            created.append(path)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE, encoding="utf-8")
        created.append(ignore)
    return created

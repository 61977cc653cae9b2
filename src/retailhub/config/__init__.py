"""Configuration layer: typed settings, the project file loader, ``${VAR}`` expansion."""

from retailhub.config.loader import CONFIG_FILE, LoadedProject, load_project

__all__ = ["CONFIG_FILE", "LoadedProject", "load_project"]

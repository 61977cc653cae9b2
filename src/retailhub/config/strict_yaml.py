"""YAML as people write it, read strictly: a key given twice in one mapping is an error.

PyYAML keeps the last of two equal keys without a word, so a second ``online_retail:``
block under ``sources:`` silently replaced the first, and a run read a fraction of the
files with exit 0. Every YAML file a user writes (the project file, model sidecars, layout
files) is read through :func:`load`.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG:  # '<<: *defaults' may repeat keys on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                line = first_line.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: PyYAML reports it itself
                continue
            if line != key_node.start_mark.line:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first given on line {line + 1}): remove or "
                    "merge one of them",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key repeated in one mapping (ConstructorError)."""
    return yaml.load(text, Loader=_StrictLoader)

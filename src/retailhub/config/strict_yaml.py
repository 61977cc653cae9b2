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
from yaml.nodes import MappingNode, ScalarNode

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        # Checked on the composed node, before merge keys are flattened into it: an anchored
        # mapping merged elsewhere is not mistaken for one with repeated keys.
        node = super().compose_mapping_node(anchor)
        first: dict[tuple[str, str], int] = {}
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue  # '<<: *defaults' may repeat keys on purpose
            key = (key_node.tag, key_node.value)
            if key in first:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key_node.value!r} (first given on line {first[key] + 1}): "
                    "remove or merge one of them",
                    key_node.start_mark,
                )
            first[key] = key_node.start_mark.line
        return node


def load(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key repeated in one mapping (ConstructorError)."""
    return yaml.load(text, Loader=_StrictLoader)

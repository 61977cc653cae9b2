"""retailhub sources layer: find new input, stream it as Arrow, land it raw, map it to a layout.

Public surface (everything else is an implementation detail):

- :func:`build_source` -> a :class:`Source` with ``discover`` / ``open`` / ``new_watermark``
- :func:`land` -> :class:`LandedUnit` per unit, rows streamed into a raw DuckDB table
- :func:`get_layout` -> :class:`Layout` with ``resolve`` and ``staging_sql``
"""

from retailhub.sources.base import InputUnit, Source, SourceState, build_source
from retailhub.sources.landing import METADATA_COLUMNS, LandedUnit, clean_column_names, land
from retailhub.sources.layout import Layout, LayoutColumn, available_layouts, get_layout

__all__ = [
    "METADATA_COLUMNS",
    "InputUnit",
    "LandedUnit",
    "Layout",
    "LayoutColumn",
    "Source",
    "SourceState",
    "available_layouts",
    "build_source",
    "clean_column_names",
    "get_layout",
    "land",
]

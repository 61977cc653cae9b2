"""retailhub models layer: SQL models (staging → intermediate → marts) and their runner.

The public surface: ``load_models`` / ``ordered`` find and order the models, ``build_models``
materialises them in DuckDB, ``test_models`` runs the sidecars' column tests and
``lineage_edges`` reports which table fed which.
"""

from retailhub.models.checks import ColumnTestFailure, test_models
from retailhub.models.dialect import function_definitions, install_duckdb_functions, to_postgres
from retailhub.models.graph import Model, load_model, load_models, ordered
from retailhub.models.runner import (
    BuiltModel,
    build_models,
    built_relation,
    lineage_edges,
    relation_name,
    render_model,
    view_name,
)

__all__ = [
    "BuiltModel",
    "ColumnTestFailure",
    "Model",
    "build_models",
    "built_relation",
    "function_definitions",
    "install_duckdb_functions",
    "lineage_edges",
    "load_model",
    "load_models",
    "ordered",
    "relation_name",
    "render_model",
    "test_models",
    "to_postgres",
    "view_name",
]

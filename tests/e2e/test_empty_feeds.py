"""Feeds that deliver nothing: a run reads them, records them and publishes nothing wrong."""

from __future__ import annotations

from pathlib import Path

from retailhub.errors import EXIT_OK
from retailhub.pipeline.project import Project


def test_empty_json_feeds_are_zero_rows_not_a_missing_column_error(tmp_path: Path) -> None:
    """A JSON '[]' and an empty NDJSON file have no header to name columns: validation said
    the layout's columns were missing from '[]' (exit 2) without naming a file."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.json").write_text("[]", encoding="utf-8")
    (data / "feed.ndjson").write_text("", encoding="utf-8")
    (tmp_path / "retailhub.yaml").write_text(
        "project: t\nanalytics:\n  enabled: false\nsources:\n"
        "  orders:\n    type: json\n    path: data/orders.json\n    layout: online_retail\n"
        "    dataset: orders\n"
        "  feed:\n    type: json\n    path: data/feed.ndjson\n    layout: online_retail\n"
        "    dataset: orders\n",
        encoding="utf-8",
    )
    project = Project.load(tmp_path)
    report = project.run()
    assert report.exit_code == EXIT_OK, report.error
    with project.open_warehouse(read_only=True) as wh:
        files = wh.query("select source, rows from meta.ingested_files order by source").rows
        accounting = wh.query(
            "select dataset, input_rows, accepted_rows, quarantined_rows "
            "from meta.dataset_accounting order by dataset"
        ).rows
    assert [(s, int(n)) for s, n in files] == [("feed", 0), ("orders", 0)]
    assert [(d, *(int(v) for v in row)) for d, *row in accounting] == [("orders", 0, 0, 0)]

"""First task of every run: the warehouse answers, its schemas exist, sources are buildable,
and every dataset's layout and quality rules fit together.

All of it is configuration that a run with no new input would otherwise never exercise: a
misspelt rule column or layout would pass unnoticed until the day a file arrives.
"""

from __future__ import annotations

import logging

from retailhub.errors import ConfigError
from retailhub.pipeline.context import WORK, RunContext, TaskOutput
from retailhub.pipeline.plan import Task, datasets_of, referenced_datasets
from retailhub.quality.binding import validate_rules
from retailhub.sources import build_source
from retailhub.sources.layout import PASS_THROUGH, get_layout

log = logging.getLogger(__name__)

WORK_SCHEMAS = ("landing", "accepted", "quarantined", "stg", "int", "core", "marts")


def run(ctx: RunContext, task: Task) -> TaskOutput:
    ctx.warehouse.init_schema()
    for schema in WORK_SCHEMAS:
        ctx.con.execute(f"create schema if not exists {WORK}.{schema}")
    sources = {}
    for name, cfg in ctx.settings.sources.items():
        if cfg.enabled:
            build_source(cfg, ctx.project.root)  # config errors surface before any data moves
            try:
                get_layout(cfg.layout, ctx.project.root)
            except ConfigError as exc:
                raise ConfigError(
                    f"key 'sources.{name}.layout': {exc}", key=f"sources.{name}.layout"
                ) from None
            sources[name] = cfg.type
    check_rules(ctx)
    if ctx.publishes:
        check_pseudonym_key(ctx)
    return TaskOutput(
        payload={"warehouse": ctx.warehouse.display_url, "sources": sources},
    )


def check_rules(ctx: RunContext) -> None:
    """Compile and bind every dataset's rules against an empty batch of its layout, so a rule
    naming a column the layout lacks, or an expression that does not parse, fails the run
    here (exit 2) whether or not input arrived. Pass-through layouts have no columns before
    their data does; their rules are checked when a batch arrives."""
    layouts = {
        dataset: ctx.settings.sources[names[0]].layout
        for dataset, names in datasets_of(ctx.settings).items()
    }
    columns = {
        dataset: {c.name: c.type for c in get_layout(layout, ctx.project.root).columns}
        for dataset, layout in layouts.items()
        if layout != PASS_THROUGH
    }
    for dataset, layout in layouts.items():
        rules = ctx.settings.quality.for_dataset(dataset, layout)
        refs = referenced_datasets(ctx.settings, dataset) & set(layouts)
        if dataset not in columns or not rules.rules or not refs <= set(columns):
            continue
        validate_rules(dataset, rules, columns[dataset], {r: columns[r] for r in refs})


def check_pseudonym_key(ctx: RunContext) -> None:
    """A warehouse with an analyst role publishes personal columns only pseudonymised, so
    without the key the publish would refuse: say so now, before ingest and the model build
    spend their minutes (``dim_customer`` always carries the name and e-mail columns)."""
    from retailhub.pipeline.publish_policy import has_analyst_role
    from retailhub.warehouse import audit, pseudonymise

    key = pseudonymise.key_from_env()
    if key is None and has_analyst_role(ctx.warehouse):
        raise ConfigError(
            f"this warehouse has an analyst role, so personal columns (customer names, e-mails) "
            f"are published only pseudonymised: set {pseudonymise.KEY_ENV}",
            key=pseudonymise.KEY_ENV,
        )
    recorded = audit.last_key_check(ctx.warehouse)
    if key is None and recorded not in (None, audit.CLEAR) and not ctx.rotate_pseudonym_key:
        # a scheduler that lost the variable would publish names and e-mails in clear
        raise ConfigError(
            f"{pseudonymise.KEY_ENV} is not set, but the published personal columns are "
            f"pseudonyms (key check {recorded}): this run would publish customer names and "
            "e-mails in clear and give every customer a second history. Set the key, or, to "
            "go back to clear values on purpose, run once with --rotate-pseudonym-key",
            key=pseudonymise.KEY_ENV,
        )
    if key is not None and recorded not in (None, audit.CLEAR, pseudonymise.key_check(key)):
        if not ctx.rotate_pseudonym_key:
            raise ConfigError(
                f"{pseudonymise.KEY_ENV} is not the key the published pseudonyms were made "
                f"with (key check {pseudonymise.key_check(key)}, recorded {recorded}): with it "
                "every customer would get a second pseudonym and a second history. Set the "
                "right key, or, to change keys on purpose, run once with "
                "--rotate-pseudonym-key",
                key=pseudonymise.KEY_ENV,
            )
        log.warning("rotating the pseudonym key: every pseudonym changes with this run")

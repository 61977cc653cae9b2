"""The ``retailhub`` command. Each command parses options, calls the Project facade, renders.

Exit codes: 0 success, 1 quality gate failed, 2 usage or configuration error,
3 runtime failure (source unreadable, warehouse unavailable), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import functools
import shlex
import signal
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from retailhub import __version__, interrupts
from retailhub.errors import EXIT_RUNTIME, RetailhubError

F = TypeVar("F", bound=Callable[..., Any])


def _hide_flag_types() -> None:
    """Show ``--full-refresh`` in help as a flag, not as ``--full-refresh <bool>``.

    Typer 0.29 prints every option's type, flags included, which reads as if the flag wanted a
    value (``-v <int>`` invites ``-v 2`` where ``-vv`` is meant). Options with their own
    metavar, and every other option, are shown as before.
    """
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None:  # another Typer: leave its help as it is
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        takes_no_value = getattr(self, "is_flag", False) or getattr(self, "count", False)
        if takes_no_value and self.metavar is None:
            return None
        return shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()

#: retailhub.demo.MIN_ROWS, not imported: the demo package loads numpy, and --help should not.
DEMO_MIN_ROWS = 100

app = typer.Typer(
    name="retailhub",
    help=(
        "retailhub turns raw retail data into a validated, documented warehouse.\n\n"
        "Start with:  retailhub init shop && cd shop && retailhub generate --out data "
        "&& retailhub run\n\n"
        "Exit codes: 0 ok, 1 quality gate failed, 2 usage/config error, 3 runtime failure, "
        "130 interrupted."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Run history from the ledger (meta.pipeline_runs).")
app.add_typer(runs_app, name="runs")

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="Project folder holding retailhub.yaml (default: current folder).",
        envvar="RETAILHUB_PROJECT_DIR",
        show_envvar=True,
    ),
]
WarehouseOpt = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        "-w",
        help="Warehouse URL, e.g. duckdb:///warehouse/retailhub.duckdb or "
        "postgresql://user@host:5432/db (overrides the 'warehouse.url' key and "
        "RETAILHUB_WAREHOUSE__URL).",
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Configuration profile: dev, staging or prod.",
        envvar="RETAILHUB_PROFILE",
        show_envvar=True,
    ),
]


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def handle_errors(fn: F) -> F:
    """Turn retailhub errors into one readable line and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from retailhub.cli import console

        try:
            return fn(*args, **kwargs)
        except RetailhubError as exc:
            console.error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if _stopped_by_the_server(exc):
                # a statement_timeout in the URL's options, an administrator's cancel or
                # shutdown: the transaction was rolled back; a runtime failure, said plainly
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                console.error(f"the PostgreSQL warehouse stopped the command: {first}")
                raise typer.Exit(EXIT_RUNTIME) from None
            console.error(f"unexpected {type(exc).__name__}: {exc} (rerun with -vv for details)")
            import logging

            logging.getLogger("retailhub").debug("traceback", exc_info=True)
            raise typer.Exit(EXIT_RUNTIME) from None

    return wrapper  # type: ignore[return-value]


def _stopped_by_the_server(exc: BaseException) -> bool:
    """A PostgreSQL statement cancelled or cut off by the server (SQLSTATE class 57:
    query_canceled, admin_shutdown...; 55P03 lock_not_available), not a bug of retailhub's."""
    sqlstate = getattr(exc, "sqlstate", None)
    return type(exc).__module__.startswith("psycopg") and bool(
        sqlstate and (sqlstate.startswith("57") or sqlstate == "55P03")
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"retailhub {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logs (-vv debug).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log only errors (summaries still print).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    from retailhub.cli.console import setup_logging

    setup_logging(verbose, quiet)


@app.command()
@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing retailhub.yaml.")] = False,
) -> None:
    """Scaffold a project: retailhub.yaml and the folders it names (data/, warehouse/, models/)."""
    from retailhub.cli.console import out
    from retailhub.config.scaffold import scaffold

    created = scaffold(directory, force=force)
    for path in created:
        out.print(f"created {path}")
    out.print(
        f"next: cd {shlex.quote(str(directory))} && "
        "retailhub generate --out data --rows 100000 && retailhub run"
    )


@app.command()
@handle_errors
def generate(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the datasets to.")],
    rows: Annotated[
        int,
        typer.Option(
            min=DEMO_MIN_ROWS,
            help="Online-retail transaction rows (the injected duplicates come on top).",
        ),
    ] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 42,
    defect_rate: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.5, help="Share of rows given a defect (listed in defects.json)."
        ),
    ] = 0.01,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that already holds files.")
    ] = False,
) -> None:
    """Write the four demo datasets (consistent, realistic, with injected defects)."""
    from retailhub.cli.console import RichProgress, out
    from retailhub.demo import generate as gen
    from retailhub.errors import UsageError

    held = [p for p in out_dir.rglob("*") if p.is_file()] if out_dir.is_dir() else []
    if held and not force:
        # files a warehouse has ingested, rewritten, make every later run stop on "changed"
        raise UsageError(
            f"{out_dir} already holds {len(held)} file(s) (e.g. {held[0]}): generating would "
            "overwrite them; choose an empty folder, or pass --force",
            path=str(out_dir),
        )

    with RichProgress() as progress:
        try:
            report = gen(
                out_dir, rows=rows, seed=seed, defect_rate=defect_rate, progress=progress.stage
            )
        except ValueError as exc:
            raise UsageError(f"generate: {exc}") from None
        except OSError as exc:
            raise UsageError(
                f"generate: cannot write to {out_dir}: {exc.strerror or exc}", path=str(out_dir)
            ) from None
    out.print(
        f"wrote {len(report.files)} data files to {out_dir} in {report.seconds:.1f}s; "
        f"defects listed in {report.defects_path}"
    )


@app.command()
@handle_errors
def run(
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume", metavar="RUN_ID", help="Continue a failed run from its failed task."
        ),
    ] = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild even when nothing is new, and replace every published table "
            "instead of appending only new fact rows.",
        ),
    ] = False,
    rotate_pseudonym_key: Annotated[
        bool,
        typer.Option(
            "--rotate-pseudonym-key",
            help="Accept a RETAILHUB_PSEUDONYM_KEY other than the published pseudonyms' "
            "(a run with another key is refused otherwise); implies --full-refresh.",
        ),
    ] = False,
) -> None:
    """Run the pipeline (ingest, validate, transform, analytics, publish) and print a summary.

    Only input files not ingested before are read. A run that finds nothing new, with the
    same configuration, code and models as the last build, leaves the warehouse as it is.

    Exit codes: 0 success, 1 quality gate failed (nothing published), 2 usage or
    configuration error, 3 runtime failure (source unreadable, warehouse unavailable),
    130 interrupted (Ctrl-C; continue with --resume).

    Examples: retailhub run -p shop · retailhub run -w postgresql://loader@db:5432/retail ·
    retailhub run --resume 20261126T120222-51f31a
    """
    _run(
        project,
        warehouse,
        profile,
        resume=resume,
        publish=True,
        full_refresh=full_refresh or rotate_pseudonym_key,
        rotate_pseudonym_key=rotate_pseudonym_key,
    )


@app.command()
@handle_errors
def check(
    project: ProjectOpt = None, warehouse: WarehouseOpt = None, profile: ProfileOpt = None
) -> None:
    """Ingest and validate only: print the quality scorecard and publish nothing."""
    _run(project, warehouse, profile, resume=None, publish=False)


def _run(
    project: Path | None,
    warehouse: str | None,
    profile: str | None,
    *,
    resume: str | None,
    publish: bool,
    full_refresh: bool = False,
    rotate_pseudonym_key: bool = False,
) -> None:
    from retailhub.cli.console import RichProgress, render_report
    from retailhub.pipeline.project import Project

    proj = Project.load(project, profile=profile, warehouse_url=warehouse)
    # SIGTERM (systemd, docker stop, a scheduler's timeout) stops a run like Ctrl-C: the task
    # is recorded as interrupted and the run can be resumed, instead of dying mid-write
    signal.signal(signal.SIGTERM, interrupts.stop)
    with RichProgress() as progress:
        report = proj.run(
            resume=resume,
            publish=publish,
            progress=progress,
            full_refresh=full_refresh,
            rotate_pseudonym_key=rotate_pseudonym_key,
        )
    render_report(report)
    raise typer.Exit(report.exit_code)


@runs_app.callback(invoke_without_command=True)
@handle_errors
def runs(
    ctx: typer.Context,
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs to list, newest first.")] = 20,
) -> None:
    """List recent runs (status, rows, quality score)."""
    if ctx.invoked_subcommand:
        ctx.obj = {"project": project, "warehouse": warehouse, "profile": profile}
        return
    from retailhub.cli.console import render_rows
    from retailhub.pipeline.project import Project

    rows = Project.load(
        project, profile=profile, warehouse_url=warehouse, reads_sources=False
    ).runs(limit)
    render_rows(rows, title="Runs", readable=True)


@runs_app.command("show")
@handle_errors
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id from 'retailhub runs'.")],
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Show one run: its tasks with timings and rows, dataset accounting, quality results."""
    from retailhub.cli.console import render_record, render_rows
    from retailhub.pipeline.project import Project

    parent = ctx.obj or {}
    proj = Project.load(
        project or parent.get("project"),
        profile=profile or parent.get("profile"),
        warehouse_url=warehouse or parent.get("warehouse"),
        reads_sources=False,
    )
    detail = proj.run_detail(run_id)
    render_record(detail["run"], title=f"Run {run_id}")
    render_rows(detail["tasks"], title="Tasks", readable=True)
    render_rows(detail["datasets"], title="Datasets", readable=True)
    render_rows(detail["quality"], title="Quality results", readable=True)


@app.command()
@handle_errors
def query(
    sql: Annotated[
        str,
        typer.Argument(help='SQL to run read-only, e.g. "select count(*) from core.fct_sales".'),
    ],
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")] = Fmt.table,
) -> None:
    """Run read-only SQL against the warehouse (schemas core, marts, quarantine, meta, raw)."""
    from retailhub.cli.console import render_query
    from retailhub.pipeline.project import Project

    proj = Project.load(project, profile=profile, warehouse_url=warehouse, reads_sources=False)
    render_query(proj.query(sql), fmt.value)


@app.command()
@handle_errors
def insights(
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many insights, most important first.")
    ] = 10,
) -> None:
    """List the ranked insights of the last run (marts.mart_insights), most important first."""
    from retailhub.cli.console import render_rows
    from retailhub.pipeline.project import Project

    rows = Project.load(
        project, profile=profile, warehouse_url=warehouse, reads_sources=False
    ).insights(limit)
    render_rows(rows, title="Insights")


@app.command()
@handle_errors
def bench(
    rows: Annotated[
        int, typer.Option(min=1000, help="Transaction rows to generate and process.")
    ] = 1_000_000,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Scratch folder (default: a temp folder); its data/, warehouse/ and "
            ".retailhub/ are replaced, so every bench measures a first run."
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
    keep: Annotated[bool, typer.Option(help="Keep the generated data and warehouse.")] = False,
) -> None:
    """Benchmark: generate data, run the pipeline, print rows/s per stage and peak memory.

    Generates N transaction rows plus proportional other datasets."""
    from retailhub.cli.console import render_rows
    from retailhub.pipeline.bench import run_benchmark

    result = run_benchmark(rows=rows, workdir=workdir, warehouse_url=warehouse, keep=keep)
    render_rows(result["stages"], title=f"Benchmark: {rows:,} transaction rows", readable=True)
    # one measure per line: a one-row table of eleven columns is cut to fit the terminal
    summary = [{"measure": k, "value": v} for k, v in result["summary"].items()]
    render_rows(summary, title="Summary", readable=True)


# -- warehouse administration: init, backup, restore -------------------------------------------
warehouse_app = typer.Typer(help="Warehouse administration: schemas, roles and grants.")
app.add_typer(warehouse_app, name="warehouse")


@warehouse_app.command("init")
@handle_errors
def warehouse_init(
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
    loader_role: Annotated[
        str, typer.Option(help="PostgreSQL role that runs use (writes raw, core, marts, meta).")
    ] = "retailhub_loader",
    analyst_role: Annotated[
        str, typer.Option(help="PostgreSQL read-only role for core and marts.")
    ] = "retailhub_analyst",
) -> None:
    """Create schemas, ledger tables, roles and grants; safe to run again.

    On PostgreSQL connect as an administrator (a superuser or a role with CREATEROLE), e.g.
    --warehouse postgresql://postgres@host:5432/db; runs then connect as the loader role.
    """
    from retailhub.cli.console import render_rows
    from retailhub.pipeline.project import Project

    proj = Project.load(project, profile=profile, warehouse_url=warehouse, reads_sources=False)
    result = proj.warehouse_init(loader_role=loader_role, analyst_role=analyst_role)
    render_rows([result], title="Warehouse initialised")


@app.command()
@handle_errors
def backup(
    out: Annotated[Path, typer.Option("--out", "-o", help="Backup file to write.")],
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace FILE if it exists (an earlier backup).")
    ] = False,
) -> None:
    """Back up the warehouse to FILE, with FILE.manifest.json and a FILE.sha256 checksum file."""
    from retailhub.cli.console import render_rows
    from retailhub.pipeline.project import Project

    result = Project.load(
        project, profile=profile, warehouse_url=warehouse, reads_sources=False
    ).backup(out, replace=force)
    render_rows(
        [
            {
                "file": str(result.path),
                "bytes": result.bytes,
                "tables": len(result.tables),
                "rows": sum(result.tables.values()),
                "sha256": result.sha256,
                "seconds": round(result.seconds, 2),
            }
        ],
        title="Backup written",
    )


@app.command()
@handle_errors
def restore(
    file: Annotated[Path, typer.Argument(help="Backup file written by 'retailhub backup'.")],
    project: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Verify FILE against FILE.sha256, then replace the warehouse with it (atomically)."""
    from retailhub.cli.console import render_rows
    from retailhub.pipeline.project import Project

    result = Project.load(
        project, profile=profile, warehouse_url=warehouse, reads_sources=False
    ).restore(file)
    render_rows(
        [{"table": t, "rows": n} for t, n in sorted(result.tables.items())],
        title=f"Restored {result.path} in {result.seconds:.1f}s "
        "(checksums and row counts verified)",
    )


if __name__ == "__main__":  # pragma: no cover
    app()

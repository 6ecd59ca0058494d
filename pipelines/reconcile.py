"""Batch reconciliation over a period as a Beam pipeline (issue 21): claim ids in, one reconciliation per claim
(``graph.reconcile.reconcile_claim``: read its inputs, run the rules, replace its findings), an audit row or a
dead letter out. The rule book (the bureau's files) is loaded once per worker in ``setup``; the graph is reached
through ``pipelines.graphio.ResilientWriter`` (reconnects, waits for a restarting server), as the ingest does.

    medkg reconcile --all --since 2026-01-01 --rules drug_rules.csv --beam
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from pipelines.graphio import GraphTarget, ResilientWriter
from pipelines.transforms import DEAD, WriteJsonLines, counter, dead_letter


@dataclass(frozen=True)
class Books:
    """Paths of the bureau's files (pickled into the pipeline; loaded on the worker)."""

    rules: tuple[str, ...] = ()
    catalogue: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    diseases: tuple[str, ...] = ()

    def load(self):
        from claims.reconcile import RuleBook

        if not (self.rules or self.catalogue or self.classes or self.diseases):
            return RuleBook.from_settings()  # the workers' MEDKG_RECONCILE_* (None: no restriction rules)
        return RuleBook.load(rules=self.rules, catalogue=self.catalogue, classes=self.classes, diseases=self.diseases)


class ReconcileClaims(beam.DoFn):
    def __init__(self, target: GraphTarget, books: Books, write: bool = True, timeout_s: float = 300.0):
        self.target, self.books, self.write, self.timeout_s = target, books, write, timeout_s

    def setup(self):
        self.book = self.books.load()
        self.graph = ResilientWriter(self.target, timeout_s=self.timeout_s)
        self.done, self.found = counter("reconciled"), counter("findings")

    def process(self, claim_id: str):
        from graph.reconcile import reconcile_claim

        try:
            rec = self.graph.call(lambda w: reconcile_claim(w.driver, claim_id, self.book, database=w.database,
                                                            write=self.write))
        except Exception as exc:  # noqa: BLE001 - one claim's failure is its dead letter, not the job's
            yield TaggedOutput(DEAD, dead_letter(claim_id, "reconcile", exc))
            return
        if rec is None:
            yield TaggedOutput(DEAD, dead_letter(claim_id, "reconcile", KeyError(f"unknown claim {claim_id}")))
            return
        self.done.inc()
        self.found.inc(len(rec.findings))
        yield {"claim_id": claim_id, "findings": len(rec.findings),
               "rules": sorted({f.rule for f in rec.findings}), "charges": rec.charges}

    def teardown(self):
        self.graph.close()


class Reconcile(beam.PTransform):
    """claim ids → audit rows (main output) and dead letters (``DEAD``)."""

    def __init__(self, target: GraphTarget, books: Books, write: bool = True):
        super().__init__()
        self.target, self.books, self.write = target, books, write

    def expand(self, ids):
        return (ids
                | "Spread" >> beam.Reshuffle()
                | "Reconcile" >> beam.ParDo(ReconcileClaims(self.target, self.books, self.write)).with_outputs(
                    DEAD, main="audit"))


def run(claim_ids: Sequence[str], *, rules=(), catalogue=(), classes=(), diseases=(), write: bool = True,
        beam_args: Sequence[str] = ("--direct_running_mode=in_memory",), target: GraphTarget | None = None) -> dict:
    """Run the batch; returns {claims, reconciled, findings, dead_lettered, dead_letters, by_rule}."""
    from pipelines.ingest import pipeline_options

    target = target or GraphTarget.from_env()
    books = Books(*(tuple(str(p) for p in x) for x in (rules, catalogue, classes, diseases)))
    import glob
    import json
    import tempfile

    opts = pipeline_options(beam_args)
    with tempfile.TemporaryDirectory(prefix="medkg-reconcile-") as out_dir:
        with beam.Pipeline(options=opts) as p:
            out = (p | "Ids" >> beam.Create(list(dict.fromkeys(claim_ids)))
                   | "Reconcile" >> Reconcile(target, books, write))
            out.audit | "Audit" >> WriteJsonLines(f"{out_dir}/audit.jsonl")
            out[DEAD] | "Dead" >> WriteJsonLines(f"{out_dir}/dead_letter.jsonl")

        def read(name):
            return [json.loads(line) for path in sorted(glob.glob(f"{out_dir}/{name}*"))
                    for line in open(path, encoding="utf-8") if line.strip()]

        audit_rows, dead_rows = read("audit"), read("dead_letter")
    by_rule: dict[str, int] = {}
    for r in audit_rows:
        for rule in r["rules"]:
            by_rule[rule] = by_rule.get(rule, 0) + 1
    return {"claims": len(set(claim_ids)), "reconciled": len(audit_rows),
            "findings": sum(r["findings"] for r in audit_rows), "dead_lettered": len(dead_rows),
            "dead_letters": dead_rows, "claims_by_rule": by_rule}

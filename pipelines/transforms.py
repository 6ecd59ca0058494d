"""What both ingest pipelines share: dead letters, counters, progress ticks, the graph sink, JSON-lines files.

Accounting: every input (a bill file; a record, or a record file that yields none) ends in exactly one of two
places, the audit output (written to the graph) or the dead-letter output (input reference, stage, error).
``inputs``, ``processed`` and ``dead_lettered`` counters make ``inputs == processed + dead_lettered`` checkable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from core.records import utcnow
from pipelines.graphio import GraphTarget, ResilientWriter, broken_connection

NAMESPACE = "medkg"
DEAD = "dead_letter"


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


def dead_letter(ref: str, stage: str, exc: BaseException, doc_id: str | None = None) -> dict:
    """The dead-letter row: which input, at which stage, what went wrong (typed errors keep their reason)."""
    return {"input": ref, "stage": stage, "error": type(exc).__name__, "reason": getattr(exc, "reason", ""),
            "message": str(exc), "doc_id": doc_id, "at": utcnow().isoformat()}


@dataclass(frozen=True)
class Progress:
    """Appends ``<event> <n>`` lines to a local file the CLI's progress bar follows (None: off). Appends of a
    few bytes are atomic across worker processes; on a remote runner the file is simply not used."""

    path: str | None = None

    def add(self, event: str, n: int = 1) -> None:
        if self.path and n:
            with open(self.path, "a", encoding="ascii") as f:
                f.write(f"{event} {n}\n")


NO_PROGRESS = Progress()


@dataclass(frozen=True)
class GraphDoc:
    """One input, ready for the graph: ``method`` is the ``GraphWriter`` method that takes ``items``."""

    input: str
    doc_id: str
    method: str  # "write_claims" | "write_records"
    items: tuple
    audit: dict = field(default_factory=dict)


class IngestOutputs(NamedTuple):  # a named tuple: Beam tracks the PCollections of a transform's result by name
    written: beam.PCollection  # audit rows
    dead: beam.PCollection  # dead-letter rows


class WriteToGraph(beam.PTransform):
    """Documents → batches → one idempotent write per batch; audit rows out, dead letters on ``DEAD``.
    ``target=None`` is a dry run: everything but the write."""

    def __init__(self, target: GraphTarget | None, batch_size: int = 64, timeout_s: float = 300.0,
                 progress: Progress = NO_PROGRESS, min_batch_size: int = 1):
        super().__init__()
        self.target, self.batch_size, self.timeout_s, self.progress = target, batch_size, timeout_s, progress
        self.min_batch_size = min(min_batch_size, batch_size)

    def expand(self, docs):
        # batches start small and grow (BatchElements adapts to the write time): the first documents show early
        return (docs
                | "Batch" >> beam.BatchElements(min_batch_size=self.min_batch_size, max_batch_size=self.batch_size)
                | "Write" >> beam.ParDo(_WriteBatches(self.target, self.timeout_s, self.progress))
                .with_outputs(DEAD, main="written"))


class _WriteBatches(beam.DoFn):
    def __init__(self, target: GraphTarget | None, timeout_s: float, progress: Progress):
        self.target, self.timeout_s, self.progress = target, timeout_s, progress

    def setup(self):
        self.writer = ResilientWriter(self.target, timeout_s=self.timeout_s) if self.target else None
        self.processed, self.batches = counter("processed"), counter("graph_batches")
        self.reconnects, self.retries = counter("graph_reconnects"), counter("graph_retries")

    def process(self, batch: list[GraphDoc]):
        yield from self._write(batch)

    def _write(self, batch: list[GraphDoc]):
        error = self._send(batch)
        if error is None:
            self.processed.inc(len(batch))
            self.progress.add("done", len(batch))  # dead letters tick in CountDeadLetters
            at = utcnow().isoformat()
            for doc in batch:
                yield {"input": doc.input, "doc_id": doc.doc_id, **doc.audit, "written_at": at}
        elif len(batch) == 1 or broken_connection(error):  # the server stayed away past the timeout
            for doc in batch:
                yield TaggedOutput(DEAD, dead_letter(doc.input, "graph", error, doc.doc_id))
        else:  # a document the graph refuses: find it, keep the others
            for doc in batch:
                yield from self._write([doc])

    def _send(self, batch: list[GraphDoc]) -> Exception | None:
        if self.writer is None:  # dry run
            return None
        before = self.writer.reconnects, self.writer.retries
        try:
            self.writer.call(lambda w: _write_docs(w, batch))
            self.batches.inc()
            return None
        except Exception as exc:  # noqa: BLE001 - returned: the caller dead-letters or isolates
            return exc
        finally:
            self.reconnects.inc(self.writer.reconnects - before[0])
            self.retries.inc(self.writer.retries - before[1])

    def teardown(self):
        if self.writer is not None:
            self.writer.close()


def _write_docs(writer, batch: list[GraphDoc]) -> None:
    for method in dict.fromkeys(d.method for d in batch):
        getattr(writer, method)([item for d in batch if d.method == method for item in d.items])


class _CountDead(beam.DoFn):
    def __init__(self, progress: Progress):
        self.progress = progress

    def process(self, row: dict):
        counter("dead_lettered").inc()
        counter(f"dead_lettered.{row['stage']}").inc()
        self.progress.add("done")
        yield row


class CountDeadLetters(beam.PTransform):
    def __init__(self, progress: Progress = NO_PROGRESS):
        super().__init__()
        self.progress = progress

    def expand(self, rows):
        return rows | beam.ParDo(_CountDead(self.progress))


class WriteJsonLines(beam.PTransform):
    """Rows as one JSON-lines file at ``path`` (a single shard: these files are for people and tools)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def expand(self, rows):
        return (rows
                | "JSON" >> beam.Map(lambda row: json.dumps(row, ensure_ascii=False, default=str))
                | "Write" >> beam.io.WriteToText(self.path, shard_name_template="", num_shards=1))

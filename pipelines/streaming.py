"""`medkg feeds run`: the long-running Beam pipeline from the feed stream to the graph.

::

    ReadFeed (unbounded splittable DoFn: XAUTOCLAIM stale pending entries, else XREADGROUP BLOCK)
      -> Parse (feeds.hl7v2 / feeds.fhir -> FeedMessage: graph ops + clinical texts)
      -> texts: NER (RunInference) -> assertions -> relations (RunInference) -> GraphDoc   (pipelines.records)
      -> FeedGraphSink (ops + documents -> the graph, one write per bundle; what the graph refuses -> dead letter)
      -> XACK of the bundle's entries in the bundle finaliser

Everything after the source stays in the source's fused stage (no grouping: on FnApiRunner the watermark of an
unbounded source stays at its minimum), so a bundle is: the entries of one read, processed and written; Beam
calls the bundle finaliser only after all of it, sink included, succeeded. An entry is acknowledged only then.
A process killed before that leaves its entries pending in the consumer group; after
``MEDKG_FEEDS_CLAIM_IDLE_MS`` another consumer (or the restarted one) reclaims them with XAUTOCLAIM and
writes them again, which the graph's keyed, versioned, idempotent writes make harmless: nothing lost,
nothing applied twice. An entry delivered more than ``MEDKG_FEEDS_MAX_DELIVERIES`` times (a message that
kills its worker) goes to the dead-letter stream instead. What cannot be processed (parse, NER, assertions,
relations, a write the graph refuses) goes to the dead-letter stream with the raw input, stage and reason,
and is acknowledged. While the graph server is away, the sink waits for it (it never dead-letters a message
because the server is down) and the stream keeps the backlog.

Runner: FnApiRunner in one process (``--direct_running_mode=in_memory``): with ``direct_num_workers>1`` the
local runner ends an unbounded pipeline silently after the first call (architecture guide), so scaling out is
one pipeline process per core, each a consumer of the same group (``medkg feeds run --processes N``).
On a cluster the same pipeline runs on Flink through the PortableRunner with the Beam job-server jar from
an internal mirror (``--runner=PortableRunner --job_endpoint=...``; README), the buffer being the production
Redis/Valkey (``REDIS_URL``) and the graph Neo4j (``NEO4J_URI``).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass

import apache_beam as beam

import pipelines.lean  # noqa: F401 - before RunInference (see its docstring)

# isort: split
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.core import RestrictionProvider

from feeds.buffer import BufferTarget
from pipelines.graphio import GraphTarget, ResilientWriter, broken_connection
from pipelines.records import Annotate, NerHandler, RelationHandler, ToGraphDoc, _without_relations
from pipelines.transforms import DEAD, GraphDoc, counter

_FOREVER = sys.maxsize


@dataclass(frozen=True)
class StreamConfig:
    consumer: str = ""  # default: host-pid
    count: int = 64
    block_ms: int = 500
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    idle_stop_s: float | None = None  # tests and benchmarks: end after this long without an entry
    relations: bool = True
    ner_model: str | None = None
    re_model: str | None = None
    ner_batch: int = 32
    graph_timeout_s: float = 60.0  # one attempt's wait for the graph; the sink then tries again, forever

    @classmethod
    def from_settings(cls, **kw) -> StreamConfig:
        from core.settings import get_settings

        s = get_settings()
        base = {"count": s.feeds_read_count, "block_ms": s.feeds_block_ms, "claim_idle_ms": s.feeds_claim_idle_ms,
                "max_deliveries": s.feeds_max_deliveries}
        base.update({k: v for k, v in kw.items() if v is not None})
        return cls(**base)


@dataclass(frozen=True)
class Entry:
    entry_id: str
    fields: dict


class _Forever(RestrictionProvider):
    """One unbounded offset range per source element; never split (one reader per process)."""

    def initial_restriction(self, element):
        return OffsetRange(0, _FOREVER)

    def create_tracker(self, restriction):
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element, restriction):
        return 1

    def split(self, element, restriction):
        yield restriction

    def truncate(self, element, restriction):
        return None  # draining: stop reading


def _s(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


@beam.DoFn.unbounded_per_element()
class ReadFeed(beam.DoFn):
    """The consumer-group reader. Each call reads one batch (reclaimed stale entries first), yields them and
    registers their XACK with the bundle finaliser, then defers the rest of its (endless) restriction."""

    def __init__(self, target: BufferTarget, cfg: StreamConfig):
        self.target, self.cfg = target, cfg

    def setup(self):
        self.buffer = self.target.connect(timeout=max(10.0, self.cfg.block_ms / 1000 + 5))
        self.buffer.ensure_group(wait_s=60)
        self.consumer = self.cfg.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.read, self.redelivered, self.poison = counter("feed_read"), counter("feed_reclaimed"), counter("feed_poison")
        self.acked = counter("feed_acked")
        self.last_entry = time.monotonic()

    def process(self, element, finalizer=beam.DoFn.BundleFinalizerParam,
                tracker=beam.DoFn.RestrictionParam(_Forever())):
        pos = tracker.current_restriction().start
        try:
            entries = self.buffer.read(self.consumer, self.cfg.count, self.cfg.block_ms, self.cfg.claim_idle_ms)
        except Exception:  # noqa: BLE001 - the buffer is away (restarting): wait, then read again
            time.sleep(0.5)
            entries = []
        ids = []
        for entry_id, fields, deliveries in entries:
            if not tracker.try_claim(pos):
                return
            pos += 1
            ids.append(entry_id)
            fields = {_s(k): v for k, v in fields.items()}
            if deliveries > 1:
                self.redelivered.inc()
            if deliveries > self.cfg.max_deliveries:
                self.poison.inc()
                self._dead(entry_id, fields, "delivery",
                           f"delivered {deliveries} times without being processed (a crash each time?)")
                continue
            self.read.inc()
            yield Entry(entry_id, fields)
        if ids:
            self.last_entry = time.monotonic()
            finalizer.register(lambda ids=tuple(ids): self._ack(ids))
        elif self.cfg.idle_stop_s is not None and time.monotonic() - self.last_entry > self.cfg.idle_stop_s:
            tracker.try_claim(tracker.current_restriction().stop - 1)  # claim to the end: the restriction is done
            return  # tests and benchmarks: the stream stayed empty long enough
        tracker.defer_remainder()

    def _dead(self, entry_id: str, fields: dict, stage: str, reason: str) -> None:
        self.buffer.dead_letter(fields.get("raw", b""), stage, reason, source=_s(fields.get("source", b"")),
                                entry=entry_id, wait_s=60)

    def _ack(self, ids) -> None:
        try:
            self.buffer.ack(ids, wait_s=5)
            self.acked.inc(len(ids))
        except Exception:  # noqa: BLE001 - unacknowledged entries are reclaimed and rewritten (idempotent)
            pass

    def teardown(self):
        self.buffer.close()


@dataclass(frozen=True)
class OpsDoc:
    """A message's structured part for the graph (graph.feed_rows ops)."""

    entry_id: str
    ops: tuple


class Parse(beam.DoFn):
    """Entry -> its graph ops (main output) and its clinical texts (``texts``: ``(entry_id, ClinicalRecord)``);
    what does not parse -> a dead letter."""

    TEXTS = "texts"

    def setup(self):
        self.parsed = counter("feed_parsed")

    def process(self, entry: Entry):
        from feeds.hl7v2 import FeedError

        fields = entry.fields
        source = _s(fields.get("source", b"mllp"))
        try:
            if source == "fhir":
                from feeds.fhir import parse_entry

                msg = parse_entry(fields["raw"])
            else:
                from feeds.hl7v2 import parse

                msg = parse(fields["raw"], _s(fields.get("encoding", b"utf-8")))
        except FeedError as exc:
            yield TaggedOutput(DEAD, {"input": entry.entry_id, "stage": "parse", "reason": exc.reason})
            return
        except Exception as exc:  # noqa: BLE001
            yield TaggedOutput(DEAD, {"input": entry.entry_id, "stage": "parse",
                                      "reason": f"{type(exc).__name__}: {exc}"})
            return
        self.parsed.inc()
        yield OpsDoc(entry.entry_id, msg.ops)
        for i, record in enumerate(msg.documents):
            yield TaggedOutput(self.TEXTS, (f"{entry.entry_id}#{i}", record))


class FeedGraphSink(beam.DoFn):
    """Graph ops and documents of a bundle -> the graph in one write at the bundle's end; dead letters ->
    the dead-letter stream (with the raw input read back from the stream). A write the graph refuses is
    retried item by item and the refused item dead-lettered; a graph server that is away is waited for."""

    def __init__(self, graph: GraphTarget | None, buffer: BufferTarget, timeout_s: float = 60.0):
        self.graph, self.buffer_target, self.timeout_s = graph, buffer, timeout_s

    def setup(self):
        self.writer = ResilientWriter(self.graph, timeout_s=self.timeout_s) if self.graph else None
        self.buffer = self.buffer_target.connect()
        self.written, self.dead = counter("feed_written"), counter("feed_dead_lettered")
        self.items: list = []

    def start_bundle(self):
        self.items = []

    def process(self, item):
        self.items.append(item)

    def finish_bundle(self):
        items, self.items = self.items, []
        dead = [i for i in items if isinstance(i, dict)]
        work = [i for i in items if not isinstance(i, dict)]
        if work:
            error = self._write(work)
            if error is not None:  # find what the graph refuses, write the rest
                ok = []
                for item in work:
                    e = self._write([item])
                    if e is None:
                        ok.append(item)
                    else:
                        dead.append({"input": _entry_of(item), "stage": "graph", "reason": f"{type(e).__name__}: {e}"})
                work = ok
        for row in dead:
            self._dead_letter(row)
        self.written.inc(len(work))

    def _write(self, items) -> Exception | None:
        if self.writer is None:
            return None
        while True:
            try:
                self.writer.call(lambda w: _write_items(w, items))
                return None
            except Exception as exc:  # noqa: BLE001
                if broken_connection(exc) or isinstance(exc, ConnectionError):
                    continue  # the graph is away past one timeout: keep waiting, never drop a message for it
                return exc

    def _dead_letter(self, row: dict) -> None:
        entry = _s(row.get("input", "")).split("#", 1)[0]
        reason = row.get("reason") or f"{row.get('error', '')}: {row.get('message', '')}"
        raw, source = b"", ""
        try:
            found = self.buffer.call(lambda c: c.xrange(self.buffer_target.stream, entry, entry, count=1), wait_s=60)
            if found:
                raw, source = found[0][1].get(b"raw", b""), _s(found[0][1].get(b"source", b""))
        except Exception:  # noqa: BLE001 - a malformed id: the row still goes to the dead letters
            pass
        self.buffer.dead_letter(raw, row.get("stage", "?"), reason, source=source, entry=entry, wait_s=120)
        self.dead.inc()

    def teardown(self):
        if self.writer is not None:
            self.writer.close()
        self.buffer.close()


def _entry_of(item) -> str:
    return item.entry_id if isinstance(item, OpsDoc) else item.input


def _write_items(writer, items) -> None:
    from graph.feed_rows import write_ops

    ops = [op for i in items if isinstance(i, OpsDoc) for op in i.ops]
    if ops:
        write_ops(writer, ops)
    docs = [i for i in items if isinstance(i, GraphDoc)]
    if docs:
        writer.write_records([item for d in docs for item in d.items])


class FeedToGraph(beam.PTransform):
    """Impulse -> the endless read -> parse -> NER/assertions/relations -> graph; one fused stage."""

    def __init__(self, buffer: BufferTarget, graph: GraphTarget | None, cfg: StreamConfig):
        super().__init__()
        self.buffer, self.graph, self.cfg = buffer, graph, cfg

    def expand(self, pbegin):
        cfg = self.cfg
        entries = (pbegin | "Start" >> beam.Impulse()
                   | "Read feed" >> beam.ParDo(ReadFeed(self.buffer, cfg)))
        parsed = entries | "Parse" >> beam.ParDo(Parse()).with_outputs(DEAD, Parse.TEXTS, main="ops")
        tagged = (parsed[Parse.TEXTS]
                  | "NER" >> RunInference(KeyedModelHandler(NerHandler(cfg.ner_model, cfg.ner_batch)))
                  | "Assertions" >> beam.ParDo(Annotate()).with_outputs(DEAD, main="tagged"))
        if cfg.relations:
            related = tagged.tagged | "Relations" >> RunInference(
                KeyedModelHandler(RelationHandler(cfg.re_model, cfg.ner_batch)))
        else:
            related = tagged.tagged | "No relations" >> beam.Map(_without_relations)
        docs = related | "Graph documents" >> beam.ParDo(ToGraphDoc()).with_outputs(DEAD, main="docs")
        return ((parsed.ops, docs.docs, parsed[DEAD], tagged[DEAD], docs[DEAD]) | "All" >> beam.Flatten()
                | "Write" >> beam.ParDo(FeedGraphSink(self.graph, self.buffer, cfg.graph_timeout_s)))


def streaming_options(beam_args=()):
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args += ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    if not any(a.startswith("--default_sdk_harness_log_level") for a in args):
        args.append("--default_sdk_harness_log_level=WARNING")
    return PipelineOptions(args, streaming=True)


def run(buffer: BufferTarget, graph: GraphTarget | None, cfg: StreamConfig, beam_args=()) -> dict:
    """Run one pipeline process until interrupted (or ``cfg.idle_stop_s`` without entries)."""
    from graph.feed_rows import init_feed_schema
    from pipelines.ingest import _counters, _init_schema

    if graph is not None:
        _init_schema(graph)
        w = ResilientWriter(graph, timeout_s=120)
        try:
            w.call(lambda writer: init_feed_schema(writer.driver, writer.database))
        finally:
            w.close()
    buffer.connect().ensure_group(wait_s=60)
    t0 = time.monotonic()
    p = beam.Pipeline(options=streaming_options(beam_args))
    _ = p | FeedToGraph(buffer, graph, cfg)
    result = p.run()
    result.wait_until_finish()
    return {"counters": _counters(result), "run_s": round(time.monotonic() - t0, 2)}

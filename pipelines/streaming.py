"""`medkg feeds run`: the long-running Beam pipeline from the feed stream to the graph.

::

    ReadFeed (unbounded splittable DoFn: XAUTOCLAIM stale pending entries, else XREADGROUP BLOCK)
      -> Parse (feeds.hl7v2 / feeds.fhir -> FeedMessage: graph ops + clinical texts)
      -> ApplyToGraph, per bundle: texts -> NER -> assertions -> relations -> GraphDoc (the batch pipeline's
         model handlers and DoFns, pipelines.records), then ops + documents -> the graph in one write; what
         cannot be processed -> the dead-letter stream
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
On a cluster the same pipeline runs on Flink with the Beam job-server jar from an internal mirror
(``--runner FlinkRunner --flink-master ... --flink-job-server-jar PATH``, or PortableRunner and a running job
server; docs/feeds.md, "Cluster deployment"), the buffer being the production Redis/Valkey (``REDIS_URL``) and
the graph Neo4j (``NEO4J_URI``); :func:`check_deployment` refuses what cannot work (a Kafka buffer: not built).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass

import apache_beam as beam
from neo4j.exceptions import Neo4jError

import pipelines.lean  # noqa: F401 - before RunInference (see its docstring)

# isort: split
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.core import RestrictionProvider

from feeds.buffer import BufferTarget
from pipelines.graphio import GraphTarget, ResilientWriter, broken_connection
from pipelines.records import Annotate, NerHandler, RelationHandler, ToGraphDoc, _without_relations
from pipelines.transforms import GraphDoc, counter

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
    threads: int | None = None  # inference threads (NER and relations); default MEDKG_THREADS / one per core
    profile: str | None = None  # append one JSON line of stage timings per bundle to this file (MEDKG_FEEDS_PROFILE)

    @classmethod
    def from_settings(cls, **kw) -> StreamConfig:
        from core.settings import get_settings

        s = get_settings()
        base = {"count": s.feeds_read_count, "block_ms": s.feeds_block_ms, "claim_idle_ms": s.feeds_claim_idle_ms,
                "max_deliveries": s.feeds_max_deliveries, "threads": s.inference_threads(),
                "profile": os.environ.get("MEDKG_FEEDS_PROFILE") or None}
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


_RESTRICTION = beam.DoFn.RestrictionParam(_Forever())  # the finaliser parameter must come before it (Beam)


class _Clock:
    """Seconds per stage of the bundle in progress, for ``StreamConfig.profile``. One per process: the source
    and everything after it run in one fused stage, one bundle at a time."""

    def __init__(self):
        self.stages: dict[str, float] = {}
        self.read_at: float | None = None  # when the bundle's entries came back from the stream
        self.last_end: float | None = None  # when the previous bundle was written

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - t0

    def take(self) -> dict:
        now = time.perf_counter()
        row = {f"{k}_ms": round(v * 1000, 1) for k, v in self.stages.items()}
        if self.read_at is not None:
            row["bundle_ms"] = round((now - self.read_at) * 1000, 1)
            if self.last_end is not None:  # the runner between bundles, the XACK and the next read
                row["between_ms"] = round((self.read_at - self.last_end) * 1000, 1)
        self.stages, self.read_at, self.last_end = {}, None, now
        return row


_CLOCK = _Clock()


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
                tracker=_RESTRICTION):
        pos = tracker.current_restriction().start
        try:
            entries = self.buffer.read(self.consumer, self.cfg.count, self.cfg.block_ms, self.cfg.claim_idle_ms)
        except Exception:  # noqa: BLE001 - the buffer is away (restarting): wait, then read again
            time.sleep(0.5)
            entries = []
        if entries:
            _CLOCK.read_at = time.perf_counter()
        ids, split = [], False
        for entry_id, fields, deliveries in entries:
            if not tracker.try_claim(pos):  # the runner took the rest of the restriction: stop here
                split = True
                break
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
        if split:
            pass
        elif not ids and self.cfg.idle_stop_s is not None and time.monotonic() - self.last_entry > self.cfg.idle_stop_s:
            # tests and benchmarks: the stream stayed empty long enough; claiming to the end finishes the restriction
            tracker.try_claim(tracker.current_restriction().stop - 1)
        else:
            tracker.defer_remainder()

    def _dead(self, entry_id: str, fields: dict, stage: str, reason: str) -> None:
        self.buffer.dead_letter(fields.get("raw", b""), stage, reason, source=_s(fields.get("source", b"")),
                                entry=entry_id, wait_s=60)

    def _ack(self, ids) -> None:
        with contextlib.suppress(Exception):  # unacknowledged entries are reclaimed and rewritten (idempotent)
            self.buffer.ack(ids, wait_s=5)
            self.acked.inc(len(ids))

    def teardown(self):
        self.buffer.close()


@dataclass(frozen=True)
class OpsDoc:
    """A message's structured part for the graph (graph.feed_rows ops)."""

    entry_id: str
    ops: tuple


@dataclass(frozen=True)
class Parsed:
    """One entry after parsing: its graph ops and clinical texts, or why it could not be parsed."""

    entry_id: str
    ops: tuple = ()
    records: tuple = ()  # ClinicalRecord
    dead: dict | None = None


class Parse(beam.DoFn):
    """Entry -> :class:`Parsed` (graph ops, clinical texts), or a dead letter when it does not parse."""

    def setup(self):
        self.parsed = counter("feed_parsed")

    def process(self, entry: Entry):
        with _CLOCK("parse"):
            parsed = self._parse(entry)
        yield parsed

    def _parse(self, entry: Entry) -> Parsed:
        from feeds.hl7v2 import FeedError

        fields = entry.fields
        source = _s(fields.get("source", b"mllp"))
        try:
            if source == "fhir":
                from feeds.fhir import parse_entry

                msg = parse_entry(fields["raw"], _s(fields.get("received_at", b"")))
            else:
                from feeds.hl7v2 import parse

                msg = parse(fields["raw"], _s(fields.get("encoding", b"utf-8")))
        except FeedError as exc:
            return Parsed(entry.entry_id, dead={"input": entry.entry_id, "stage": "parse", "reason": exc.reason})
        except Exception as exc:  # noqa: BLE001
            return Parsed(entry.entry_id, dead={"input": entry.entry_id, "stage": "parse",
                                                "reason": f"{type(exc).__name__}: {exc}"})
        self.parsed.inc()
        return Parsed(entry.entry_id, msg.ops, msg.documents)


class _KeepPending:
    """While a bundle is in progress, a thread resets its entries' idle time (``Buffer.keep``) every third of
    ``claim_idle_ms``: a bundle that takes longer than that (a slow, loaded machine; a graph server that is
    away) is then not reclaimed as stale and processed a second time by another consumer meanwhile. A process
    that dies stops keeping them, and they are reclaimed after ``claim_idle_ms`` as before."""

    def __init__(self, target: BufferTarget, consumer: str, claim_idle_ms: int):
        self.target, self.consumer, self.period = target, consumer, max(0.05, claim_idle_ms / 3000)
        self.ids: tuple = ()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.kept = 0

    def __call__(self, ids) -> _KeepPending:
        self.ids = tuple(ids)
        return self

    def __enter__(self):
        if self.ids:
            self.stop.clear()
            self.thread = threading.Thread(target=self._run, args=(self.ids,), daemon=True, name="keep-pending")
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def _run(self, ids) -> None:
        buffer = None
        try:
            while not self.stop.wait(self.period):
                with contextlib.suppress(Exception):  # the buffer is away: the entries stay pending anyway
                    buffer = buffer or self.target.connect(timeout=5)
                    buffer.keep(self.consumer, ids)
                    self.kept += 1
        finally:
            if buffer is not None:
                buffer.close()


class ApplyToGraph(beam.DoFn):
    """A bundle's parsed entries -> NER -> assertions -> relations -> the graph, at the bundle's end; dead
    letters -> the dead-letter stream (with the raw input read back from the stream).

    The text stages are the batch pipeline's own (pipelines.records): the RunInference model handlers
    (``NerHandler``/``RelationHandler``: ``load_model`` once per process, ``run_inference`` per batch, a
    failing batch re-run record by record) and the ``Annotate``/``ToGraphDoc`` DoFns, called here on the
    whole bundle. Not as separate transforms: on FnApiRunner, RunInference and the Flatten of several outputs
    put the sink into another stage than the unbounded source, whose bundle finaliser (the XACK) then ran
    before the graph write (measured here: entries acknowledged 12 s before they reached the graph). One
    linear chain keeps source, stages and sink in one fused stage, so the finaliser follows the write.

    A write the graph refuses is retried item by item and the refused item dead-lettered; a graph server
    that is away is waited for (never a dead letter)."""

    def __init__(self, graph: GraphTarget | None, buffer: BufferTarget, cfg: StreamConfig):
        self.graph, self.buffer_target, self.cfg = graph, buffer, cfg

    def setup(self):
        self.writer = ResilientWriter(self.graph, timeout_s=self.cfg.graph_timeout_s) if self.graph else None
        self.buffer = self.buffer_target.connect()
        self.ner = NerHandler(self.cfg.ner_model, self.cfg.ner_batch)
        self.ner_model = self.ner.load_model()
        self.rel = self.rel_model = None
        if self.cfg.relations:
            self.rel = RelationHandler(self.cfg.re_model, self.cfg.ner_batch)
            self.rel_model = self.rel.load_model()
        if self.cfg.threads:
            # the relation model runs in torch, whose pool is one thread per core unless told otherwise (the NER
            # model's OpenVINO takes the configured count): 2 processes on 2 cores with 2 torch threads each ran
            # the relation model 2.5-3.5x slower per text than with 1 (benchmarks/feeds_profile.py, docs/feeds.md)
            import torch

            torch.set_num_threads(self.cfg.threads)
        self.profile = open(self.cfg.profile, "a", encoding="utf-8") if self.cfg.profile else None  # noqa: SIM115
        self.keep = _KeepPending(self.buffer_target, self.cfg.consumer or f"{socket.gethostname()}-{os.getpid()}",
                                 self.cfg.claim_idle_ms)
        self.annotate, self.to_doc = Annotate(), ToGraphDoc()
        self.to_doc.setup()
        self.written, self.dead = counter("feed_written"), counter("feed_dead_lettered")
        self.items: list[Parsed] = []

    def start_bundle(self):
        self.items = []

    def process(self, item: Parsed):
        self.items.append(item)

    def finish_bundle(self):
        items, self.items = self.items, []
        with self.keep(i.entry_id for i in items):
            self._finish(items)

    def _finish(self, items: list[Parsed]) -> None:
        dead = [i.dead for i in items if i.dead is not None]
        work: list = [OpsDoc(i.entry_id, i.ops) for i in items if i.dead is None and i.ops]
        texts = [(f"{i.entry_id}#{n}", r) for i in items if i.dead is None for n, r in enumerate(i.records)]
        for out in self._text_stages(texts):
            (dead if isinstance(out, dict) else work).append(out)
        with _CLOCK("write"):
            work = self._write_all(work, dead)
        with _CLOCK("dead_letter"):
            for row in dead:
                self._dead_letter(row)
        self.written.inc(len(work))
        timings = _CLOCK.take()
        if self.profile is not None and items:
            self.profile.write(json.dumps({"entries": len(items), "texts": len(texts),
                                           "chars": sum(len(r.text) for _, r in texts), "dead": len(dead),
                                           **timings}) + "\n")
            self.profile.flush()

    def _write_all(self, work: list, dead: list) -> list:
        """The bundle's graph write; what the graph refuses is found item by item and dead-lettered."""
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
        return work

    def _text_stages(self, texts):
        """(ref, ClinicalRecord) -> GraphDoc or dead-letter rows, through the batch pipeline's stages."""

        def unwrap(outputs):
            for o in outputs:
                yield o.value if isinstance(o, TaggedOutput) else o

        step = max(1, self.cfg.ner_batch)
        tagged = []
        for i in range(0, len(texts), step):
            chunk = texts[i:i + step]
            with _CLOCK("ner"):
                results = self.ner.run_inference([r for _, r in chunk], self.ner_model)
            with _CLOCK("assertions"):
                for (ref, _), res in zip(chunk, results):
                    tagged.extend(unwrap(self.annotate.process((ref, res))))
        dead = [t for t in tagged if isinstance(t, dict)]
        tagged = [t for t in tagged if not isinstance(t, dict)]
        related = []
        for i in range(0, len(tagged), step):
            chunk = tagged[i:i + step]
            if self.rel is not None:
                with _CLOCK("relations"):
                    results = self.rel.run_inference([x for _, x in chunk], self.rel_model)
                related.extend((ref, res) for (ref, _), res in zip(chunk, results))
            else:
                related.extend(_without_relations(t) for t in chunk)
        out = list(dead)
        with _CLOCK("graph_doc"):
            for keyed in related:
                out.extend(unwrap(self.to_doc.process(keyed)))
        return out

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
        with contextlib.suppress(Exception):  # a malformed id: the row still goes to the dead letters
            found = self.buffer.call(lambda c: c.xrange(self.buffer_target.stream, entry, entry, count=1), wait_s=60)
            if found:
                raw, source = found[0][1].get(b"raw", b""), _s(found[0][1].get(b"source", b""))
        self.buffer.dead_letter(raw, row.get("stage", "?"), reason, source=source, entry=entry, wait_s=120)
        self.dead.inc()

    def teardown(self):
        if self.writer is not None:
            self.writer.close()
        if self.profile is not None:
            self.profile.close()
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
    """Impulse -> the endless read -> parse -> NER/assertions/relations + graph write; one fused stage."""

    def __init__(self, buffer: BufferTarget, graph: GraphTarget | None, cfg: StreamConfig):
        super().__init__()
        self.buffer, self.graph, self.cfg = buffer, graph, cfg

    def expand(self, pbegin):
        return (pbegin
                | "Start" >> beam.Impulse()
                | "Read feed" >> beam.ParDo(ReadFeed(self.buffer, self.cfg))
                | "Parse" >> beam.ParDo(Parse())
                | "Apply to graph" >> beam.ParDo(ApplyToGraph(self.graph, self.buffer, self.cfg)))


def streaming_options(beam_args=()):
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args += ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    if not any(a.startswith("--default_sdk_harness_log_level") for a in args):
        args.append("--default_sdk_harness_log_level=WARNING")
    return PipelineOptions(args, streaming=True)


# --- cluster deployment -------------------------------------------------------------------------------------
BUFFERS = ("redis", "kafka")
LOCAL_RUNNERS = frozenset({"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"})
KAFKA_NOT_BUILT = (
    "Kafka as the feed buffer is not built: the gateway appends to, and the pipeline reads from, a Redis-protocol "
    "stream (XADD with appendfsync always before the ACK; a consumer group read with XREADGROUP, stale entries "
    "reclaimed with XAUTOCLAIM, XACK in the bundle finaliser after the graph write; feeds/buffer.py). A Kafka "
    "buffer needs the same contract: a producer with acks=all before the ACK, a consumer group whose offsets are "
    "committed only after the graph write, and a dead-letter topic (docs/feeds.md, 'Cluster deployment'). "
    "Use REDIS_URL (a Redis or Valkey server with appendonly yes, appendfsync always)")


class DeploymentError(ValueError):
    """A deployment that cannot work, refused before anything starts; ``str()`` says why and what to do."""


def deployment_args(runner: str | None = None, flink_master: str | None = None,
                    flink_job_server_jar: str | None = None, job_endpoint: str | None = None,
                    environment_type: str | None = None, environment_config: str | None = None) -> list[str]:
    """``medkg feeds run``'s cluster options as Beam arguments (None: left to Beam or the other arguments)."""
    given = {"runner": runner, "flink_master": flink_master, "flink_job_server_jar": flink_job_server_jar,
             "job_endpoint": job_endpoint, "environment_type": environment_type,
             "environment_config": environment_config}
    return [f"--{k}={v}" for k, v in given.items() if v]


def check_deployment(options, *, buffer: str = "redis", remote_buffer: bool, remote_graph: bool,
                     processes: int = 1) -> None:
    """Refuse (:class:`DeploymentError`) what cannot work, before any server or job starts:

    - ``buffer="kafka"``: not built (:data:`KAFKA_NOT_BUILT`);
    - ``FlinkRunner`` without ``--flink_job_server_jar`` (Beam would download the job-server jar from Maven
      Central, which an on-prem network cannot reach: give the jar from the internal mirror), or with a jar that
      is not a file here; ``PortableRunner`` without ``--job_endpoint``;
    - a remote runner whose SDK workers run elsewhere (``--environment_type`` other than ``LOOPBACK``) with the
      embedded buffer or graph server, which listen on 127.0.0.1 only: set ``REDIS_URL`` and ``NEO4J_URI``;
    - ``--processes`` > 1 with a remote runner: the cluster runs the workers; the supervisor is the local
      runner's way to use several cores.
    """
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, PortableOptions, StandardOptions

    if buffer == "kafka":
        raise DeploymentError(KAFKA_NOT_BUILT)
    if buffer not in BUFFERS:
        raise DeploymentError(f"unknown feed buffer {buffer!r} (expected one of {', '.join(BUFFERS)})")
    runner = options.view_as(StandardOptions).runner or "FnApiRunner"
    runner = runner.rsplit(".", 1)[-1]
    if runner in LOCAL_RUNNERS:
        return
    if processes > 1:
        raise DeploymentError(f"--processes {processes} runs local pipeline processes; on {runner} the cluster "
                              "runs the workers: start one `medkg feeds run` per job (--processes 1)")
    if runner == "FlinkRunner":
        jar = options.view_as(FlinkRunnerOptions).flink_job_server_jar
        if not jar:
            raise DeploymentError("FlinkRunner needs --flink-job-server-jar PATH (Beam's "
                                  "beam-runners-flink-<version>-job-server jar from your internal Maven mirror); "
                                  "without it Beam would download the jar from Maven Central")
        if "://" not in jar and not os.path.isfile(jar):
            raise DeploymentError(f"--flink-job-server-jar {jar}: no such file")
    elif runner == "PortableRunner" and not options.view_as(PortableOptions).job_endpoint:
        raise DeploymentError("PortableRunner needs --job-endpoint HOST:PORT (a running Beam job server)")
    env = (options.view_as(PortableOptions).environment_type or "DOCKER").upper()
    if env != "LOOPBACK":
        missing = [name for name, remote in (("REDIS_URL", remote_buffer), ("NEO4J_URI", remote_graph)) if not remote]
        if missing:
            raise DeploymentError(
                f"{runner} runs the pipeline's workers outside this process (--environment-type {env}); they cannot "
                f"reach the embedded {' and '.join('buffer' if m == 'REDIS_URL' else 'graph server' for m in missing)} "
                f"on 127.0.0.1: set {' and '.join(missing)} (or --environment-type LOOPBACK to try a local job server)")


def run(buffer: BufferTarget, graph: GraphTarget | None, cfg: StreamConfig, beam_args=()) -> dict:
    """Run one pipeline process until interrupted (or ``cfg.idle_stop_s`` without entries)."""
    from graph.feed_rows import init_feed_schema
    from pipelines.ingest import _counters, _init_schema

    options = streaming_options(beam_args)
    check_deployment(options, remote_buffer=bool(buffer.url), remote_graph=graph is None or bool(graph.uri))

    if graph is not None:
        # several pipeline processes start at once: their schema statements race (ArcadeDB answers one of them
        # with a ConstraintError); the statements are idempotent, so a few more tries settle it
        for attempt in range(10):
            try:
                _init_schema(graph)
                w = ResilientWriter(graph, timeout_s=120)
                try:
                    w.call(lambda writer: init_feed_schema(writer.driver, writer.database))
                finally:
                    w.close()
                break
            except Neo4jError:
                if attempt == 9:
                    raise
                time.sleep(0.5 + random.random())
    buffer.connect().ensure_group(wait_s=60)
    t0 = time.monotonic()
    p = beam.Pipeline(options=options)
    _ = p | FeedToGraph(buffer, graph, cfg)
    result = p.run()
    result.wait_until_finish()
    return {"counters": _counters(result), "run_s": round(time.monotonic() - t0, 2)}

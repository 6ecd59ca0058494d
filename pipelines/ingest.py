"""Build, run and account for an ingest pipeline: files → (bills | records branch) → graph + audit + dead letters.

The driver expands the paths, makes sure the schema exists, counts the graph before and after, runs the Beam
pipeline and reads its counters back into a summary (also written to ``summary.json`` in the output folder).

Runner: every Beam option passes through. Without ``--runner`` the pipeline runs on ``FnApiRunner`` with one
worker process per core (``--direct_running_mode=multi_processing --direct_num_workers=<cores>``; Beam's default
DirectRunner would try to download Prism). Local worker processes get their inference threads through
``MEDKG_THREADS`` unless it is set (:func:`worker_threads`). Flink, Spark and Dataflow run the same pipeline
through their runners (README, "Ingest pipelines"); their workers must reach the graph through ``NEO4J_URI``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from pipelines.graphio import GraphTarget, graph_counts, read_queries
from pipelines.sources import BILL_SUFFIXES, RECORD_SUFFIXES, expand
from pipelines.transforms import NAMESPACE, CountDeadLetters, Progress, WriteJsonLines

KINDS = ("bills", "records", "all")
LOCAL_RUNNERS = frozenset({"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"})
AUDIT, DEAD_LETTER, SUMMARY, PROGRESS = "audit.jsonl", "dead_letter.jsonl", "summary.json", "progress.log"

# What the main job prints to look at the result (and runs for its first rows).
SHOW = {
    "bills": ("MATCH (c:Claim)-[:HAS_ITEM]->(i:LineItem) RETURN c.claim_id AS claim, c.doc_type AS type, "
              "c.total AS total, i.line_no AS line, i.name AS item, i.amount AS amount ORDER BY claim, line LIMIT 15"),
    "records": ("MATCH (d:Document)-[m:MENTIONS]->(c:Concept) OPTIONAL MATCH (e:Encounter)-[:HAS_DOCUMENT]->(d) "
                "RETURN e.eid AS encounter, m.text AS mention, [l IN labels(c) WHERE l <> 'Concept'][0] AS type, "
                "m.assertion AS assertion ORDER BY encounter, d.doc_id, m.start LIMIT 15"),
    "relations": ("MATCH (a:Concept)-[r]->(b:Concept) RETURN a.key AS subject, type(r) AS predicate, r.label AS label, "
                  "b.key AS object, r.evidence AS evidence ORDER BY evidence DESC, subject, object LIMIT 15"),
}


def default_out_dir() -> str:
    return os.path.join("medkg-out", datetime.now().strftime("%Y%m%d-%H%M%S"))


@dataclass
class IngestConfig:
    kind: str  # bills | records | all
    paths: Sequence[str]
    out: str = field(default_factory=default_out_dir)
    beam_args: Sequence[str] = ()
    catalogue: str | None = None  # bills: match line items against this CSV/XLSX catalogue
    register: str | None = None  # bills: the hospital register (default: MEDKG_HOSPITAL_REGISTER)
    ner_model: str | None = None  # records: a model directory instead of the shipped one
    ner_batch: int = 32
    relations: bool = True  # records: triples (learned) and attribute links (rules) as well as entities
    re_model: str | None = None  # records: a relation model directory instead of the shipped one
    graph_batch: int = 64  # documents per graph write
    graph_timeout_s: float = 300.0  # how long a write waits for an absent graph server
    graph_dir: str | None = None  # the embedded server's data directory (default: MEDKG_GRAPH_DIR)
    dry_run: bool = False  # every stage but the graph write (audit and dead letters as usual)
    progress: bool = True  # local runners: append progress ticks to <out>/progress.log
    keep_claims: bool = False  # bills: each audit row also carries its claims in full (the API's jobs read them)


def _given(args: Sequence[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in args)


def pipeline_options(beam_args: Sequence[str] = ()) -> PipelineOptions:
    """Beam options with medkg's local defaults filled in only where the caller did not choose."""
    args = list(beam_args)
    if not _given(args, "runner"):
        args.append("--runner=FnApiRunner")
    if not _given(args, "default_sdk_harness_log_level"):
        args.append("--default_sdk_harness_log_level=WARNING")
    opts = PipelineOptions(args)
    if opts.view_as(StandardOptions).runner in LOCAL_RUNNERS:
        direct = opts.view_as(DirectOptions)
        if not _given(args, "direct_running_mode"):
            direct.direct_running_mode = "multi_processing"
        if not _given(args, "direct_num_workers") and direct.direct_running_mode != "in_memory":
            direct.direct_num_workers = len(os.sched_getaffinity(0))
    return opts


def is_local(opts: PipelineOptions) -> bool:
    return opts.view_as(StandardOptions).runner in LOCAL_RUNNERS


def worker_threads(cores: int, workers: int) -> int:
    """Inference threads per local worker: twice its share of the cores (at most all of them). A worker spends
    part of its time waiting on the graph server or in single-threaded Python; the spare threads let the other
    workers' inference fill those gaps. Measured on 2 cores, 2 workers: NER 18.3 docs/s with 2 threads each
    against 17.4 with 1 (one process with 2 threads: 19-20); OCR the same either way."""
    return max(1, min(cores, 2 * cores // max(1, workers)))


@contextlib.contextmanager
def _worker_threads(opts: PipelineOptions):
    """Local worker processes inherit this environment (``MEDKG_THREADS``, unless the caller set it)."""
    direct = opts.view_as(DirectOptions)
    cores = len(os.sched_getaffinity(0))
    if not is_local(opts) or direct.direct_running_mode == "in_memory" or "MEDKG_THREADS" in os.environ:
        yield
        return
    os.environ["MEDKG_THREADS"] = str(worker_threads(cores, direct.direct_num_workers or cores))
    try:
        yield
    finally:
        del os.environ["MEDKG_THREADS"]


def split_inputs(kind: str, paths: Sequence[str]) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """Files per branch, and files skipped inside folders. ``all`` sorts by suffix: images/PDFs are bills,
    everything else named is a record file."""
    if kind == "bills":
        found = expand(paths, BILL_SUFFIXES)
        return {"bills": found.files}, found.skipped
    if kind == "records":
        found = expand(paths, RECORD_SUFFIXES)
        return {"records": found.files}, found.skipped
    found = expand(paths, BILL_SUFFIXES | RECORD_SUFFIXES)
    bills = tuple(f for f in found.files if Path(f).suffix.lower() in BILL_SUFFIXES)
    return {"bills": bills, "records": tuple(f for f in found.files if f not in set(bills))}, found.skipped


def build(p: beam.Pipeline, files: dict[str, Sequence[str]], cfg: IngestConfig, target: GraphTarget | None,
          progress: Progress) -> None:
    """files → each branch → one audit file and one dead-letter file."""
    from pipelines.bills import IngestBills
    from pipelines.records import IngestRecords

    # `all` with files of one kind only builds that branch (no model loaded for nothing)
    files = {k: v for k, v in files.items() if v} or dict(list(files.items())[:1])
    outputs = []
    if "bills" in files:
        outputs.append(p | "Bill files" >> beam.Create(files["bills"])
                       | "Bills" >> IngestBills(target, catalogue=cfg.catalogue, graph_batch=cfg.graph_batch,
                                                graph_timeout_s=cfg.graph_timeout_s, progress=progress,
                                                keep_claims=cfg.keep_claims, register=cfg.register))
    if "records" in files:
        # reading is cheap and IngestRecords reshuffles the records themselves: no need to spread the files first
        outputs.append(p | "Record files" >> beam.Create(files["records"], reshuffle=False)
                       | "Records" >> IngestRecords(target, model_dir=cfg.ner_model, ner_batch=cfg.ner_batch,
                                                    relations=cfg.relations, re_model=cfg.re_model,
                                                    graph_batch=cfg.graph_batch, graph_timeout_s=cfg.graph_timeout_s,
                                                    progress=progress))
    written = [o.written for o in outputs] | "All written" >> beam.Flatten()
    dead = [o.dead for o in outputs] | "All dead letters" >> beam.Flatten()
    written | "Audit" >> WriteJsonLines(FileSystems.join(cfg.out, AUDIT))
    (dead | "Count dead letters" >> CountDeadLetters(progress)
     | "Dead letters" >> WriteJsonLines(FileSystems.join(cfg.out, DEAD_LETTER)))


def run(cfg: IngestConfig, on_start=None) -> dict:
    """Run one ingest; returns the summary. ``on_start(files, progress_path)`` is called once the inputs are
    known and before the pipeline starts (the CLI starts its progress bar there)."""
    if cfg.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {cfg.kind!r}")
    t0 = time.monotonic()
    files, skipped = split_inputs(cfg.kind, cfg.paths)
    opts = pipeline_options(cfg.beam_args)
    if not FileSystems.exists(cfg.out):
        FileSystems.mkdirs(cfg.out)
    local_out = "://" not in cfg.out
    progress = Progress(os.path.join(cfg.out, PROGRESS) if cfg.progress and is_local(opts) and local_out else None)
    if not (cfg.dry_run or is_local(opts) or os.environ.get("NEO4J_URI") or _loopback(opts)):
        raise ValueError("workers of a remote runner cannot reach the embedded graph server on 127.0.0.1: set "
                         "NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD in the workers' environment), or run the SDK "
                         "workers in this process with --environment_type=LOOPBACK")
    target = None if cfg.dry_run else GraphTarget.from_env(cfg.graph_dir)
    if target is not None:
        _init_schema(target)
    before = graph_counts(target) if target is not None else {"nodes": 0, "relationships": 0}
    if on_start:
        on_start(files, progress.path)
    p = beam.Pipeline(options=opts)
    build(p, files, cfg, target, progress)
    t1 = time.monotonic()
    with _worker_threads(opts):
        result = p.run()
        result.wait_until_finish()
    pipeline_s = time.monotonic() - t1
    after = graph_counts(target) if target is not None else before
    counters = _counters(result)
    summary = {
        "kind": cfg.kind, "files": {k: len(v) for k, v in files.items()}, "skipped_files": list(skipped),
        "inputs": counters.get("inputs", 0), "processed": counters.get("processed", 0),
        "dead_lettered": counters.get("dead_lettered", 0),
        "dead_lettered_by_stage": {k.split(".", 1)[1]: v for k, v in sorted(counters.items())
                                   if k.startswith("dead_lettered.")},
        "counters": {k: v for k, v in sorted(counters.items()) if not k.startswith("dead_lettered")},
        "graph": {"target": target.describe() if target is not None else "none (dry run)", "before": before,
                  "after": after,
                  "delta": {k: after[k] - before[k] for k in after}},
        "runner": {"runner": opts.view_as(StandardOptions).runner,
                   **({"mode": opts.view_as(DirectOptions).direct_running_mode,
                       "workers": opts.view_as(DirectOptions).direct_num_workers} if is_local(opts) else {})},
        "pipeline_s": round(pipeline_s, 2), "total_s": round(time.monotonic() - t0, 2),
        "outputs": {"audit": FileSystems.join(cfg.out, AUDIT), "dead_letter": FileSystems.join(cfg.out, DEAD_LETTER),
                    "summary": FileSystems.join(cfg.out, SUMMARY)},
        "show": {k: q for k, q in SHOW.items() if k in files or (k == "relations" and "records" in files
                                                                   and cfg.relations)} if target is not None else {},
    }
    summary["balanced"] = summary["inputs"] == summary["processed"] + summary["dead_lettered"]
    with FileSystems.create(summary["outputs"]["summary"]) as f:
        f.write(json.dumps(summary, ensure_ascii=False, indent=2).encode("utf-8"))
    return summary


def _loopback(opts: PipelineOptions) -> bool:
    from apache_beam.options.pipeline_options import PortableOptions

    return (opts.view_as(PortableOptions).environment_type or "").upper() == "LOOPBACK"


def _init_schema(target: GraphTarget) -> None:
    from graph.schema import init_schema
    from pipelines.graphio import ResilientWriter

    w = ResilientWriter(target, timeout_s=60)
    try:
        w.call(lambda writer: init_schema(writer.driver, writer.database))
    finally:
        w.close()


def _counters(result) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + (value or 0)
    return out


def show(query: str, graph_dir: str | None = None) -> list[dict]:
    """The rows of one of the ``SHOW`` queries (they end in LIMIT)."""
    return read_queries(GraphTarget.from_env(graph_dir), [query])[0]

"""Beam pipeline throughput against its stage alone. Prints one JSON object.

- records: ``ingest records`` on FnApiRunner with ``--workers`` worker processes, into a fresh embedded graph
  (NER + assertions + graph writes + audit/dead-letter files), against ``Tagger`` alone on the same documents in
  this one process (every core, batches of 32 texts as the pipeline's model handler uses);
- bills: ``ingest bills`` the same way, against OCR + structuring alone (``OcrEngine.read`` + ``structure_page``
  on the same files) in this process.

Each pipeline run writes into a fresh graph whose server was first warmed up on other patients' records (a
graph server runs for days; ``--cold-server`` measures a freshly started JVM instead).
Pipeline time is the whole ``Pipeline.run()``: worker start, model loading in every worker, every stage,
graph writes, output files. The stage's time excludes its model loading (reported apart), so ``ratio`` is the
strict one (``ratio_stage_with_load`` counts the stage's model loading too). ``pipeline_dry_run`` is the same
pipeline without the graph write (``--dry-run``): what Beam itself costs. CPU seconds are reported per role
(Beam workers, the graph server, the driver): on a 2-core machine the embedded graph server shares the cores. Documents: Yidu-S4K's 1,379 records (texts only; test set first, then training) and bills rendered
with seeds 7700+. Runs alternate (stage, pipeline, per kind, ``--repeats`` times; medians).

    .venv/bin/python benchmarks/pipeline.py [--records 1379] [--bills 30] [--workers 2] [--repeats 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, this folder would shadow the `ocr` package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import logging
import os
import platform
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
YIDU = ROOT.parent / "shared" / "data" / "ner" / "yidu_s4k"
YIDU_FILES = ("subtask1_test_set_with_answer.json", "subtask1_training_part1.txt", "subtask1_training_part2.txt")
BILL_SEEDS = range(7700, 7800)
NER_BATCH = 32


def record_texts(n: int) -> tuple[list[str], str]:
    """Real clinical texts: Yidu-S4K's records (test set first, then training; texts only, answers unused)."""
    if (YIDU / YIDU_FILES[0]).exists():
        texts = [json.loads(line)["originalText"] for f in YIDU_FILES
                 for line in (YIDU / f).read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        return texts[:n], f"Yidu-S4K records (texts only), first {min(n, len(texts))} of {len(texts)}"
    texts = [json.loads(line)["text"] for line in (ROOT / "samples" / "records.jsonl").read_text("utf-8").splitlines()]
    return (texts * (n // len(texts) + 1))[:n], "samples/records.jsonl, repeated"


class CpuMeter:
    """CPU seconds used meanwhile by this process, its descendants (the Beam workers) and ``others`` (the graph
    server), sampled every 0.2 s so that workers which have exited are still counted."""

    def __init__(self, others=()):
        import psutil

        self.me = psutil.Process()
        self.others = [psutil.Process(pid) for pid in others]
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}

    def _sample(self) -> None:
        import psutil

        for p in [self.me, *self.others, *self.me.children(recursive=True)]:
            try:
                t = p.cpu_times()
                role = ("driver" if p.pid == self.me.pid else "graph_server" if p in self.others else "workers")
                self.first.setdefault(p.pid, t.user + t.system if role != "workers" else 0.0)
                self.last[p.pid] = (role, t.user + t.system)
            except psutil.Error:
                pass

    def __enter__(self):
        import threading

        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, (role, cpu) in self.last.items():
            out[role] = out.get(role, 0.0) + cpu - self.first.get(pid, 0.0)
        return {k: round(v, 1) for k, v in sorted(out.items())}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def stage_records(texts: list[str]) -> dict:
    from ner.tagger import Tagger

    t0 = time.perf_counter()
    tagger = Tagger.load()
    load_s = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), _cpu()
    entities = sum(len(found) for i in range(0, len(texts), NER_BATCH) for found in tagger(texts[i:i + NER_BATCH]))
    run_s = time.perf_counter() - t1
    return {"docs_per_s": len(texts) / run_s, "run_s": run_s, "load_s": load_s, "cpu_s": round(_cpu() - c1, 1),
            "entities": entities, "backend": tagger.name}


def stage_bills(files: list[Path]) -> dict:
    from claims.structure import structure_page
    from ocr.pipeline import OcrEngine
    from ocr.readers import open_document

    t0 = time.perf_counter()
    engine = OcrEngine.load()
    load_s = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), _cpu()
    pages = 0
    for f in files:
        src = open_document(f)
        for page in engine.read(src.pages(), src.document.doc_id):
            structure_page(page)
            pages += 1
    run_s = time.perf_counter() - t1
    return {"docs_per_s": len(files) / run_s, "run_s": run_s, "load_s": load_s, "cpu_s": round(_cpu() - c1, 1),
            "pages": pages}


def warm_up(server) -> None:
    """A long-running graph server has compiled its query paths; a fresh JVM spends its first ~20 CPU-s doing
    so. Writing synthetic records of other patients first measures the steady state (as the stage's model
    loading is left out of its time), without touching the documents the pipeline writes."""
    import neo4j

    from benchmarks.graph import Generator
    from graph.schema import init_schema
    from graph.writer import GraphWriter

    conn = server.connection()
    with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
        init_schema(driver, conn.database)
        gen = Generator(1)
        docs = [d for i in range(400) for d in gen.patient(i)]
        writer = GraphWriter(driver, conn.database)
        for k in range(0, len(docs), 25):  # the pipeline's batch sizes, so the same statements get compiled
            writer.write_records(docs[k:k + 25])


def pipeline(kind: str, paths: list[Path], workers: int, work: Path, dry_run: bool = False,
             warm: bool = True) -> dict:
    from graph.server import EmbeddedServer
    from pipelines.ingest import IngestConfig, run

    server = None
    if not dry_run:  # a fresh graph per run: a rerun into the same graph would skip every write
        server = EmbeddedServer(Path(tempfile.mkdtemp(dir=work, prefix="graph-")), heap="1g")
        server.up()
        if warm:
            warm_up(server)
    try:
        with CpuMeter([server.status()["pid"]] if server else []) as cpu:
            s = run(IngestConfig(kind, [str(p) for p in paths], out=tempfile.mkdtemp(dir=work, prefix="out-"),
                                 beam_args=[f"--direct_num_workers={workers}"], progress=False, dry_run=dry_run,
                                 relations=False,  # the stage measured alone is NER: compare like with like
                                 graph_dir=str(server.data_dir) if server else None))
    finally:
        if server:
            server.down()
    if not (s["balanced"] and s["dead_lettered"] == 0):
        raise RuntimeError(f"pipeline lost or dead-lettered documents: {s}")
    return {"docs_per_s": s["processed"] / s["pipeline_s"], "run_s": s["pipeline_s"], "total_s": s["total_s"],
            "cpu_s": cpu.result(), "graph_delta": s["graph"]["delta"],
            "counters": {k: v for k, v in s["counters"].items()
                         if k in ("entities", "pages", "graph_batches", "graph_retries")}}


def _median(runs: list[dict]) -> dict:
    best = sorted(runs, key=lambda r: r["docs_per_s"])[len(runs) // 2]
    out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in best.items()}
    if len(runs) > 1:
        out["docs_per_s_all"] = [round(r["docs_per_s"], 3) for r in runs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1379, help="documents for the records run (0: skip)")
    ap.add_argument("--bills", type=int, default=30, help="bills for the bills run (0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--cold-server", action="store_true", help="a fresh graph server JVM per run, not warmed up")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # Beam's progress logging; the JSON object is the output
    os.environ.pop("NEO4J_URI", None)  # always the embedded server: the figure must not depend on a remote one

    from core.hardware import probe
    from core.settings import get_settings

    work = Path(tempfile.mkdtemp(prefix="medkg-bench-pipeline-"))
    result: dict = {"benchmark": "pipeline", "machine": {"cpu": probe().cpu_model, "cores": len(os.sched_getaffinity(0)),
                                                        "python": platform.python_version(),
                                                        "loadavg_before": os.getloadavg()[0]},
                    "stage_threads": get_settings().inference_threads(), "workers": args.workers,
                    "graph_server": "cold: a fresh JVM per run" if args.cold_server else
                    "warm: a fresh graph per run, its server warmed up on other patients' records first"}
    kinds = {}
    if args.records:
        texts, source = record_texts(args.records)
        path = work / "records.jsonl"
        path.write_text("\n".join(json.dumps({"doc_id": f"bench-{i}", "text": t}, ensure_ascii=False)
                                  for i, t in enumerate(texts)), encoding="utf-8")
        kinds["records"] = (lambda: stage_records(texts), [path],
                            {"documents": len(texts), "chars": sum(map(len, texts)), "source": source,
                             "stage": "NER (ner.tagger.Tagger) alone"})
    if args.bills:
        from PIL import Image

        from ocr.synth import render_page

        bills = []
        for seed in BILL_SEEDS[:args.bills]:
            bills.append(work / f"bill-{seed}.jpg")
            Image.fromarray(render_page(seed).image).save(bills[-1], quality=90)
        kinds["bills"] = (lambda: stage_bills(bills), bills,
                          {"documents": len(bills), "source": f"rendered bills, seeds {BILL_SEEDS.start}+",
                           "stage": "OCR + structuring alone"})
    for kind, (stage, paths, meta) in kinds.items():
        runs = {"stage": [], "pipeline": [], "dry_run": []}
        for _ in range(args.repeats):
            runs["stage"].append(stage())
            runs["pipeline"].append(pipeline(kind, paths, args.workers, work, warm=not args.cold_server))
            runs["dry_run"].append(pipeline(kind, paths, args.workers, work, dry_run=True))
        st, pl, dry = _median(runs["stage"]), _median(runs["pipeline"]), _median(runs["dry_run"])
        n = meta["documents"]
        result[kind] = {**meta, "stage_alone": st, "pipeline": pl, "pipeline_dry_run": dry,
                        "ratio": round(pl["docs_per_s"] / st["docs_per_s"], 3),
                        "ratio_stage_with_load": round(pl["docs_per_s"] / (n / (st["run_s"] + st["load_s"])), 3),
                        "ratio_dry_run": round(dry["docs_per_s"] / st["docs_per_s"], 3)}
    result["machine"]["loadavg_after"] = os.getloadavg()[0]  # 1-minute load: another job on the machine shows here
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""HIS feeds: MLLP send -> graph write, against `ingest records` on the same texts. Prints one JSON object.

- throughput: a mix of ADT^A01, ORU^R01 and MDM^T02 (one of each per clinical text: the MDM carries the text)
  sent over MLLP to the gateway as fast as it acknowledges, with 1 and 2 pipeline processes (`medkg feeds run`,
  each warm: started and reading before the first message); time from the first send until every entry is
  written and acknowledged (nothing pending, nothing unread). Reported as messages/s and texts/s;
- batch: `ingest records` (FnApiRunner, one worker per core) on the same texts into a fresh graph: texts/s of the
  whole pipeline run; ``ratio`` = streaming texts/s with 2 processes / batch texts/s;
- latency: messages sent at a steady 10/s with 2 pipeline processes; per message, the time from its send until
  it is visible in the graph the EMR view reads (the encounter, lab result or document, polled every 50 ms):
  p50/p95/p99.

Each configuration gets a fresh Valkey and a fresh graph server. Texts: Yidu-S4K records (texts only) as in
benchmarks/pipeline.py. Relations on in both pipelines (the commands' default) unless ``--no-relations``.

    .venv/bin/python benchmarks/feeds.py [--texts 300] [--latency-s 60] [--no-relations]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time

ROOT = Path(__file__).resolve().parents[1]


def messages(texts: list[str], tag: str) -> list[tuple[str, str, str, bytes]]:
    """(kind, key in the graph, control id, message) per text: ADT, ORU, MDM."""
    from feeds.hl7v2 import _doc_id

    out = []
    for i, text in enumerate(texts):
        ts = f"202603{1 + i % 28:02d}{(i // 60) % 24:02d}{i % 60:02d}00"
        pid, vid = f"{tag}P{i}", f"{tag}V{i}"
        pv1 = "PV1|1|I|W1^01^1" + "|" * 16 + vid
        body = text.replace("\r", " ").replace("\n", " ").replace("|", "｜").replace("\\", "/")
        out.append(("adt", vid, f"{tag}A{i}", "\r".join([
            f"MSH|^~\\&|HIS|B|MEDKG|M|{ts}||ADT^A01|{tag}A{i}|P|2.5", f"PID|1||{pid}||名^姓||19700101|F", pv1]).encode()))
        out.append(("oru", f"B:{tag}O{i}:GLU:", f"{tag}O{i}", "\r".join([
            f"MSH|^~\\&|LIS|B|MEDKG|M|{ts}||ORU^R01|{tag}O{i}|P|2.5", f"PID|1||{pid}", pv1,
            f"OBR|1|{tag}O{i}|{tag}O{i}|GLU^血糖", f"OBX|1|NM|GLU^血糖||{i % 20}.5|mmol/L|3.9-6.1|H|||F"]).encode()))
        out.append(("mdm", _doc_id("hl7-mdm", "B", f"{tag}D{i}"), f"{tag}M{i}", "\r".join([
            f"MSH|^~\\&|EMR|B|MEDKG|M|{ts}||MDM^T02|{tag}M{i}|P|2.5", f"PID|1||{pid}", pv1,
            f"TXA|1|PN|TX|{ts}||||||||{tag}D{i}", f"OBX|1|TX|N||{body}"]).encode()))
    return out


_VISIBLE = {
    "adt": "MATCH (e:Encounter) WHERE e.eid IN $ids AND e.status IS NOT NULL RETURN e.eid AS k",
    "oru": "MATCH (l:LabResult) WHERE l.result_id IN $ids RETURN l.result_id AS k",
    "mdm": "MATCH (d:Document) WHERE d.doc_id IN $ids RETURN d.doc_id AS k",
}


class Stack:
    """A fresh Valkey, graph server, in-process MLLP gateway and N `medkg feeds run` processes."""

    def __init__(self, root: Path, processes: int, relations: bool):
        self.profile = root / "profile.jsonl"
        from feeds.buffer import BufferTarget, EmbeddedValkey
        from graph.server import EmbeddedServer
        from pipelines.graphio import GraphTarget

        self.valkey = EmbeddedValkey(root / "feeds")
        self.valkey.up()
        self.graph = EmbeddedServer(root / "graph", heap="1g")
        self.graph.up()
        self.buffer = BufferTarget(None, str(self.valkey.data_dir))
        self.target = GraphTarget(None, "root", self.graph.database, str(self.graph.data_dir))
        self.logs = [open(root / f"p{i}.log", "wb") for i in range(processes)]  # noqa: SIM115 - closed in close()
        env = {**os.environ, "MEDKG_FEEDS_DIR": str(self.valkey.data_dir), "MEDKG_GRAPH_DIR": str(self.graph.data_dir),
               "MEDKG_FEEDS_PROFILE": str(self.profile)}
        env.pop("REDIS_URL", None), env.pop("NEO4J_URI", None)
        from cli.feeds import process_threads

        env.setdefault("MEDKG_THREADS", str(process_threads(processes)))  # as `medkg feeds run --processes N`
        self.procs = [subprocess.Popen([sys.executable, "-c", "from cli.main import app; app()", "feeds", "run",
                                        "--relations" if relations else "--no-relations", "--consumer", f"b{i}"],
                                       env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
                      for i, log in enumerate(self.logs)]
        from feeds.mllp import Gateway, GatewayServer

        self.server = GatewayServer(Gateway(self.buffer), "127.0.0.1", 0, 1 << 20)
        self.loop = asyncio.new_event_loop()
        self.port = self.loop.run_until_complete(self.server.start())
        threading.Thread(target=self._serve, daemon=True).start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # warm: every process has loaded its models and reads
            with contextlib.suppress(Exception):
                if len(self.buffer.connect().client.xinfo_consumers(self.buffer.stream, self.buffer.group)) >= processes:
                    break
            time.sleep(0.5)
        else:
            raise TimeoutError("pipeline processes did not start")

    def _serve(self):
        with contextlib.suppress(BaseException):
            self.loop.run_until_complete(self.server.serve_forever())

    def stage_profile(self) -> dict:
        """The pipeline processes' per-bundle stage timings (pipelines.streaming, MEDKG_FEEDS_PROFILE), summed:
        milliseconds per clinical text and per message for each stage, and the bundles' sizes."""
        rows = [json.loads(line) for line in self.profile.read_text().splitlines()] if self.profile.exists() else []
        if not rows:
            return {}
        texts, entries = sum(r["texts"] for r in rows), sum(r["entries"] for r in rows)
        stages = sorted({k for r in rows for k in r if k.endswith("_ms")})
        total = {k: sum(r.get(k, 0.0) for r in rows) for k in stages}
        sizes = sorted(r["entries"] for r in rows)
        return {"bundles": len(rows), "entries": entries, "texts": texts,
                "entries_per_bundle": {"mean": round(entries / len(rows), 1), "median": sizes[len(sizes) // 2],
                                       "max": sizes[-1]},
                "ms_per_text": {k[:-3]: round(v / max(1, texts), 1) for k, v in total.items()},
                "ms_per_message": {k[:-3]: round(v / max(1, entries), 1) for k, v in total.items()}}

    def drained(self) -> bool:
        info = self.buffer.connect().info()
        return info["unread"] is False and info["pending"] == 0

    def close(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.loop.call_soon_threadsafe(self.server.server.close)
        self.valkey.down()
        self.graph.down()
        for log in self.logs:
            log.close()


def throughput(texts: list[str], processes: int, relations: bool) -> dict:
    from feeds.mllp import MllpClient

    msgs = messages(texts, f"T{processes}")
    with tempfile.TemporaryDirectory() as d:
        stack = Stack(Path(d), processes, relations)
        try:
            t0 = time.monotonic()
            with MllpClient("127.0.0.1", stack.port, timeout=60) as c:
                for _, _, _, m in msgs:
                    assert c.send(m).code == "AA"
            sent = time.monotonic() - t0
            deadline = time.monotonic() + 1800
            while not stack.drained() and time.monotonic() < deadline:
                time.sleep(0.2)
            total = time.monotonic() - t0
            assert stack.drained(), "not drained"
            dead = stack.buffer.connect().client.xlen(stack.buffer.dead_stream)
        finally:
            stack.close()
        profile = stack.stage_profile()
    return {"processes": processes, "messages": len(msgs), "texts": len(texts), "send_s": round(sent, 2),
            "send_to_graph_s": round(total, 2), "messages_per_s": round(len(msgs) / total, 2),
            "texts_per_s": round(len(texts) / total, 2), "dead_letters": dead, "stages": profile}


def batch(texts: list[str], relations: bool) -> dict:
    from pipelines.ingest import IngestConfig, run

    with tempfile.TemporaryDirectory() as d:
        from graph.server import EmbeddedServer

        gdir = Path(d) / "graph"
        graph = EmbeddedServer(gdir, heap="1g")
        graph.up()
        try:
            path = Path(d) / "texts.jsonl"
            path.write_text("".join(json.dumps({"doc_id": f"batch-{i}", "patient_id": f"BP{i}", "encounter_id": f"BV{i}",
                                                "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)),
                            encoding="utf-8")
            os.environ["MEDKG_GRAPH_DIR"] = str(gdir)
            try:
                s = run(IngestConfig("records", [str(path)], out=str(Path(d) / "out"), relations=relations,
                                     graph_dir=str(gdir), progress=False))
            finally:
                del os.environ["MEDKG_GRAPH_DIR"]
        finally:
            graph.down()
    return {"texts": len(texts), "pipeline_s": s["pipeline_s"], "texts_per_s": round(len(texts) / s["pipeline_s"], 2),
            "processed": s["processed"], "dead_lettered": s["dead_lettered"], "workers": s["runner"].get("workers")}


def latency(texts: list[str], seconds: float, rate: float, relations: bool) -> dict:
    from feeds.mllp import MllpClient
    from pipelines.graphio import ResilientWriter

    n = int(seconds * rate)
    msgs = messages((texts * (n // (3 * len(texts)) + 1))[: (n + 2) // 3], "L")[:n]
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        stack = Stack(Path(d), 2, relations)
        stop = threading.Event()

        def poll():
            w = ResilientWriter(stack.target, timeout_s=60)
            try:
                while not stop.is_set():
                    for kind, q in _VISIBLE.items():
                        ids = [k for kk, k, _, _ in msgs if kk == kind and k in sent and k not in seen]
                        if ids:
                            rows = w.call(lambda wr, q=q, ids=ids: wr.driver.execute_query(
                                q, ids=ids, database_=wr.database).records)
                            now = time.monotonic()
                            for r in rows:
                                seen.setdefault(r["k"], now)
                    time.sleep(0.05)
            finally:
                w.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            t0 = time.monotonic()
            with MllpClient("127.0.0.1", stack.port, timeout=60) as c:
                for i, (_, key, _, m) in enumerate(msgs):
                    time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                    sent[key] = time.monotonic()
                    assert c.send(m).code == "AA"
            deadline = time.monotonic() + 300
            while len(seen) < len(msgs) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            poller.join(30)
            stack.close()
        profile = stack.stage_profile()
    lat = sorted(seen[k] - sent[k] for k in seen)

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 3) if lat else None

    return {"rate_per_s": rate, "messages": len(msgs), "visible": len(lat), "p50_s": pct(50), "p95_s": pct(95),
            "p99_s": pct(99), "max_s": round(lat[-1], 3) if lat else None,
            "by_kind_p95_s": {kind: _p95([seen[k] - sent[k] for kk, k, _, _ in msgs if kk == kind and k in seen])
                              for kind in _VISIBLE}, "stages": profile}


def _p95(values):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(0.95 * len(values)))], 3) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--latency-s", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--no-relations", dest="relations", action="store_false")
    ap.add_argument("--parts", default="batch,stream1,stream2,latency",
                    help="comma-separated subset of batch,stream1,stream2,latency (a partial run prints, and does "
                         "not overwrite benchmarks/results/feeds.json unless --out names it)")
    ap.add_argument("--out", default=None, help="where to write the JSON (default results/feeds.json for a full run)")
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"batch", "stream1", "stream2", "latency"}
    if unknown:
        ap.error(f"unknown parts: {sorted(unknown)}")
    from benchmarks.pipeline import record_texts
    from cli.feeds import process_threads

    texts, source = record_texts(args.texts)
    t0 = time.monotonic()
    out = {"benchmark": "feeds", "machine": {"cpu": platform.processor() or platform.machine(),
                                             "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                                             "loadavg_before": os.getloadavg()[0]},
           "texts": {"n": len(texts), "chars": sum(map(len, texts)), "source": source}, "relations": args.relations}
    with contextlib.suppress(Exception):
        out["machine"]["cpu"] = next(line.split(":", 1)[1].strip() for line in
                                     Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    out["inference_threads_per_process"] = {str(n): process_threads(n) for n in (1, 2)}
    if "batch" in parts:
        out["batch_ingest_records"] = batch(texts, args.relations)
    out["streaming"] = [throughput(texts, n, args.relations) for n in (1, 2) if f"stream{n}" in parts]
    two = [s for s in out["streaming"] if s["processes"] == 2]
    if two and "batch_ingest_records" in out:
        out["ratio_streaming2_vs_batch_texts"] = round(two[0]["texts_per_s"] / out["batch_ingest_records"]["texts_per_s"],
                                                       3)
    if "latency" in parts:
        out["latency"] = latency(texts, args.latency_s, args.rate, args.relations)
    out["machine"]["loadavg_after"] = os.getloadavg()[0]
    out["total_s"] = round(time.monotonic() - t0, 1)
    text = json.dumps(out, ensure_ascii=False)
    print(text)
    dest = Path(args.out) if args.out else (ROOT / "benchmarks" / "results" / "feeds.json"
                                            if parts == {"batch", "stream1", "stream2", "latency"} else None)
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

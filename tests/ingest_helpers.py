"""Shared by the ingest pipeline tests: a graph server of the test module's own (a test restarts it, which must
not disturb other modules' drivers), an in-process pipeline run against it, and reading its outputs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from graph.server import EmbeddedServer
from pipelines.graphio import GraphTarget, read_queries
from pipelines.ingest import IngestConfig, run

IN_PROCESS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]  # the machine has 2 busy cores


def start_server(path: Path) -> EmbeddedServer:
    server = EmbeddedServer(path, heap="512m")
    server.up()
    return server


def ingest(kind: str, paths, out: Path, server: EmbeddedServer, beam_args=IN_PROCESS, **kw) -> dict:
    return run(IngestConfig(kind, [str(p) for p in paths], out=str(out), beam_args=beam_args,
                            graph_dir=str(server.data_dir), **kw))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def query(server: EmbeddedServer, q: str) -> list[dict]:
    return read_queries(GraphTarget(data_dir=str(server.data_dir)), [q])[0]


def totals(server: EmbeddedServer) -> dict:
    rows = query(server, "MATCH (n) RETURN labels(n) AS labels, count(*) AS n")
    by_label = {":".join(sorted(r["labels"])): r["n"] for r in rows}
    rels = {r["t"]: r["n"] for r in query(server, "MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n")}
    return {"nodes": by_label, "relationships": rels}


class Bounce(threading.Thread):
    """Stops the graph server once the pipeline has written ``after`` documents and keeps it down long enough
    for the next document to reach the sink (``down_s``, or three times what the first document took from its
    file being opened to being written, whichever is longer), then starts it again, on new ports."""

    def __init__(self, server: EmbeddedServer, progress: Path, after: int = 1, down_s: float = 8.0,
                 timeout_s: float = 600.0):
        super().__init__(daemon=True)
        self.server, self.progress, self.after, self.down_s, self.timeout_s = server, progress, after, down_s, \
            timeout_s
        self.bounced_at: float | None = None
        self.done_before = 0  # documents written when the server went down
        self.error: BaseException | None = None

    def counts(self) -> dict[str, int]:
        out = {"file": 0, "done": 0}
        if self.progress.exists():
            for event, n in (line.split() for line in self.progress.read_text().splitlines()):
                out[event] += int(n)
        return out

    def run(self) -> None:
        try:
            deadline = time.monotonic() + self.timeout_s
            first_file = None
            while (c := self.counts())["done"] < self.after:
                if first_file is None and c["file"]:
                    first_file = time.monotonic()
                if time.monotonic() > deadline:
                    raise TimeoutError("the pipeline wrote nothing")
                time.sleep(0.05)
            self.bounced_at = time.monotonic()
            self.done_before = self.counts()["done"]
            per_doc = self.bounced_at - (first_file or self.bounced_at)
            self.server.down()
            time.sleep(min(60.0, max(self.down_s, 3 * per_doc)))
            self.server.up()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

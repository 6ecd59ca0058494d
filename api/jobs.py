"""Bill jobs: a larger upload (or ``?async=true``) runs the same Beam pipeline as ``medkg ingest bills``
(:func:`pipelines.ingest.run`), in one background worker thread, one job at a time (the machine's cores are
the pipeline's to use). The job's folder under ``<data_dir>/jobs/<id>/`` holds the pipeline's own outputs
(``audit.jsonl``, ``dead_letter.jsonl``, ``summary.json``, ``progress.log``); the job's counts and dead letters
are read from them, and the claims its audit rows carry go into the claim store, where ``/v1/claims`` reads
them (the graph already has them: the pipeline wrote it).

A job left ``queued`` or ``running`` by a stopped server is marked failed at the next start (its files are
stored; uploading them again is idempotent).
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
from pathlib import Path

from api.claims_service import ClaimService, now
from api.metrics import Metrics
from api.problems import ApiProblem
from api.store import Database
from core.records import Claim

log = logging.getLogger("medkg.api.jobs")


class JobRunner:
    def __init__(self, db: Database, claims: ClaimService, root: Path, metrics: Metrics, graph_dir: str | None,
                 beam_args: tuple[str, ...] = ("--direct_running_mode=in_memory",), catalogue: str | None = None):
        self.db, self.claims, self.root, self.metrics = db, claims, Path(root), metrics
        self.catalogue = catalogue or None  # MEDKG_CATALOGUE: the pipeline matches line items to it
        self.graph_dir, self.beam_args = graph_dir, beam_args
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._queue: queue.Queue[str | None] = queue.Queue()
        with self.db.tx() as c:
            c.execute("UPDATE jobs SET state = 'failed', error = 'the server stopped before the job finished', "
                      "finished_at = ? WHERE state IN ('queued', 'running')", (now(),))
        self._thread = threading.Thread(target=self._work, name="medkg-jobs", daemon=True)
        self._thread.start()

    def submit(self, paths: list[Path], owner: str) -> str:
        job_id = secrets.token_hex(16)
        out = self.root / job_id
        out.mkdir(mode=0o700)
        (out / "inputs.json").write_text(json.dumps([str(p) for p in paths]))
        with self.db.tx() as c:
            c.execute("INSERT INTO jobs (job_id, owner, state, created_at, files, out_dir) VALUES (?, ?, 'queued', ?, ?, ?)",
                      (job_id, owner, now(), len(paths), str(out)))
        self.metrics.jobs_running.inc()
        self._queue.put(job_id)
        return job_id

    def get(self, job_id: str) -> dict:
        row = self.db.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        if row is None:
            raise ApiProblem(404, "job-not-found", "no such job")
        done = row["done"]
        if row["state"] == "running":
            done = _progress(Path(row["out_dir"]))
        return {"job_id": job_id, "state": row["state"], "created_at": row["created_at"],
                "started_at": row["started_at"], "finished_at": row["finished_at"], "files": row["files"],
                "done": done, "counts": json.loads(row["counts"] or "{}"),
                "dead_letters": json.loads(row["dead_letters"] or "[]"),
                "claim_ids": json.loads(row["claim_ids"] or "[]"), "error": row["error"]}

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # --- the worker ------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                self._run(job_id)
            except Exception as exc:  # a failed job is recorded, the worker goes on
                log.exception("job %s failed", job_id)
                with self.db.tx() as c:
                    c.execute("UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE job_id = ?",
                              (f"{type(exc).__name__}: {exc}"[:500], now(), job_id))
                self.metrics.jobs.labels("failed").inc()
            finally:
                self.metrics.jobs_running.dec()

    def _run(self, job_id: str) -> None:
        from pipelines.ingest import IngestConfig, run

        out = self.root / job_id
        paths = json.loads((out / "inputs.json").read_text())
        with self.db.tx() as c:
            c.execute("UPDATE jobs SET state = 'running', started_at = ? WHERE job_id = ?", (now(), job_id))
        summary = run(IngestConfig(kind="bills", paths=paths, out=str(out), beam_args=list(self.beam_args),
                                   graph_dir=self.graph_dir, keep_claims=True, graph_timeout_s=120.0,
                                   catalogue=self.catalogue))
        claims, dead = [], []
        for row in _json_lines(out / "audit.jsonl"):
            claims += [Claim.model_validate(d) for d in row.get("claim_documents", ())]
        for row in _json_lines(out / "dead_letter.jsonl"):
            # the input is a content-addressed path: report the hash only, never a server path
            dead.append({"input": Path(str(row.get("input", ""))).name, "stage": str(row.get("stage", "")),
                         "error": str(row.get("error", "")), "reason": str(row.get("reason", "")),
                         "message": str(row.get("message", "")).replace(str(self.claims.files.root), "")})
        claim_ids = self.claims.store_new(claims, f"job:{job_id}", graph_written=True) if claims else []
        counts = {"inputs": summary["inputs"], "processed": summary["processed"],
                  "dead_lettered": summary["dead_lettered"], "claims": len(claim_ids),
                  "pages": summary["counters"].get("pages", 0)}
        with self.db.tx() as c:
            c.execute("UPDATE jobs SET state = 'succeeded', finished_at = ?, done = ?, counts = ?, dead_letters = ?, "
                      "claim_ids = ? WHERE job_id = ?",
                      (now(), summary["processed"] + summary["dead_lettered"], json.dumps(counts), json.dumps(dead),
                       json.dumps(claim_ids), job_id))
        self.metrics.jobs.labels("succeeded").inc()


def _json_lines(path: Path):
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _progress(out: Path) -> int:
    try:
        return sum(int(line.split()[1]) for line in (out / "progress.log").read_text().splitlines()
                   if line.startswith("done "))
    except (OSError, ValueError, IndexError):
        return 0

"""A real `medkg serve` for the API tests: a subprocess on a free loopback port, against an embedded graph server,
with its own data directory and one API key per role. Started once per test session (models load once)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("clerk", "clinician", "researcher", "integration", "admin")
JWT_SECRET = "test-jwt-secret-of-the-api-tests-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiServer:
    url: str
    data_dir: Path
    graph_dir: Path
    proc: subprocess.Popen
    log: Path
    keys: dict[str, str] = field(default_factory=dict)
    feeds: object = None  # the feed buffer's BufferTarget, when the server has one

    def client(self, role: str | None = None, **kw) -> httpx.Client:
        headers = {"X-API-Key": self.keys[role]} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=300, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def add_keys(data_dir: Path) -> dict[str, str]:
    from api.auth import Users
    from api.store import Database

    users = Users(Database(data_dir / "medkg-api.sqlite3"))
    return {role: users.add(f"test-{role}", role) for role in ROLES}


def start_api(data_dir: Path, graph_dir: Path, *, workers: int = 1, log_level: str = "warning",
              **env_extra: str) -> ApiServer:
    """`medkg serve` on a free port; returns once /readyz answers (or raises with the server's log)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = add_keys(data_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update({"MEDKG_DATA_DIR": str(data_dir), "MEDKG_GRAPH_DIR": str(graph_dir), "MEDKG_API_RATE_PER_S": "1000",
                "MEDKG_API_BURST": "100000", "MEDKG_API_JWT_KEY": JWT_SECRET, "MEDKG_API_JWT_ALGORITHMS": "HS256",
                **env_extra})
    log = data_dir / "serve.log"
    medkg = Path(sys.executable).with_name("medkg")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(medkg), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level",
                                 log_level, "--workers", str(workers)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = ApiServer(f"http://127.0.0.1:{port}", data_dir, graph_dir, proc, log, keys)
    deadline = time.monotonic() + 600  # a bound on start-up (models load), not a timing assertion
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"medkg serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            r = httpx.get(server.url + "/readyz", timeout=10)
            if r.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"medkg serve did not become ready:\n{log.read_text()[-4000:]}")


def shared_api(request, graph_db, tmp_path_factory) -> ApiServer:
    """The session's one full server (OCR and NER models loaded) on the suite's graph server, with its own
    embedded feed buffer (Valkey) for the FHIR endpoints (``server.feeds``, a ``feeds.buffer.BufferTarget``).
    Started once, by the session fixture ``api`` of tests/conftest.py."""
    from feeds.buffer import BufferTarget, EmbeddedValkey

    valkey = EmbeddedValkey(tmp_path_factory.mktemp("api-feeds"))
    valkey.up()
    request.config.add_cleanup(valkey.down)
    server = start_api(tmp_path_factory.mktemp("api-data"), Path(graph_db.server.data_dir),
                       MEDKG_FEEDS_DIR=str(valkey.data_dir))
    server.feeds = BufferTarget(None, str(valkey.data_dir))
    request.config.add_cleanup(server.stop)
    return server


CLAIM = "0" * 64 + ":0"
JOB = "0" * 32
# every /v1 and /fhir route, the role it admits, and a request that would otherwise be acceptable in shape
ROUTES = [
    ("POST", "/v1/bills", "clerk"),
    ("GET", f"/v1/jobs/{JOB}", "clerk"),
    ("GET", "/v1/claims", "clerk"),
    ("GET", f"/v1/claims/{CLAIM}", "clerk"),
    ("GET", f"/v1/claims/{CLAIM}/pages/0", "clerk"),
    ("PATCH", f"/v1/claims/{CLAIM}", "clerk"),
    ("GET", f"/v1/claims/{CLAIM}/history", "clerk"),
    ("POST", f"/v1/claims/{CLAIM}/approve", "clerk"),
    ("POST", f"/v1/claims/{CLAIM}/reject", "clerk"),
    ("POST", "/v1/records", "integration"),
    ("GET", "/v1/patients/P-none/emr", "clinician"),
    ("GET", "/v1/patients/P-none/timeline", "clinician"),
    ("GET", "/v1/patients/P-none/facts", "clinician"),
    ("POST", "/v1/cohorts", "researcher"),
    ("GET", "/v1/concepts/Disease/x", "researcher"),
    ("GET", "/v1/users", "admin"),
    ("POST", "/v1/users", "admin"),
    ("DELETE", "/v1/users/nobody", "admin"),
    ("GET", f"/v1/claims/{CLAIM}/reconciliation", "clerk"),
    ("POST", f"/v1/claims/{CLAIM}/reconciliation", "clerk"),
    ("POST", "/fhir/r4/Bundle", "integration"),
    ("POST", "/fhir/r4/Patient", "integration"),
]
ROLE_OF_TEMPLATE = {
    ("POST", "/v1/bills"): "clerk", ("GET", "/v1/jobs/{job_id}"): "clerk", ("GET", "/v1/claims"): "clerk",
    ("GET", "/v1/claims/{claim_id}"): "clerk", ("GET", "/v1/claims/{claim_id}/pages/{n}"): "clerk",
    ("PATCH", "/v1/claims/{claim_id}"): "clerk", ("GET", "/v1/claims/{claim_id}/history"): "clerk",
    ("POST", "/v1/claims/{claim_id}/approve"): "clerk", ("POST", "/v1/claims/{claim_id}/reject"): "clerk",
    ("POST", "/v1/records"): "integration", ("GET", "/v1/patients/{pid}/emr"): "clinician",
    ("GET", "/v1/patients/{pid}/timeline"): "clinician", ("POST", "/v1/cohorts"): "researcher",
    ("GET", "/v1/patients/{pid}/facts"): "clinician",
    ("GET", "/v1/concepts/{type}/{name}"): "researcher", ("GET", "/v1/users"): "admin",
    ("POST", "/v1/users"): "admin", ("DELETE", "/v1/users/{name}"): "admin",
    ("GET", "/v1/claims/{claim_id}/reconciliation"): "clerk", ("POST", "/v1/claims/{claim_id}/reconciliation"): "clerk",
    ("POST", "/fhir/r4/Bundle"): "integration", ("POST", "/fhir/r4/{type}"): "integration",
}
API_PREFIXES = ("/v1/", "/fhir/")  # the routes behind a key: every one is in the tables above


def graph_counts(graph_db) -> tuple[int, int]:
    with graph_db.driver.session(database=graph_db.database) as s:
        nodes = s.run("MATCH (n) RETURN count(n) AS n").single()["n"]
        rels = s.run("MATCH ()-[r]->() RETURN count(r) AS n").single()["n"]
    return nodes, rels

"""Operations against a real `medkg serve` (no models loaded: MEDKG_API_MODELS=none) on a graph server of its own,
so it can be stopped: 503 with Retry-After while the graph is away, then normal by itself; the rate limit per
key; upload limits (413); /healthz, /readyz, /metrics; and the `medkg users` commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from api_helpers import ROOT, start_api

pytestmark = pytest.mark.slow
BURST = 20


@pytest.fixture(scope="module")
def graph_server(tmp_path_factory):
    pytest.importorskip("arcadedb_embedded")
    from core.records import ClinicalRecord, Entity, EntityType, Span
    from graph.schema import init_schema
    from graph.server import EmbeddedServer
    from graph.writer import GraphWriter

    server = EmbeddedServer(tmp_path_factory.mktemp("ops-graph"), heap="256m")
    conn = server.connection()
    import neo4j

    with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
        init_schema(driver, conn.database)
        text = "诊断高血压。"
        record = ClinicalRecord.of(text, patient_id="OPS-1", encounter_id="OPS-1-E1")
        entity = Entity(span=Span(start=2, end=5, text="高血压"), type=EntityType.disease)
        with GraphWriter(driver, conn.database) as w:
            w.write_records([(record, (entity,), ())])
    yield server
    server.down()


@pytest.fixture(scope="module")
def ops_api(graph_server, tmp_path_factory):
    server = start_api(tmp_path_factory.mktemp("ops-api"), graph_server.data_dir, MEDKG_API_MODELS="none",
                       MEDKG_API_BURST=str(BURST), MEDKG_API_RATE_PER_S="0.01", MEDKG_MAX_FILE_BYTES="100000",
                       MEDKG_API_MAX_FILES="2")
    yield server
    server.stop()


def test_health_ready_and_metrics(ops_api):
    with ops_api.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["ready"] and ready["graph"] and ready["models"] == {}
        with ops_api.client("clinician") as clin:
            assert clin.get("/v1/patients/OPS-1/emr").status_code == 200
        text = c.get("/metrics").text
    assert 'medkg_http_requests_total{method="GET",route="/v1/patients/{pid}/emr",status="200"}' in text
    assert 'medkg_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/v1/patients/{pid}/emr"}' in text
    assert "medkg_jobs_running" in text and "medkg_graph_errors_total" in text


def test_a_graph_restart_is_503_with_retry_after_then_normal(ops_api, graph_server):
    with ops_api.client("clerk") as clerk, ops_api.client("clinician") as clin:
        assert clin.get("/v1/patients/OPS-1/emr").status_code == 200
        graph_server.down()
        try:
            r = clin.get("/v1/patients/OPS-1/emr")
            assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "graph-unavailable"
            assert clin.get("/v1/patients/OPS-1/timeline").status_code == 503
            assert clerk.get("/v1/claims").status_code == 200  # what does not need the graph goes on
            ready = clerk.get("/readyz")
            assert ready.status_code == 503 and ready.json()["graph"] is False
        finally:
            graph_server.up()  # back, on new ports
        deadline = time.monotonic() + 120  # a bound on recovery, not a timing assertion
        while clerk.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        r = clin.get("/v1/patients/OPS-1/emr")
        assert r.status_code == 200 and r.json()["concepts"]["Disease"][0]["key"] == "高血压"
        errors = next(line for line in clerk.get("/metrics").text.splitlines()
                      if line.startswith("medkg_graph_errors_total "))
        assert float(errors.split()[1]) >= 2  # the EMR view and the timeline (readiness probes may add more)


def test_rate_limit_per_key(ops_api):
    with ops_api.client("researcher") as res, ops_api.client("admin") as admin:
        codes = [res.get("/v1/concepts/Disease/x").status_code for _ in range(BURST + 1)]
        assert all(code != 429 for code in codes[:BURST - 2])  # earlier tests may have used two
        limited = res.get("/v1/concepts/Disease/x")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["code"] == "rate-limited"
        assert admin.get("/v1/users").status_code == 200  # another key has its own bucket


def test_upload_limits_are_413_problems(ops_api):
    with ops_api.client("clerk") as c:
        r = c.post("/v1/bills", files={"files": ("a.jpg", b"\xff" * 150_000, "image/jpeg")})
        assert r.status_code == 413 and r.json()["code"] == "limit:max_file_bytes"
        r = c.post("/v1/bills", files=[("files", (f"{i}.jpg", b"\xff" * 99_000, "image/jpeg")) for i in range(3)])
        assert r.status_code == 413 and r.json()["code"] in ("limit:upload_bytes", "limit:api_max_files")
        r = c.post("/v1/bills", content=b"x" * 400_000, headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413 and r.json()["code"] == "limit:upload_bytes"
        # a bill within the limits, with no OCR models in this server: 503, not a 500
        data = (ROOT / "samples" / "bill.jpg").read_bytes()
        if len(data) <= 100_000:
            assert c.post("/v1/bills", files={"files": ("b.jpg", data, "image/jpeg")}).status_code == 503


def test_users_commands(tmp_path):
    env = {**os.environ, "MEDKG_DATA_DIR": str(tmp_path)}
    medkg = str(Path(sys.executable).with_name("medkg"))

    def run(*args):
        return subprocess.run([medkg, "users", *args], env=env, capture_output=True, text=True, cwd=ROOT,
                              check=False)

    made = run("add", "dr-li", "--role", "clinician")
    assert made.returncode == 0 and made.stdout.startswith("mk_")
    key = made.stdout.strip()
    assert run("add", "dr-li", "--role", "clinician").returncode != 0
    assert run("add", "x", "--role", "superuser").returncode != 0
    listed = run("list")
    assert '"dr-li"' in listed.stdout and '"clinician"' in listed.stdout and key not in listed.stdout
    assert key.split("_", 2)[2].encode() not in (tmp_path / "medkg-api.sqlite3").read_bytes()
    assert run("revoke", "dr-li").returncode == 0
    assert '"revoked_at": null' not in run("list").stdout
    assert run("revoke", "dr-li").returncode == 1

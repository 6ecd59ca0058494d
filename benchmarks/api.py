"""The HTTP API under load, against the direct calls it wraps. Prints one JSON object and saves a copy to
benchmarks/results/api.json (unless --no-save).

1. A generated graph of --patients patients (benchmarks/graph.py's generator, default 57,000) in a temporary
   embedded graph server; a real `medkg serve` (uvicorn, one process, models loaded) on a loopback port over it.
2. The synchronous single-bill upload (``POST /v1/bills`` with samples/bill.jpg) beside ``medkg bills read`` on
   the same file (a new process: model load included) and beside the same OCR + structuring called in this
   process (models already loaded, as the server has them).
3. For the EMR view (``GET /v1/patients/{pid}/emr``, random patients), the claim view (``GET /v1/claims/{id}``) and a
   two-concept cohort (``POST /v1/cohorts``: a disease of --cohort-rank and a drug treating it, with aggregates):
   p50/p95/p99 latency and requests/s with 1, 8 and 32 concurrent clients (async httpx, each client its own
   connection), and the same work called directly in one process (``graph.queries.emr_view``; the claim store; the
   research service's cohort), so the API's overhead is a ratio (API p50 at 1 client / direct p50). For the EMR view
   also the direct query from 1, 8 and 32 concurrent callers in one process (the async driver, as the API uses it):
   the graph server's own ceiling; the HTTP floor (``GET /healthz``, no key, no work, at 1 client: what any route
   costs this client and server), so the overhead splits into the HTTP round trip and the app's own work; and the EMR
   view on ``medkg serve --workers N`` (--workers, default 2; no models) at 1 and 32 clients.
4. ``client_pool_check``: ``/healthz`` from 32 clients of their own beside one httpx client sharing a pool of 32
   connections, which spends more time in its pool than the server spends serving.

Client and server share the machine's cores (and the graph server's JVM): the figures include that contention.

    .venv/bin/python benchmarks/api.py [--patients 57000] [--requests 400] [--heap 3g] [--workers 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import tempfile
import time

import httpx
import psutil

from benchmarks.graph import Generator, load, percentile
from core.hardware import probe

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "api.json"
BILL = ROOT / "samples" / "bill.jpg"


def summary(times_ms: list[float], seconds: float | None = None) -> dict:
    out = {"n": len(times_ms), "p50_ms": round(statistics.median(times_ms), 2),
           "p95_ms": round(percentile(times_ms, 95), 2), "p99_ms": round(percentile(times_ms, 99), 2)}
    if seconds:
        out["requests_per_s"] = round(len(times_ms) / seconds, 1)
    return out


async def under_load(url: str, key: str, make_request, n: int, clients: int, *, shared_pool: bool = False,
                     watch: dict[str, psutil.Process] | None = None) -> dict:
    """``n`` requests from ``clients`` concurrent clients; latency per request, in the steady state.

    Each client is its own ``httpx.AsyncClient`` with one keep-alive connection, as each clerk's browser or intake
    system is; all are made and send one untimed request each, together, before the clock starts: making a client
    costs milliseconds of this process's CPU (its SSL context), and the server's pool of graph connections grows to
    the concurrency it sees (new Bolt connections, each authenticated, each a thread in the graph server: a one-off
    stall of every request in flight, ~150 ms here), neither of which belongs to the steady state measured here.
    ``shared_pool``: one client with a pool of ``clients`` connections instead, which measures httpx's pool more
    than the server (the run's ``client_pool_check`` compares the two on ``/healthz``). ``watch``: processes whose
    CPU time per request to report (user + system, all their threads), where the cores went."""
    times: list[float] = []
    errors = 0
    counter = iter(range(n))

    def new_client(connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=120, limits=limits)

    pool = [new_client(clients)] * clients if shared_pool else [new_client(1) for _ in range(clients)]

    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        method, path, body = make_request(i)
        return await client.request(method, path, json=body)

    async def worker(client: httpx.AsyncClient):
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            try:
                errors += (await send(client, i)).status_code != 200
            except httpx.TransportError:  # counted, not fatal: a reset connection is a result too
                errors += 1
            times.append((time.perf_counter() - t0) * 1000)

    def cpu_s(proc: psutil.Process) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    try:
        await asyncio.gather(*(send(client, i) for i, client in enumerate(pool)))
        before = {name: cpu_s(proc) for name, proc in (watch or {}).items()}
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for client in pool))
        seconds = time.perf_counter() - t0
        cpu = {name: round((cpu_s(proc) - before[name]) * 1000 / n, 2) for name, proc in (watch or {}).items()}
    finally:
        for client in set(pool):
            await client.aclose()
    return {**summary(times, seconds), "errors": errors, **({"cpu_ms_per_request": cpu} if watch else {})}


def direct(fn, n: int) -> dict:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return summary(times)


async def direct_concurrent(fn, n: int, clients: int) -> dict:
    """The direct call (an async one) from ``clients`` concurrent callers in this process: the graph's own
    ceiling, without HTTP."""
    times: list[float] = []
    counter = iter(range(n))

    async def worker():
        for i in counter:
            t0 = time.perf_counter()
            await fn(i)
            times.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(fn(i) for i in range(clients)))  # the driver's pool grown to this concurrency first
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return summary(times, time.perf_counter() - t0)


def emr_direct_concurrent(conn, pids: list[str], n: int) -> dict:
    import neo4j

    from graph.queries import emr_view_async

    async def run():
        driver = neo4j.AsyncGraphDatabase.driver(conn.uri, auth=(conn.user, conn.password))
        try:
            await direct_concurrent(lambda i: emr_view_async(driver, pids[i % len(pids)], conn.database), 40, 4)
            return {str(k): await direct_concurrent(
                lambda i: emr_view_async(driver, pids[i % len(pids)], conn.database), n, k) for k in (1, 8, 32)}
        finally:
            await driver.close()

    return asyncio.run(run())


def start_server(data_dir: Path, graph_dir: Path, port: int, workers: int = 1, **env_extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_") and k != "REDIS_URL"}
    env.update({"MEDKG_DATA_DIR": str(data_dir), "MEDKG_GRAPH_DIR": str(graph_dir), "MEDKG_API_RATE_PER_S": "100000",
                "MEDKG_API_BURST": "1000000", **env_extra})
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen([str(Path(sys.executable).with_name("medkg")), "serve", "--port", str(port),
                             "--log-level", "warning", "--workers", str(workers)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((data_dir / "serve.log").read_text()[-3000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("medkg serve did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=57_000)
    ap.add_argument("--requests", type=int, default=400, help="requests per view and concurrency level")
    ap.add_argument("--cohort-requests", type=int, default=30)
    ap.add_argument("--cohort-rank", type=int, default=20, help="frequency rank of the cohort's disease (0: commonest)")
    ap.add_argument("--uploads", type=int, default=5)
    ap.add_argument("--heap", default="3g")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="also the EMR view on `medkg serve --workers N` (1: not)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    import neo4j

    from api.auth import Users
    from api.graph_access import GraphAccess
    from api.research_service import ResearchService, pseudonym_key
    from api.store import Database
    from graph.queries import emr_view
    from graph.schema import init_schema
    from graph.server import EmbeddedServer
    from pipelines.graphio import GraphTarget

    hw = probe()
    load_at_start = os.getloadavg()[0]
    tmp = tempfile.TemporaryDirectory(prefix="medkg-api-bench-")
    graph_dir, data_dir = Path(tmp.name) / "graph", Path(tmp.name) / "api"
    data_dir.mkdir()
    server = EmbeddedServer(graph_dir, heap=args.heap)
    proc = None
    phases = {}
    try:
        t0 = time.perf_counter()
        conn = server.connection()
        driver = neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password))
        init_schema(driver, conn.database)
        gen = Generator(args.seed)
        loaded = load(driver, conn.database, gen, args.patients, 400)
        phases["load_s"] = round(time.perf_counter() - t0, 1)

        key = Users(Database(data_dir / "medkg-api.sqlite3")).add("bench", "clerk")
        keys = {"clerk": key}
        users = Users(Database(data_dir / "medkg-api.sqlite3"))
        keys["clinician"] = users.add("bench-clinician", "clinician")
        keys["researcher"] = users.add("bench-researcher", "researcher")
        port = 18000 + random.randrange(1000)
        t0 = time.perf_counter()
        proc = start_server(data_dir, graph_dir, port)
        phases["server_start_s"] = round(time.perf_counter() - t0, 1)
        url = f"http://127.0.0.1:{port}"

        # --- the single-bill upload beside `medkg bills read` and the in-process call -------------------------
        data = BILL.read_bytes()
        with httpx.Client(base_url=url, headers={"X-API-Key": keys["clerk"]}, timeout=300) as c:
            uploads = []
            for _ in range(args.uploads + 1):
                t0 = time.perf_counter()
                r = c.post("/v1/bills", files={"files": ("bill.jpg", data, "image/jpeg")})
                uploads.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            claim_id = r.json()["claims"][0]["claim_id"]
        t0 = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("medkg")), "bills", "read", str(BILL)], check=True,
                       capture_output=True, cwd=ROOT)
        cli_ms = (time.perf_counter() - t0) * 1000
        from claims.document import structure_document
        from ocr.pipeline import OcrEngine
        from ocr.readers import open_document

        engine = OcrEngine.load()

        def read_bill(_):
            src = open_document(BILL)
            return structure_document(engine.read(src.pages(), src.document.doc_id))

        read_bill(0)
        in_process = direct(read_bill, args.uploads)
        upload = {"api_upload": summary(uploads[1:]), "cli_bills_read_ms": round(cli_ms, 1),
                  "cli_note": "a new process: imports and model load included",
                  "in_process_ocr_structure": in_process,
                  "api_over_in_process": round(statistics.median(uploads[1:]) / in_process["p50_ms"], 2)}

        # --- the three views --------------------------------------------------------------------------------
        # This process holds the generated graph's data and the OCR models: a full garbage collection of that heap
        # stalled every client at once for ~150 ms (p95 = p99 of /healthz at 32 clients). What is here now is kept
        # out of the collector, which then sees only what the load itself makes.
        gc.collect()
        gc.freeze()
        rng = random.Random(5)
        pids = [f"P{rng.randrange(args.patients):06d}" for _ in range(args.requests)]
        disease = gen.vocab["Disease"][args.cohort_rank]
        drug = gen.vocab["Drug"][gen.assoc[args.cohort_rank]["Drug"][0]]
        cohort_body = {"include": [{"type": "Disease", "name": disease}, {"type": "Drug", "name": drug}]}
        views = {
            "emr_view": ("clinician", lambda i: ("GET", f"/v1/patients/{pids[i % len(pids)]}/emr", None),
                         args.requests),
            "claim_view": ("clerk", lambda i: ("GET", f"/v1/claims/{claim_id}", None), args.requests),
            "cohort_two_concepts": ("researcher", lambda i: ("POST", "/v1/cohorts", cohort_body),
                                    args.cohort_requests),
        }
        from api.claims_service import ClaimService
        from api.files import FileStore

        target = GraphTarget.from_env(str(graph_dir))
        access = GraphAccess(target)
        claims = ClaimService(Database(data_dir / "medkg-api.sqlite3"), FileStore(data_dir / "files"), access)
        research = ResearchService(access, pseudonym_key("", data_dir), 5)
        direct_calls = {
            "emr_view": lambda i: emr_view(driver, pids[i % len(pids)], conn.database),
            "claim_view": lambda i: claims.get(claim_id),
            "cohort_two_concepts": lambda i: research.cohort(
                [("Disease", disease), ("Drug", drug)], [], None, None),
        }
        # where the two cores go: this process (the httpx clients), `medkg serve`, the graph server's JVM
        watch = {"client": psutil.Process(), "api_server": psutil.Process(proc.pid),
                 "graph_server": psutil.Process(server.status()["pid"])}
        results = {}
        for name, (role, make, n) in views.items():
            direct_calls[name](0)  # warm-up
            d = direct(direct_calls[name], n)
            asyncio.run(under_load(url, keys[role], make, min(n, 40), 4))  # warm-up
            load_results = {str(k): asyncio.run(under_load(url, keys[role], make, n, k, watch=watch))
                            for k in (1, 8, 32)}
            results[name] = {"direct_in_process": d, "api_clients": load_results,
                             "api_overhead_at_1_client": round(load_results["1"]["p50_ms"] / d["p50_ms"], 2)}
        emr = results["emr_view"]
        emr["direct_concurrent_async_driver"] = emr_direct_concurrent(conn, pids, args.requests)
        # the HTTP round trip's floor with this client and server: an unauthenticated route doing nothing
        def healthz(i):
            return "GET", "/healthz", None

        floor = asyncio.run(under_load(url, keys["clinician"], healthz, args.requests, 1))
        async_1 = emr["direct_concurrent_async_driver"]["1"]["p50_ms"]
        emr["http_floor_healthz_1_client"] = floor
        results["client_pool_check"] = {
            "what": "GET /healthz (no work) from 32 concurrent httpx clients: each its own client and connection "
                    "(how the figures above are taken) against one client sharing a pool of 32 connections",
            "own_clients_32": asyncio.run(under_load(url, "", healthz, args.requests, 32)),
            "shared_pool_32": asyncio.run(under_load(url, "", healthz, args.requests, 32, shared_pool=True))}
        emr["api_overhead_at_1_client_vs_async_driver"] = round(emr["api_clients"]["1"]["p50_ms"] / async_1, 2)
        emr["api_minus_http_floor_over_direct"] = round(
            (emr["api_clients"]["1"]["p50_ms"] - floor["p50_ms"]) / emr["direct_in_process"]["p50_ms"], 2)
        emr["http_floor_alone_over_direct"] = round(floor["p50_ms"] / emr["direct_in_process"]["p50_ms"], 2)
        if args.workers > 1:  # the same EMR load on `medkg serve --workers N` (no models: reads only)
            proc.terminate()
            proc.wait(30)
            proc = start_server(data_dir, graph_dir, port, workers=args.workers, MEDKG_API_MODELS="none")
            make = views["emr_view"][1]
            asyncio.run(under_load(url, keys["clinician"], make, 40, 4))  # warm-up
            emr[f"api_clients_workers_{args.workers}"] = {
                str(k): asyncio.run(under_load(url, keys["clinician"], make, args.requests, k)) for k in (1, 32)}
        cohort_size = research.cohort([("Disease", disease), ("Drug", drug)], [], None, None)["count"]
        results["cohort_two_concepts"]["concepts"] = [disease, drug]
        results["cohort_two_concepts"]["patients"] = cohort_size
        access.close()
        driver.close()

        result = {
            "benchmark": "api",
            "cpu": {"model": hw.cpu_model, "isa": hw.isa_summary, "cores": hw.cores},
            "machine": f"load average at the start {load_at_start:.1f}, at the end {os.getloadavg()[0]:.1f} "
                       "(1 min; the machine is shared)",
            "server": "medkg serve: uvicorn, 1 process; embedded ArcadeDB over Bolt, heap " + args.heap,
            "clients": "N clients = N httpx.AsyncClient, one keep-alive connection each, all warmed by one request "
                       "each before the clock starts; this process's start-up heap frozen out of the collector",
            "patients": args.patients,
            "graph_load": {k: loaded[k] for k in ("documents", "mentions", "seconds")},
            "single_bill_upload": upload,
            **results,
            "auth_cache": "verified keys' rows kept in memory per worker (dropped on any commit by another "
                          "connection): every request here after the first hits it; the lookup it saves is one "
                          "indexed SELECT (tens of microseconds); no response or graph cache",
            "targets": {
                "emr_view_p95_ms_at_32_clients": results["emr_view"]["api_clients"]["32"]["p95_ms"],
                "emr_view_p95_below_50ms": results["emr_view"]["api_clients"]["32"]["p95_ms"] < 50,
                "emr_view_overhead_at_1_client": results["emr_view"]["api_overhead_at_1_client"],
                "emr_view_overhead_at_most_1_3": results["emr_view"]["api_overhead_at_1_client"] <= 1.3,
            },
            "phase_seconds": phases,
        }
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
            log = data_dir / "serve.log"
            if log.exists():  # kept for a look after a failed run
                Path(tempfile.gettempdir(), "medkg-api-bench-serve.log").write_bytes(log.read_bytes())
        server.down()
        tmp.cleanup()
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if not args.no_save:
        RESULT.write_text(text + "\n")


if __name__ == "__main__":
    main()

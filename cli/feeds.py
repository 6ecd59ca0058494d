"""`medkg feeds up|down|status|serve|send|run|demo`: HIS feeds (HL7 v2 over MLLP) into the graph.

``up``/``down``/``status`` manage the embedded Valkey buffer (``REDIS_URL`` points elsewhere in production);
``serve`` runs the MLLP gateway; ``send`` is an MLLP client for tests and replays; ``run`` is the streaming
Beam pipeline (one process per core: ``--processes``); ``demo`` does all of it once with the samples.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

feeds_app = typer.Typer(no_args_is_help=True, help="HIS feeds: HL7 v2 over MLLP -> durable stream -> the graph.")
err = Console(stderr=True)
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def _settings():
    from core.settings import get_settings

    return get_settings()


@feeds_app.command("up")
def up() -> None:
    """Start the embedded Valkey buffer on 127.0.0.1 (idempotent; append-only, fsync always)."""
    from feeds.buffer import EmbeddedValkey

    if os.environ.get("REDIS_URL"):
        err.print("REDIS_URL is set: the feeds use that server; nothing to start")
        return
    _print_json(EmbeddedValkey().up())


@feeds_app.command("down")
def down() -> None:
    """Stop the embedded Valkey buffer (idempotent; its data stays on disk)."""
    from feeds.buffer import EmbeddedValkey

    _print_json({"stopped": EmbeddedValkey().down()})


@feeds_app.command("status")
def status() -> None:
    """The buffer server's state and the streams' lengths, pending entries and dead letters."""
    from feeds.buffer import BufferTarget, EmbeddedValkey

    out = {"server": "REDIS_URL" if os.environ.get("REDIS_URL") else EmbeddedValkey().status()}
    try:
        out["streams"] = BufferTarget.from_env(start=False).connect(timeout=3).info()
    except Exception as exc:  # noqa: BLE001 - status never starts anything
        out["streams"] = f"unavailable: {exc}"
    _print_json(out)


@feeds_app.command("serve")
def serve(host: Annotated[str | None, typer.Option(help="listen address (default MEDKG_FEEDS_HOST)")] = None,
          port: Annotated[int | None, typer.Option(help="port (default MEDKG_FEEDS_PORT, 2575)")] = None,
          encoding: Annotated[str | None, typer.Option(help="utf-8 or gb18030 (MSH-18 wins when it names one)")] = None,
          max_frame_bytes: Annotated[int | None, typer.Option(help="largest frame accepted")] = None) -> None:
    """The MLLP gateway: store each message durably, then acknowledge (AA/CA); AR/AE with the reason."""
    from feeds.buffer import BufferTarget
    from feeds.mllp import serve as run_gateway

    s = _settings()
    target = BufferTarget.from_env()
    run_gateway(target, host or s.feeds_host, s.feeds_port if port is None else port, encoding or s.feeds_encoding,
                max_frame_bytes or s.feeds_max_frame_bytes,
                ready=lambda p: err.print(f"MLLP gateway on {host or s.feeds_host}:{p} -> {target.describe()}"))


@feeds_app.command("send")
def send(files: Annotated[list[Path], typer.Argument(help="HL7 v2 files (one or more messages each)", exists=True)],
         host: Annotated[str, typer.Option()] = "127.0.0.1",
         port: Annotated[int | None, typer.Option(help="default MEDKG_FEEDS_PORT")] = None,
         timeout: Annotated[float, typer.Option(help="seconds to wait for each ACK")] = 30.0,
         retries: Annotated[int, typer.Option(help="resend a message that got no ACK or 'unavailable'")] = 3) -> None:
    """Send messages over MLLP and print each acknowledgement (JSON lines). Exit code 1 if any was refused."""
    from feeds.mllp import send_messages, split_messages

    msgs = [(str(f), m) for f in files for m in split_messages(f.read_bytes())]
    acks = send_messages(host, _settings().feeds_port if port is None else port, [m for _, m in msgs], timeout,
                         retries)
    bad = 0
    for (f, _), a in zip(msgs, acks):
        bad += a.code not in ("AA", "CA")
        _print_json({"file": f, "control_id": a.control_id, "ack": a.code or "none", "text": a.text})
    raise typer.Exit(1 if bad else 0)


@feeds_app.command("run", context_settings=EXTRA)
def run(ctx: typer.Context,
        processes: Annotated[int, typer.Option(help="pipeline processes (one per core), consumers of one group")] = 1,
        relations: Annotated[bool, typer.Option(help="extract triples as well as entities")] = True,
        idle_stop: Annotated[float | None, typer.Option(help="end after this many seconds without a message")] = None,
        consumer: Annotated[str, typer.Option(help="consumer name (default host-pid)")] = "",
        buffer_kind: Annotated[str, typer.Option("--buffer", help="redis (REDIS_URL or the embedded Valkey); "
                                                 "kafka is refused: not built")] = "redis",
        runner: Annotated[str | None, typer.Option(help="Beam runner (default FnApiRunner here; FlinkRunner, "
                                                   "PortableRunner on a cluster)")] = None,
        flink_master: Annotated[str | None, typer.Option(help="FlinkRunner: the JobManager, host:port")] = None,
        flink_job_server_jar: Annotated[str | None, typer.Option(
            help="FlinkRunner: Beam's Flink job-server jar from your internal mirror (required: Beam would "
                 "download it otherwise)")] = None,
        job_endpoint: Annotated[str | None, typer.Option(help="PortableRunner: a running job server, host:port")] = None,
        environment_type: Annotated[str | None, typer.Option(help="SDK workers: DOCKER, PROCESS, EXTERNAL or "
                                                             "LOOPBACK")] = None,
        environment_config: Annotated[str | None, typer.Option(help="e.g. the SDK worker image")] = None) -> None:
    """The streaming Beam pipeline: stream -> parse -> NER/assertions/relations -> graph -> XACK. On a cluster:
    ``--runner FlinkRunner --flink-master HOST:PORT --flink-job-server-jar PATH`` (docs/feeds.md); other Beam
    options pass through after ``--``."""
    from pipelines.streaming import DeploymentError, check_deployment, deployment_args, streaming_options

    beam_args = [*deployment_args(runner, flink_master, flink_job_server_jar, job_endpoint, environment_type,
                                  environment_config), *ctx.args]
    try:  # before anything starts: a deployment that cannot work is refused with the reason
        check_deployment(streaming_options(beam_args), buffer=buffer_kind, remote_buffer=bool(os.environ.get(
            "REDIS_URL")), remote_graph=bool(os.environ.get("NEO4J_URI")), processes=processes)
    except DeploymentError as exc:
        err.print(f"feeds run: {exc}")
        raise typer.Exit(2) from None
    if processes > 1:
        _supervise(processes, relations, idle_stop, beam_args)
        return
    from feeds.buffer import BufferTarget
    from pipelines.graphio import GraphTarget
    from pipelines.streaming import StreamConfig
    from pipelines.streaming import run as run_pipeline

    cfg = StreamConfig.from_settings(relations=relations, idle_stop_s=idle_stop, consumer=consumer or None)
    buffer, graph = BufferTarget.from_env(), GraphTarget.from_env()
    err.print(f"feeds run: {buffer.describe()} -> {graph.describe()} (group {buffer.group})")
    _print_json(run_pipeline(buffer, graph, cfg, beam_args))


def process_threads(processes: int) -> int:
    """Inference threads per pipeline process: its share of the cores."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, processes))


def _supervise(n: int, relations: bool, idle_stop: float | None, beam_args: list[str]) -> None:
    """N single-process pipelines; one that dies is started again (its pending entries are reclaimed)."""
    cmd = [sys.executable, "-c", "from cli.main import app; app()", "feeds", "run", "--processes", "1",
           "--relations" if relations else "--no-relations",
           *(["--idle-stop", str(idle_stop)] if idle_stop is not None else []), *beam_args]
    env = dict(os.environ)
    # each process gets its share of the cores for inference: with every process using every core, 2 processes
    # on 2 cores moved 16 messages/s against 30 with one thread each (benchmarks/feeds.py, no relations)
    env.setdefault("MEDKG_THREADS", str(process_threads(n)))
    procs = [subprocess.Popen(cmd, env=env) for _ in range(n)]
    started = {p.pid: time.monotonic() for p in procs}
    quick_deaths = 0  # processes that ended soon after they started, in a row: restarts back off
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while procs:
        time.sleep(1.0)
        for i, p in enumerate(list(procs)):
            rc = p.poll()
            if rc is None:
                continue
            if stopping or (idle_stop is not None and rc == 0):
                procs.remove(p)
            elif rc == 2:  # refused its configuration: another would be refused too
                err.print(f"pipeline process {p.pid} refused its configuration (exit 2); stopping")
                procs.remove(p)
                stop()
                raise typer.Exit(2)
            else:
                quick_deaths = quick_deaths + 1 if time.monotonic() - started.pop(p.pid, 0.0) < 30 else 0
                pause = min(30.0, 2.0 ** quick_deaths) if quick_deaths else 0.0
                err.print(f"pipeline process {p.pid} ended ({rc}); starting another"
                          + (f" in {pause:.0f} s" if pause else ""))
                if pause:
                    time.sleep(pause)
                if stopping:
                    procs.remove(p)
                    continue
                q = subprocess.Popen(cmd, env=env)
                started[q.pid] = time.monotonic()
                procs[procs.index(p)] = q


@feeds_app.command("demo")
def demo(files: Annotated[list[Path] | None, typer.Argument(help="HL7 files (default samples/hl7/)")] = None,
         relations: Annotated[bool, typer.Option(help="extract triples as well as entities")] = True,
         fhir: Annotated[bool, typer.Option(help="also store samples/fhir/ (as the API's FHIR endpoint does)")] = True,
         ) -> None:
    """One command: buffer and graph up, a gateway on a free port, the samples sent over MLLP (and the FHIR
    sample bundle stored as the API would), the pipeline
    run until the stream is drained, then what reached the graph."""
    import asyncio
    import threading

    from feeds.buffer import BufferTarget
    from feeds.mllp import Gateway, GatewayServer, send_messages, split_messages
    from pipelines.graphio import GraphTarget, read_queries
    from pipelines.streaming import StreamConfig
    from pipelines.streaming import run as run_pipeline

    s = _settings()
    files = files or sorted(Path(__file__).resolve().parents[1].joinpath("samples", "hl7").glob("*.hl7"))
    buffer, graph = BufferTarget.from_env(), GraphTarget.from_env()
    srv = GatewayServer(Gateway(buffer, s.feeds_encoding), "127.0.0.1", 0, s.feeds_max_frame_bytes)
    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(srv.start())
    threading.Thread(target=lambda: loop.run_until_complete(srv.serve_forever()), daemon=True).start()
    msgs = [m for f in files for m in split_messages(f.read_bytes())]
    acks = send_messages("127.0.0.1", port, msgs, timeout=30)
    for a in acks:
        err.print(f"  {a.control_id or '?':<18} {a.code} {a.text}")
    if fhir:  # the API's POST /fhir/r4/Bundle calls the same function
        from feeds.fhir import accept

        for f in sorted(Path(__file__).resolve().parents[1].joinpath("samples", "fhir").glob("*.json")):
            status_code, outcome = accept(f.read_bytes(), None, buffer.connect())
            err.print(f"  {f.name:<18} {status_code} {outcome['issue'][0]['diagnostics']}")
    summary = run_pipeline(buffer, graph, StreamConfig.from_settings(relations=relations, idle_stop_s=3.0,
                                                                       claim_idle_ms=5000))
    err.print(f"pipeline: {summary['counters']}")
    rows = read_queries(graph, [
        ("MATCH (p:Patient)-[:HAS_ENCOUNTER]->(e:Encounter) WHERE e.status IS NOT NULL RETURN p.pid AS patient, "
        "p.sex AS sex, p.birth_date AS born, e.eid AS encounter, e.status AS status, e.ward AS ward, "
        "e.admitted_at AS admitted, e.discharged_at AS discharged ORDER BY patient, encounter LIMIT 10"),
        ("MATCH (e:Encounter)-[:HAS_LAB_RESULT]->(l:LabResult) RETURN e.eid AS encounter, l.name AS test, "
        "l.value AS value, l.unit AS unit, l.ref_range AS range, l.abnormal AS flag ORDER BY encounter, test LIMIT 10"),
        ("MATCH (e:Encounter)-[:HAS_DOCUMENT]->(:Document)-[m:MENTIONS]->(c:Concept) RETURN e.eid AS encounter, "
        "m.text AS mention, [l IN labels(c) WHERE l <> 'Concept'][0] AS type, m.assertion AS assertion "
        "ORDER BY encounter, m.start LIMIT 15"),
        ("MATCH (e:Encounter)-[:HAS_CHARGE]->(c:Charge) RETURN e.eid AS encounter, c.name AS item, "
        "c.amount AS amount ORDER BY encounter, item LIMIT 10")])
    for title, block in zip(("encounters", "lab results", "mentions", "charges"), rows):
        _print_json({title: block})

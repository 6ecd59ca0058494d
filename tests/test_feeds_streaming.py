"""The streaming pipeline (pipelines.streaming) against the real Valkey and the real embedded graph server:
order and cancellations in the graph, duplicates applied once, dead letters with stage and reason; and nothing
lost, nothing twice while the gateway, a pipeline process, the Valkey server and the graph server are each
killed with SIGKILL mid-stream (``MEDKG_TEST_FEED_MESSAGES`` messages, default 2000: about 80 s here; every wait is bounded)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from feeds.buffer import BufferTarget, EmbeddedValkey
from feeds.fhir import accept as fhir_accept
from feeds.mllp import Gateway, MllpClient
from graph.server import EmbeddedServer
from pipelines.graphio import GraphTarget, read_queries
from pipelines.streaming import StreamConfig, run

ROOT = Path(__file__).resolve().parents[1]


def hl7(*segs: str) -> bytes:
    return "\r".join(segs).encode("utf-8")


def adt(event: str, ts: str, ctrl: str, pid: str, vid: str, ward: str = "W1", extra: str = "") -> bytes:
    pv1 = f"PV1|1|I|{ward}^01^1" + "|" * 16 + vid + extra
    return hl7(f"MSH|^~\\&|HIS|T|MEDKG|M|{ts}||ADT^{event}|{ctrl}|P|2.5", f"PID|1||{pid}||名^姓||19700101|F", pv1)


def oru(ts: str, ctrl: str, pid: str, vid: str, order: str, value: str) -> bytes:
    return hl7(f"MSH|^~\\&|LIS|T|MEDKG|M|{ts}||ORU^R01|{ctrl}|P|2.5", f"PID|1||{pid}", "PV1|1|I|W1" + "|" * 16 + vid,
               f"OBR|1|{order}|{order}|GLU^血糖", f"OBX|1|NM|GLU^血糖||{value}|mmol/L|3.9-6.1|H|||F")


def mdm(ts: str, ctrl: str, pid: str, vid: str, doc: str, text: str) -> bytes:
    return hl7(f"MSH|^~\\&|EMR|T|MEDKG|M|{ts}||MDM^T02|{ctrl}|P|2.5", f"PID|1||{pid}", "PV1|1|I|W1" + "|" * 16 + vid,
               f"TXA|1|PN|TX|{ts}||||||||{doc}", f"OBX|1|TX|N||{text}")


@pytest.fixture()
def stack(tmp_path):
    valkey = EmbeddedValkey(tmp_path / "feeds")
    valkey.up()
    graph = EmbeddedServer(tmp_path / "graph", heap="512m")
    graph.up()
    try:
        yield (valkey, graph, BufferTarget(None, str(valkey.data_dir)),
               GraphTarget(None, "root", graph.database, str(graph.data_dir)))
    finally:
        valkey.down()
        graph.down()


def test_order_cancellations_duplicates_and_dead_letters(stack):
    _, _, buffer, target = stack
    gw = Gateway(buffer)
    msgs = [
        adt("A01", "20260101100000", "O-1", "P1", "V1", ward="W1"),
        adt("A03", "20260103100000", "O-2", "P1", "V1"),
        adt("A13", "20260103110000", "O-3", "P1", "V1"),  # cancel the discharge
        adt("A08", "20251231100000", "O-4", "P1", "V1", ward="OLD"),  # older than the admission: no effect
        adt("A01", "20260101100000", "O-5", "P2", "V2"),
        adt("A11", "20260101120000", "O-6", "P2", "V2"),  # cancel the admission
        adt("A01", "20260101090000", "O-7", "P2", "V2"),  # a late, older admission: stays cancelled
        oru("20260101110000", "O-8", "P1", "V1", "ORD1", "7.2"),
        oru("20260101100000", "O-9", "P1", "V1", "ORD1", "9.9"),  # an older result for the same test
        mdm("20260101130000", "O-10", "P1", "V1", "DOC1", "患者胸痛两小时，否认发热。"),
    ]
    for m in msgs + msgs:  # every message twice: applied once
        assert gw.accept(m).code == "AA"
    bad = hl7("MSH|^~\\&|HIS|T|MEDKG|M|20260101||ADT^A01|O-BAD|P|2.5", "PID|1||P9", "PV1|1")
    buffer.connect().append({"raw": bad, "source": "mllp", "encoding": "utf-8"})  # bypassing the gateway's check
    assert fhir_accept((ROOT / "samples" / "fhir" / "bundle_inpatient.json").read_bytes(), "Bundle",
                       buffer.connect())[0] == 201
    out = run(buffer, target, StreamConfig(idle_stop_s=2.0, relations=False, claim_idle_ms=60_000))
    assert out["counters"]["feed_read"] == 22
    enc, labs, docs = read_queries(target, [
        ("MATCH (p:Patient)-[:HAS_ENCOUNTER]->(e:Encounter) RETURN p.pid AS pid, e.eid AS eid, e.status AS status, "
        "e.ward AS ward, e.admitted_at AS admitted, e.discharged_at AS discharged ORDER BY eid"),
        ("MATCH (e:Encounter)-[:HAS_LAB_RESULT]->(l:LabResult)-[:OF_TEST]->(t:LabTest) "
        "RETURN l.value AS value, t.key AS test"),
        ("MATCH (e:Encounter {eid: 'V1'})-[:HAS_DOCUMENT]->(d:Document)-[m:MENTIONS]->() "
        "RETURN d.version AS version, count(m) AS mentions")])
    fv, v1, v2 = enc
    assert (fv["eid"], fv["status"], fv["ward"]) == ("DEMO-FV001", "admitted", "GI-0302-02")
    assert (v1["status"], v1["ward"], v1["discharged"]) == ("admitted", "W1-01-1", None)
    assert v1["admitted"] == "2026-01-01T10:00:00.000000Z"
    assert (v2["status"], v2["admitted"]) == ("cancelled", None)
    assert sorted(labs, key=str) == [{"value": "7.2", "test": "血糖"}, {"value": "98", "test": "血红蛋白"}]
    assert docs[0]["version"] == 1 and docs[0]["mentions"] > 0
    info = buffer.connect().info()
    assert info["pending"] == 0 and info["dead_letters"] == 1
    dead = buffer.connect().client.xrange(buffer.dead_stream)[0][1]
    assert dead[b"stage"] == b"parse" and b"PV1-19" in dead[b"reason"] and dead[b"input"] == bad


# --- kill -9 ---------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _medkg(*args: str, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, "-c", "from cli.main import app; app()", *args], env=env, cwd=ROOT,
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} did not open")


def _kill9(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _messages(n: int) -> list[tuple[str, str, bytes]]:
    """(control id, kind, message): admissions, lab results and notes of n/5 patients, interleaved."""
    out = []
    for i in range(n):
        k, p = i % 5, i // 5
        ts = f"202602{1 + p % 28:02d}{(i // 60) % 24:02d}{i % 60:02d}00"
        ctrl = f"K-{i}"
        if k in (0, 1):
            out.append((ctrl, "adt", adt("A01", ts, ctrl, f"KP{i}", f"KV{i}")))
        elif k in (2, 3):
            out.append((ctrl, "oru", oru(ts, ctrl, f"KP{i}", f"KV{i}", f"KO{i}", f"{i % 20}.5")))
        else:
            out.append((ctrl, "mdm", mdm(ts, ctrl, f"KP{i}", f"KV{i}", f"KD{i}", f"患者{i}号，咳嗽三天，否认胸痛。")))
    return out


def _env(valkey, graph, **extra) -> dict:
    env = {**os.environ, "MEDKG_FEEDS_DIR": str(valkey.data_dir), "MEDKG_GRAPH_DIR": str(graph.data_dir),
           "MEDKG_GRAPH_HEAP": "512m", "MEDKG_FEEDS_CLAIM_IDLE_MS": "3000", "MEDKG_FEEDS_BLOCK_MS": "300",
           "MEDKG_FEEDS_READ_COUNT": "32", "MEDKG_THREADS": "1", **extra}
    env.pop("REDIS_URL", None), env.pop("NEO4J_URI", None)
    return env


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def test_entries_are_acknowledged_only_after_the_graph_write(stack, tmp_path):
    """With the graph server away, the entries the pipeline read stay pending (its bundle waits for the graph,
    the rest waits in the stream); once the server is back they are written, and only then acknowledged."""
    valkey, graph, buffer, target = stack
    p = _medkg("feeds", "run", "--no-relations", "--consumer", "solo", env=_env(valkey, graph),
               log=tmp_path / "solo.log")
    try:
        def started():
            try:
                return buffer.connect().client.xinfo_consumers(buffer.stream, buffer.group)
            except Exception:  # noqa: BLE001 - no group yet
                return None

        _until(started, 120, "pipeline started")
        graph.down()
        gw = Gateway(buffer)
        for _, _, m in _messages(20):
            assert gw.accept(m).code == "AA"
        read = _until(lambda: buffer.connect().info()["pending"], 60, "entries read")
        time.sleep(3)  # the bundle waits for the graph (the rest stays unread in the stream): nothing acknowledged
        assert buffer.connect().info()["pending"] == read > 0
        graph.up()
        _until(lambda: (i := buffer.connect().info())["pending"] == 0 and i["unread"] is False, 120,
               "entries written and acknowledged")
        counts = read_queries(target, ["MATCH (e:Encounter) WHERE e.eid STARTS WITH 'KV' RETURN count(e) AS n",
                                       "MATCH (l:LabResult) RETURN count(l) AS n"])
        assert (counts[0][0]["n"], counts[1][0]["n"]) == (20, 8)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            _kill9(p.pid)


def test_nothing_lost_nothing_twice_under_kill_9(stack, tmp_path):
    valkey, graph, buffer, target = stack
    n = int(os.environ.get("MEDKG_TEST_FEED_MESSAGES", "2000"))
    port = _free_port()
    env = _env(valkey, graph, MEDKG_FEEDS_PORT=str(port))
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str) -> None:
        if name == "gateway":
            procs[name] = _medkg("feeds", "serve", env=env, log=tmp_path / "gateway.log")
        else:
            procs[name] = _medkg("feeds", "run", "--no-relations", "--consumer", name, env=env,
                                 log=tmp_path / f"{name}.log")

    msgs = _messages(n)
    pace = max(0.005, 40.0 / n)  # spread the sending over ~40 s, so that every kill lands mid-stream
    acked: dict[str, str] = {}
    done = threading.Event()
    chosen = os.environ.get("MEDKG_TEST_FEED_KILLS", "gateway,pipeline,valkey,graph").split(",")
    plan = [(f, w) for f, w in [(0.2, "gateway"), (0.4, "pipeline"), (0.6, "valkey"), (0.8, "graph")] if w in chosen]
    # the sender does not pass a kill's point before that kill was issued: on a loaded machine restarting the
    # previous victim can take longer than the sending of the rest, and a kill after the last message proves less
    issued = {what: threading.Event() for _, what in plan}
    waits = [(int(frac * n) + 1, issued[what]) for frac, what in plan]

    def sender():
        deadline = time.monotonic() + 240
        client = MllpClient("127.0.0.1", port, timeout=20)
        for i, (ctrl, _, m) in enumerate(msgs):
            for at, event in waits:
                if i == at:
                    event.wait(120)
            while time.monotonic() < deadline:
                try:
                    a = client.send(m)
                except (OSError, TimeoutError, ConnectionError):
                    client.close()
                    time.sleep(0.2)
                    continue
                if a.code == "AA" or (a.code in ("AR", "AE") and "unavailable" not in a.text):
                    acked[ctrl] = a.code
                    break
                time.sleep(0.2)
            time.sleep(pace)
        client.close()
        done.set()

    try:
        start("gateway")
        _wait_port(port)
        start("p1"), start("p2")
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        kills = []
        for frac, what in plan:
            while len(acked) < frac * n and not done.is_set():
                time.sleep(0.05)
            kills.append((what, len(acked)))
            if what == "gateway":
                _kill9(procs["gateway"].pid)
                issued[what].set()
                procs["gateway"].wait(10)
                start("gateway")
            elif what == "pipeline":
                _kill9(procs["p1"].pid)
                issued[what].set()
                procs["p1"].wait(10)
                start("p1")
            elif what == "valkey":
                _kill9(valkey.status()["pid"])
                issued[what].set()
                time.sleep(0.5)
                valkey.up()
            else:
                _kill9(graph.status()["pid"])
                issued[what].set()
                time.sleep(0.5)
                graph.up()
        assert done.wait(300), "the sender did not finish"
        assert all(at < n for _, at in kills), f"a kill came after the last message: {kills}"
        assert len(acked) == n and set(acked.values()) == {"AA"}, "every message ends accepted"
        # drain: the group has read everything and nothing is pending (bounded wait)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            info = buffer.connect().info()
            if info["unread"] is False and info["pending"] == 0:
                break
            time.sleep(1)
        assert info["unread"] is False and info["pending"] == 0, info
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                _kill9(p.pid)

    client = buffer.connect().client
    stored = [f[b"control_id"].decode() for _, f in client.xrange(buffer.stream)]
    dead = client.xrange(buffer.dead_stream)
    assert set(acked) <= set(stored), "an ACK was sent for a message that is not stored"
    assert not dead, [(f[b"stage"], f[b"reason"]) for _, f in dead]
    assert_each_once_in_graph(target, msgs, acked)
    print(f"\n{n} messages, {len(stored)} stream entries ({len(stored) - n} resent after a lost ACK), kills at "
          f"{kills}")


def assert_each_once_in_graph(target, msgs, controls) -> None:
    """Every message of ``controls`` (control ids of the K-series ``msgs``) is in the graph exactly once: its
    encounter with one owner, one lab result per order with one test, its document at version 1."""
    encs, labs, docs = read_queries(target, [
        ("MATCH (e:Encounter) WHERE e.eid STARTS WITH 'KV' AND e.status IS NOT NULL "
         "OPTIONAL MATCH (p:Patient)-[h:HAS_ENCOUNTER]->(e) RETURN e.eid AS eid, count(h) AS owners"),
        ("MATCH (l:LabResult) WHERE l.order STARTS WITH 'KO' OPTIONAL MATCH (l)-[o:OF_TEST]->() "
         "RETURN l.order AS o, count(o) AS tests"),
        "MATCH (d:Document) WHERE d.source_uri STARTS WITH 'hl7:T:K-' RETURN d.source_uri AS uri, d.version AS v"])
    kinds = {c: k for c, k, _ in msgs}
    assert sorted(e["eid"] for e in encs) == sorted(f"KV{c[2:]}" for c in controls if kinds[c] == "adt")
    assert all(e["owners"] == 1 for e in encs)
    assert sorted(r["o"] for r in labs) == sorted(f"KO{c[2:]}" for c in controls if kinds[c] == "oru")
    assert all(r["tests"] == 1 for r in labs)
    assert sorted(d["uri"] for d in docs) == sorted(f"hl7:T:{c}" for c in controls if kinds[c] == "mdm")
    assert all(d["v"] == 1 for d in docs), "a document was written twice"

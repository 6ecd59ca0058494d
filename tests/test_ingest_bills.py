"""`ingest bills` end to end: rendered bills (JPEG, PNG, a two-page scanned PDF) and corrupt files → the real OCR
engine → claims → a real embedded graph server. Nothing is mocked. Seeds 7600-7619 are this file's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_helpers import Bounce, ingest, jsonl, query, start_server, totals
from PIL import Image

from ocr.synth import render_document, render_page

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _save(seed: int, path: Path) -> None:
    Image.fromarray(render_page(seed).image).save(path, quality=90)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("ingest-bills-graph"))
    yield server
    server.down()


@pytest.fixture(scope="module")
def bills(tmp_path_factory) -> tuple[Path, set[str], set[str]]:
    """A folder of three good bills (one an itemised list printed over a two-page PDF), two bad files and a
    file of another kind."""
    d = tmp_path_factory.mktemp("bills")
    _save(7600, d / "a.jpg")
    _save(7601, d / "b.png")
    pages = [Image.fromarray(p.image) for p in render_document(2, rows_per_page=30).pages]  # 38 items, 2 pages
    pages[0].save(d / "c.pdf", save_all=True, append_images=pages[1:], resolution=150)
    (d / "torn.jpg").write_bytes((d / "a.jpg").read_bytes()[:4000])  # a truncated upload
    (d / "empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not a bill: skipped, not an input", encoding="utf-8")
    good = {str(d / n) for n in ("a.jpg", "b.png", "c.pdf")}
    bad = {str(d / n) for n in ("torn.jpg", "empty.png")}
    return d, good, bad


def test_corrupt_files_dead_lettered_rest_written_rerun_changes_nothing(server, bills, tmp_path):
    folder, good, bad = bills
    first = ingest("bills", [folder], tmp_path / "one", server)

    # nothing lost: every input is either in the audit output or in the dead-letter output, once
    assert first["inputs"] == 5 == first["processed"] + first["dead_lettered"] and first["balanced"]
    assert first["processed"] == 3 and first["dead_lettered_by_stage"] == {"read": 2}
    assert first["skipped_files"] == [str(folder / "notes.txt")]
    audit, dead = jsonl(tmp_path / "one" / "audit.jsonl"), jsonl(tmp_path / "one" / "dead_letter.jsonl")
    assert sorted(a["input"] for a in audit) == sorted(good)
    assert sorted(d["input"] for d in dead) == sorted(bad)
    assert {d["reason"] for d in dead} == {"corrupt", "empty"} and all(d["stage"] == "read" for d in dead)
    assert first["counters"]["pages"] == 4  # the PDF's two pages are one claim: the list continues
    pdf = next(a for a in audit if a["input"].endswith("c.pdf"))
    assert pdf["pages"] == 2 and [c["page"] for c in pdf["claims"]] == [0] and pdf["claims"][0]["items"] == 38

    # the graph holds each document once, with one claim per bill and its line items
    for a in audit:
        rows = query(server, f"MATCH (d:Document {{doc_id: '{a['doc_id']}'}}) OPTIONAL MATCH (c:Claim)-[:FROM_DOCUMENT]->(d) "
                             "OPTIONAL MATCH (c)-[:HAS_ITEM]->(i:LineItem) "
                             "RETURN count(DISTINCT d) AS docs, count(DISTINCT c) AS claims, count(i) AS items")
        assert rows == [{"docs": 1, "claims": len(a["claims"]), "items": sum(c["items"] for c in a["claims"])}]
    assert all(c["items"] > 0 for a in audit for c in a["claims"])
    after_first = totals(server)
    assert first["graph"]["delta"]["nodes"] > 0 and first["graph"]["delta"]["relationships"] > 0

    # a second run writes nothing new: identical node and relationship counts
    second = ingest("bills", [folder], tmp_path / "two", server)
    assert (second["processed"], second["dead_lettered"]) == (3, 2)
    assert second["graph"]["delta"] == {"nodes": 0, "relationships": 0}
    assert totals(server) == after_first


def test_graph_server_restart_mid_ingest_writes_every_document_once(server, tmp_path):
    folder = tmp_path / "bills"
    folder.mkdir()
    seeds = (7610, 7611, 7612, 7613)
    for s in seeds:
        _save(s, folder / f"{s}.jpg")
    out = tmp_path / "run"
    bounce = Bounce(server, out / "progress.log", after=1)
    bounce.start()
    summary = ingest("bills", [folder], out, server, graph_batch=1)
    bounce.join()
    assert bounce.error is None and bounce.bounced_at is not None
    assert bounce.done_before < len(seeds)  # the server went down while documents were still to be written

    assert (summary["inputs"], summary["processed"], summary["dead_lettered"]) == (4, 4, 0)
    # the sink met the stopped server and retried (the writer's own loop, or a fresh connection)
    assert summary["counters"]["graph_retries"] + summary["counters"].get("graph_reconnects", 0) > 0
    audit = jsonl(out / "audit.jsonl")
    assert sorted(a["input"] for a in audit) == sorted(str(folder / f"{s}.jpg") for s in seeds)  # once each
    ids = [a["doc_id"] for a in audit]
    rows = query(server, f"MATCH (d:Document) WHERE d.doc_id IN {json.dumps(ids)} "
                         "OPTIONAL MATCH (c:Claim)-[:FROM_DOCUMENT]->(d) RETURN d.doc_id AS id, count(c) AS claims")
    assert sorted((r["id"], r["claims"]) for r in rows) == sorted((i, 1) for i in ids)
    before = totals(server)
    again = ingest("bills", [folder], tmp_path / "again", server)
    assert again["graph"]["delta"] == {"nodes": 0, "relationships": 0} and totals(server) == before


CATEGORIES = ("床位费", "检查费", "化验费", "治疗费", "护理费", "诊察费", "手术费", "西药费", "中成药费", "中药饮片费",
              "卫生材料费", "麻醉费", "其他住院费用", "其他门诊费用")


def test_cli_multiprocessing_with_beam_options_catalogue_and_hospital_register(server, bills, tmp_path):
    """The command line: default runner (FnApiRunner, worker processes), a Beam option passed through, line items
    matched against a catalogue, each claim's hospital against the register (--register reaches the worker
    processes), summary and Cypher query printed, exit 1 because inputs were dead-lettered."""
    _, good, bad = bills
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("编码,名称\n" + "".join(f"C{i:03d},{n}\n" for i, n in enumerate(CATEGORIES)), encoding="utf-8")
    hospitals = {render_page(seed).meta["fields"]["hospital"] for seed in (7600, 7601)}
    register = tmp_path / "register.csv"
    register.write_text("code,name,level\n" + "".join(f"HR{i},{n},3\n" for i, n in enumerate(sorted(hospitals))),
                        encoding="utf-8")
    medkg = str(Path(sys.executable).with_name("medkg"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")} | {"MEDKG_GRAPH_DIR": str(server.data_dir)}
    out = tmp_path / "cli"
    proc = subprocess.run([medkg, "ingest", "bills", *sorted(good | bad), "--out", str(out), "--no-progress",
                           "--catalogue", str(catalogue), "--register", str(register), "--", "--direct_num_workers=2"],
                          cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runner"] == {"runner": "FnApiRunner", "mode": "multi_processing", "workers": 2}
    assert (summary["inputs"], summary["processed"], summary["dead_lettered"]) == (5, 3, 2)
    assert "MATCH (c:Claim)-[:HAS_ITEM]->(i:LineItem)" in proc.stdout and "dead-lettered" in proc.stdout
    assert (out / "pipeline.log").stat().st_size > 0  # Beam's and the workers' logs, off the terminal
    matched = sum(c["matched"] for a in jsonl(out / "audit.jsonl") for c in a["claims"])
    assert matched > 0
    rows = query(server, "MATCH (:LineItem)-[m:MATCHES]->(c:CatalogItem) RETURN count(m) AS n")
    assert rows == [{"n": matched}]
    coded = query(server, "MATCH (c:Claim) WHERE c.hospital_code STARTS WITH 'HR' "
                          "RETURN c.hospital AS name, c.hospital_code AS code, c.hospital_level AS level")
    assert coded and all(r["name"] in hospitals and r["level"] == "3" for r in coded), coded

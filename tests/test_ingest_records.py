"""`ingest records`: record formats sniffed from content, then end to end with the shipped NER model and a real
embedded graph server (nothing mocked): nothing lost, bad inputs dead-lettered, reruns change nothing, a graph
server restart mid-ingest still writes every record exactly once, and the README's main job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_helpers import Bounce, ingest, jsonl, query, start_server, totals

from core.records import ClinicalRecord
from pipelines.sources import CorruptRecordFile, RecordError, parse_records

ROOT = Path(__file__).resolve().parents[1]


def _parse(data: bytes, path: str = "f") -> list:
    return list(parse_records(path, data))


# --- formats (fast, no model) -----------------------------------------------------------------------------


def test_json_lines_with_ids_and_bad_lines():
    lines = [{"text": "患者无发热。", "patient_id": "P1", "encounter_id": 7, "doc_id": "d1", "date": "2026-03-02"},
             "not json", {"note": "no text"}, {"text": "  "}, {"text": "咳嗽三天。", "date": "yesterday"}, [1, 2]]
    data = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines).encode()
    out = _parse(data + b"\n\n", "his.jsonl")
    assert len(out) == 6  # blank lines are not inputs
    ref, rec = out[0]
    assert ref == "his.jsonl:1" and isinstance(rec, ClinicalRecord)
    assert (rec.doc_id, rec.patient_id, rec.encounter_id, str(rec.recorded_on)) == ("d1", "P1", "7", "2026-03-02")
    assert rec.source_uri == "his.jsonl"
    errors = out[1:]
    assert all(isinstance(e, RecordError) for e in errors)
    assert [e.ref for e in errors] == [f"his.jsonl:{i}" for i in range(2, 7)]
    assert "invalid JSON" in errors[0].message and "no text" in errors[1].message
    assert "empty text" in errors[2].message and "invalid field" in errors[3].message


def test_yidu_cmeee_and_plain_text_are_sniffed_from_content():
    yidu = "\ufeff" + "\n".join(json.dumps({"originalText": t, "entities": []}, ensure_ascii=False)
                                for t in ("，患者3月前因腹痛入院。", "右肺结节。"))
    out = _parse(yidu.encode("utf-8"), "subtask1_training_part1.txt")  # Yidu-S4K: JSON lines in a .txt file
    assert [r.text for _, r in out] == ["，患者3月前因腹痛入院。", "右肺结节。"]
    cmeee = json.dumps([{"text": "儿童SARS细胞亚群。", "entities": []}, {"text": "铜含量高的食物。"}], ensure_ascii=False)
    out = _parse(cmeee.encode(), "CMeEE_dev.json")
    assert [ref for ref, _ in out] == ["CMeEE_dev.json[0]", "CMeEE_dev.json[1]"]
    text = "主诉：发热3天。\n{不是JSON}\n"
    (ref, rec), = _parse(text.encode(), "note.txt")
    assert ref == "note.txt" and rec.text == text and rec.doc_id == ClinicalRecord.of(text).doc_id
    one = json.dumps({"text": "一条记录", "patient_id": "P9"}, ensure_ascii=False, indent=2)  # one object, pretty
    (_, rec), = _parse(one.encode(), "one.json")
    assert rec.patient_id == "P9"


@pytest.mark.parametrize("data, reason", [(b"\xff\xfe\x00garbage\x80", "corrupt"), (b"ab\x00cd", "corrupt"),
                                          (b"", "invalid-record"), (b"[1, 2", "corrupt")])
def test_unreadable_files_are_one_error(data, reason):
    (err,) = _parse(data, "x.jsonl")
    assert isinstance(err, RecordError) and err.reason == reason and err.ref == "x.jsonl"
    if reason == "corrupt":
        assert isinstance(err, CorruptRecordFile)


def test_a_bad_first_line_costs_that_line_only():
    out = _parse('{"text": "unterminated\n{"text": "咳嗽三天。"}\n'.encode(), "x.jsonl")
    assert isinstance(out[0], RecordError) and out[0].ref == "x.jsonl:1"
    assert out[1][0] == "x.jsonl:2" and out[1][1].text == "咳嗽三天。"


# --- end to end ---------------------------------------------------------------------------------------------

RECORDS = [  # patients P-A (two encounters) and P-B; one record without ids
    {"doc_id": "r1", "patient_id": "P-A", "encounter_id": "E-A1", "date": "2026-01-05",
     "text": "患者因咳嗽、咳痰一周入院，否认高血压病史，无发热。胸部CT示右下肺炎。诊断：社区获得性肺炎。予头孢曲松抗感染治疗。"},
    {"doc_id": "r2", "patient_id": "P-A", "encounter_id": "E-A1", "date": "2026-01-08",
     "text": "病程记录：患者咳嗽好转，复查血常规白细胞正常，继续头孢曲松治疗。"},
    {"doc_id": "r3", "patient_id": "P-A", "encounter_id": "E-A2", "date": "2026-06-01",
     "text": "门诊：2型糖尿病复诊，规律服用二甲双胍，空腹血糖7.1mmol/L，母亲有糖尿病史。"},
    {"doc_id": "r4", "patient_id": "P-B", "text": "主诉：右下腹痛12小时。腹部彩超示阑尾增粗。行腹腔镜阑尾切除术，术后病理：急性化脓性阑尾炎。"},
]


@pytest.fixture(scope="module")
def tagger_dir():
    from ner.backends import resolve_model_dir

    try:
        return resolve_model_dir()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}: the records pipeline is tested with the shipped NER model")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("ingest-records-graph"))
    yield server
    server.down()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """13 inputs: 10 records in four formats, two bad lines and a corrupt file."""
    d = tmp_path_factory.mktemp("records")
    lines = [json.dumps(r, ensure_ascii=False) for r in RECORDS] + ['{"text": "unterminated', '{"note": "no text"}']
    (d / "his.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (d / "notes").mkdir()
    (d / "notes" / "a.txt").write_text("查体：双肺呼吸音清，未闻及干湿啰音。心率80次/分。", encoding="utf-8")
    (d / "notes" / "b.txt").write_text("出院诊断：胃溃疡伴出血。出院带药：雷贝拉唑。", encoding="utf-8")
    (d / "notes" / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not a record file: skipped, not an input
    (d / "cmeee.json").write_text(json.dumps([{"text": "儿童肺炎支原体感染常见咳嗽。", "entities": []},
                                              {"text": "阿莫西林可用于治疗幽门螺杆菌感染。", "entities": []}],
                                             ensure_ascii=False), encoding="utf-8")
    (d / "yidu.txt").write_text("\ufeff" + "\n".join(json.dumps({"originalText": t, "entities": []}, ensure_ascii=False)
                                                     for t in ("患者1年前行乳腺癌根治术，术后化疗6程。", "头颅MRI未见异常。")),
                                encoding="utf-8")
    (d / "broken.jsonl").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
    return d


def test_graph_sink_dead_letters_only_the_document_the_graph_refuses(server):
    """A batch the writer refuses is split: the refused document is dead-lettered at stage `graph`, the others
    are written (the refusal is real: a relation predicate outside the graph's allow-list)."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from core.records import Entity, EntityType, Relation, Span
    from pipelines.graphio import GraphTarget
    from pipelines.transforms import GraphDoc, WriteToGraph

    text = "肺炎予头孢治疗。"
    disease = Entity(span=Span(start=0, end=2, text="肺炎"), type=EntityType.disease)
    drug = Entity(span=Span(start=3, end=5, text="头孢"), type=EntityType.drug)
    bad = Relation(subject=disease, predicate="NOT_A_PREDICATE", object=drug, evidence=Span(start=0, end=8, text=text))

    def doc(doc_id, relations=()):
        record = ClinicalRecord.of(text, doc_id=doc_id)
        return GraphDoc(doc_id, doc_id, "write_records", ((record, (disease, drug), tuple(relations)),))

    with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = (p | beam.Create([doc("sink-ok-1"), doc("sink-bad", [bad]), doc("sink-ok-2")])
               | WriteToGraph(GraphTarget(data_dir=str(server.data_dir)), batch_size=3, min_batch_size=3))
        assert_that(out.written | "ids" >> beam.Map(lambda r: r["doc_id"]), equal_to(["sink-ok-1", "sink-ok-2"]),
                    label="written")
        assert_that(out.dead_letter | "dead" >> beam.Map(lambda r: (r["input"], r["stage"], r["error"])),
                    equal_to([("sink-bad", "graph", "ValueError")]), label="dead")
    rows = query(server, "MATCH (d:Document) WHERE d.doc_id STARTS WITH 'sink-' RETURN d.doc_id AS d ORDER BY d")
    assert rows == [{"d": "sink-ok-1"}, {"d": "sink-ok-2"}]
    assert not query(server, "MATCH (d:Document {doc_id: 'sink-bad'}) RETURN d")  # refused before any write


@pytest.mark.slow
def test_records_nothing_lost_patients_linked_rerun_changes_nothing(tagger_dir, server, inputs, tmp_path):
    first = ingest("records", [inputs], tmp_path / "one", server)
    assert first["inputs"] == 13 == first["processed"] + first["dead_lettered"] and first["balanced"]
    assert first["processed"] == 10 and first["dead_lettered_by_stage"] == {"read": 3}
    assert first["skipped_files"] == [str(inputs / "notes" / "scan.png")]
    dead = jsonl(tmp_path / "one" / "dead_letter.jsonl")
    assert sorted(d["input"] for d in dead) == sorted([f"{inputs / 'his.jsonl'}:5", f"{inputs / 'his.jsonl'}:6",
                                                       str(inputs / "broken.jsonl")])
    audit = jsonl(tmp_path / "one" / "audit.jsonl")
    assert len(audit) == 10 and len({a["doc_id"] for a in audit}) == 10

    # patients, encounters and documents as the records state them
    rows = query(server, "MATCH (p:Patient)-[:HAS_ENCOUNTER]->(e:Encounter)-[:HAS_DOCUMENT]->(d:Document) "
                         "RETURN p.pid AS p, e.eid AS e, d.doc_id AS d ORDER BY d")
    assert [(r["p"], r["e"], r["d"]) for r in rows] == [("P-A", "E-A1", "r1"), ("P-A", "E-A1", "r2"),
                                                         ("P-A", "E-A2", "r3")]
    assert query(server, "MATCH (p:Patient {pid: 'P-B'})-[:HAS_DOCUMENT]->(d:Document) RETURN d.doc_id AS d") == [
        {"d": "r4"}]

    # every entity found is a mention in the graph, with its assertion
    entities = first["counters"]["entities"]
    assert entities > 0 and entities == sum(a["entities"] for a in audit)
    ids = json.dumps([a["doc_id"] for a in audit])
    mentions = query(server, f"MATCH (d:Document)-[m:MENTIONS]->(c:Concept) WHERE d.doc_id IN {ids} "
                             "RETURN m.text AS text, m.assertion AS assertion")
    # the writer keeps a span once per type and skips spans with no concept key (punctuation alone)
    assert 0.95 * entities <= len(mentions) <= entities
    assert {m["assertion"] for m in mentions} <= {"affirmed", "negated", "possible", "historical", "family"}
    r1 = query(server, "MATCH (:Document {doc_id: 'r1'})-[m:MENTIONS]->() RETURN m.text AS text, m.assertion AS a")
    negated = {m["text"] for m in r1 if m["a"] == "negated"}
    assert negated & {"高血压", "高血压病", "发热"}, r1  # 否认高血压病史，无发热

    after = totals(server)
    second = ingest("records", [inputs], tmp_path / "two", server)
    assert (second["processed"], second["dead_lettered"]) == (10, 3)
    assert second["graph"]["delta"] == {"nodes": 0, "relationships": 0} and totals(server) == after


@pytest.mark.slow
def test_dry_run_writes_nothing_and_accounts_for_everything(tagger_dir, server, inputs, tmp_path):
    before = totals(server)
    s = ingest("records", [inputs], tmp_path / "dry", server, dry_run=True)
    assert (s["inputs"], s["processed"], s["dead_lettered"]) == (13, 10, 3) and s["balanced"]
    assert s["graph"]["target"] == "none (dry run)" and s["show"] == {}
    assert len(jsonl(tmp_path / "dry" / "audit.jsonl")) == 10 and totals(server) == before


def test_worker_threads_oversubscribe_twice_at_most():
    from pipelines.ingest import worker_threads

    assert [worker_threads(2, w) for w in (1, 2, 4)] == [2, 2, 1]
    assert [worker_threads(16, w) for w in (1, 4, 16, 32)] == [16, 8, 2, 1]


def test_beam_workers_load_runinference_without_torch(tmp_path):
    """Beam's optional GPU model manager imports torch and scipy (~1.3 CPU-s a process): pipelines.lean keeps
    it out of the driver and of every worker, which meets pipelines.records (the read stage) first."""
    import apache_beam as beam

    from pipelines.ingest import pipeline_options
    from pipelines.records import ReadRecords
    from pipelines.transforms import DEAD

    def probe(_):
        import sys

        import apache_beam.ml.inference.base  # noqa: F401 - what the RunInference stages import next

        return str(sorted({"torch", "scipy.optimize"} & set(sys.modules)))

    src = tmp_path / "r.jsonl"
    src.write_text('{"text": "患者发热。"}\n{"text": "咳嗽。"}\n', encoding="utf-8")
    with beam.Pipeline(options=pipeline_options(["--direct_num_workers=2"])) as p:
        read = p | beam.Create([str(src)]) | beam.ParDo(ReadRecords()).with_outputs(DEAD, main="records")
        _ = read.records | beam.Map(probe) | beam.io.WriteToText(str(tmp_path / "probe"))
    assert {line for f in tmp_path.glob("probe*") for line in f.read_text().split()} == {"[]"}
    driver = subprocess.run([sys.executable, "-c", "import sys, pipelines.records; print('torch' in sys.modules)"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    assert driver.stdout.strip() == "False"


@pytest.mark.slow
def test_graph_server_restart_mid_ingest_writes_every_record_once(tagger_dir, server, tmp_path):
    records = [{"doc_id": f"k{i:02d}", "patient_id": f"PK{i % 4}", "encounter_id": f"EK{i % 8}",
                "text": f"第{i}次随访：患者诉头痛{i}天，无恶心呕吐，血压150/95mmHg，予硝苯地平降压治疗。"} for i in range(24)]
    path = tmp_path / "followups.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    out = tmp_path / "run"
    bounce = Bounce(server, out / "progress.log", after=1, down_s=6)
    bounce.start()
    summary = ingest("records", [path], out, server, graph_batch=1)
    bounce.join()
    assert bounce.error is None and bounce.done_before < len(records)
    assert (summary["inputs"], summary["processed"], summary["dead_lettered"]) == (24, 24, 0), \
        (out / "dead_letter.jsonl").read_text(encoding="utf-8")
    assert summary["counters"]["graph_retries"] + summary["counters"].get("graph_reconnects", 0) > 0
    audit = jsonl(out / "audit.jsonl")
    assert sorted(a["doc_id"] for a in audit) == [r["doc_id"] for r in records]  # once each
    per_doc = {r["d"]: (r["n"], r["distinct"]) for r in query(
        server, "MATCH (d:Document) WHERE d.doc_id STARTS WITH 'k' OPTIONAL MATCH (d)-[m:MENTIONS]->(c) "
                "RETURN d.doc_id AS d, count(m) AS n, count(DISTINCT [m.start, m.end, elementId(c)]) AS distinct")}
    entities = {a["doc_id"]: a["entities"] for a in audit}
    assert per_doc.keys() == entities.keys()
    assert all(n == distinct <= entities[d] for d, (n, distinct) in per_doc.items())  # no mention written twice
    assert sum(n for n, _ in per_doc.values()) >= 0.95 * sum(entities.values())  # none lost
    before = totals(server)
    again = ingest("records", [path], tmp_path / "again", server)
    assert again["graph"]["delta"] == {"nodes": 0, "relationships": 0} and totals(server) == before


@pytest.mark.slow
def test_main_job_ingests_the_samples(tagger_dir, tmp_path):
    """README's main job, as `make run` runs it: the shipped bills and records in one pipeline, on worker
    processes, into a fresh embedded graph; a summary and the Cypher queries with their first rows."""
    medkg = str(Path(sys.executable).with_name("medkg"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")} | {"MEDKG_GRAPH_DIR": str(tmp_path / "g")}
    out = tmp_path / "out"
    try:
        proc = subprocess.run([medkg, "ingest", "all", "samples/bill.jpg", "samples/itemised.jpg",
                               "samples/records.jsonl", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        summary = json.loads((out / "summary.json").read_text())
        n_records = len((ROOT / "samples" / "records.jsonl").read_text(encoding="utf-8").splitlines())
        assert (summary["inputs"], summary["processed"], summary["dead_lettered"]) == (2 + n_records, 2 + n_records, 0)
        assert summary["counters"]["entities"] > 0 and summary["graph"]["delta"]["relationships"] > 0
        assert "MATCH (c:Claim)" in proc.stdout and "MATCH (d:Document)-[m:MENTIONS]->(c:Concept)" in proc.stdout
        assert "E0001-01" in proc.stdout  # the preview lists mentions by encounter
        # relations ran too: attribute links (doses, lab values) and concept-to-concept triples with evidence
        assert summary["counters"]["relations"] > 0 and "MATCH (a:Concept)-[r]->(b:Concept)" in proc.stdout
        assert "药物治疗" in proc.stdout or "临床表现" in proc.stdout, proc.stdout  # CMeIE labels beside the types
    finally:
        subprocess.run([medkg, "graph", "down"], env=env, capture_output=True, timeout=120, check=False)

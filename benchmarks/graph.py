"""Graph writer and EMR-view benchmark on the embedded server (ArcadeDB over Bolt). Prints one JSON object
and saves a copy to benchmarks/results/graph.json (unless --no-save).

1. Load: a generated graph of --patients patients (default 57,000, the record count of the source case
   study) through ``GraphWriter.write_records`` in 10,000-row transactions (one writer thread, generation in
   another). Per patient 1-3 encounters, 1-2 documents each, 10-30 mentions over a few thousand concepts
   drawn with a Zipf-like law (s = 1.1), about a third of them in relation sentences (disease -> symptom /
   drug / exam / lab test, from a fixed association table so evidence accumulates); assertions 80 % affirmed, 12 % negated,
   5 % possible, 3 % historical. The text of each document is built with the mentions, so offsets,
   sentences and evidence are real.
2. Re-ingest: the same generated data (same seed) written again; node and relationship counts must stay
   identical (the writer skips documents whose content hash is unchanged).
3. EMR view: ``graph.queries.emr_view`` for --queries random patients (after a warm-up), p50/p95 latency;
   and ``cohort`` for a frequent and a rarer disease. Measured before step 4 adds its rows.
4. Ingest rate by batch size: ``GraphWriter.merge_relationships`` (one ``UNWIND $rows MERGE`` statement
   per transaction) of fresh MENTIONS rows, each row a new relationship between an existing document and
   concept of the loaded graph, for batch sizes 1, 100, 1,000 and 10,000 (fresh rows for each size; fewer
   rows for the small sizes, reported as rows/s). The records path (``write_records``, about a dozen
   statements per transaction) is measured too: one document per transaction vs. big batches.

The server runs in a temporary data dir (or --data-dir, or MEDKG_GRAPH_DIR), never the user's graph.

    .venv/bin/python benchmarks/graph.py [--patients 57000] [--queries 500] [--heap 3g] [--seed 0]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import os
import platform
import queue
import random
import statistics
import tempfile
import threading
import time
from datetime import date, timedelta

import numpy as np

from core.records import ClinicalRecord, Entity, EntityType, Relation, Span
from graph.model import concept_key
from graph.queries import cohort, emr_view
from graph.schema import init_schema
from graph.server import EmbeddedServer
from graph.writer import GraphWriter

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "graph.json"

# --- a synthetic vocabulary ----------------------------------------------------------------------------------


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ORGANS = words("胃 肺 肝 肾 心 脑 胆 胰 脾 结肠 直肠 食管 甲状腺 乳腺 前列腺 膀胱 子宫 卵巢 骨 关节 皮肤 眼 耳 鼻 咽 喉 "
              "气管 支气管 血管 冠状动脉 十二指肠 小肠 腰椎 颈椎 膝 髋 淋巴结 鼻窦 口腔 牙龈")
DISEASE_PRE = ("", "急性", "慢性", "原发性", "继发性", "复发性", "良性", "恶性")
DISEASE_SUF = words("炎 癌 结石 囊肿 息肉 衰竭 梗死 出血 溃疡 纤维化 功能不全 增生 肿瘤 结核 硬化")
SYMPTOM_SUF = words("痛 肿胀 出血 麻木 不适 压痛 胀满 瘙痒 疼痛 积液")
SYMPTOMS = words("发热 咳嗽 咳痰 乏力 头晕 头痛 恶心 呕吐 腹泻 便秘 胸闷 气促 心悸 纳差 消瘦 盗汗 水肿 黄疸 皮疹 失眠")
SYLLABLES = words("阿 莫 西 林 头 孢 克 洛 沙 星 替 尼 普 利 地 平 奥 美 拉 唑 布 洛 芬 硝 酸 甘 油 二 甲 双 胍 他 汀 素")
DRUG_SUF = ("片", "胶囊", "注射液", "缓释片", "颗粒", "")
PROC_SUF = words("切除术 修补术 置换术 造影术 活检术 引流术 成形术 吻合术")
EXAM_SUF = words("CT 彩超 MRI 内镜检查 X线 PET-CT 超声心动图")
LABS = words("血常规 尿常规 肝功能 肾功能 血糖 糖化血红蛋白 血脂 凝血功能 电解质 C反应蛋白 降钙素原 肿瘤标志物 甲功 心肌酶")
COUNTS = {"Disease": 900, "Symptom": 420, "Drug": 900, "Procedure": 320, "Exam": 280, "LabTest": 200}
ASSERTIONS = (("affirmed", 0.80), ("negated", 0.12), ("possible", 0.05), ("historical", 0.03))
TEMPLATES = {  # sentence templates per type and assertion; {} is the mention
    "Disease": {"affirmed": "诊断{}。", "negated": "否认{}。", "possible": "考虑{}可能。", "historical": "既往{}病史。"},
    "Symptom": {"affirmed": "患者诉{}。", "negated": "无{}。", "possible": "偶有{}？", "historical": "曾有{}。"},
    "Drug": {"affirmed": "予{}治疗。", "negated": "未用{}。", "possible": "拟加用{}。", "historical": "既往服用{}。"},
    "Procedure": {"affirmed": "行{}。", "negated": "未行{}。", "possible": "拟行{}。", "historical": "曾行{}。"},
    "Exam": {"affirmed": "{}提示异常。", "negated": "{}未见异常。", "possible": "建议{}。", "historical": "既往{}异常。"},
    "LabTest": {"affirmed": "{}升高。", "negated": "{}正常。", "possible": "复查{}。", "historical": "既往{}异常。"},
}
PAIRS = {  # relation sentences: object type -> (predicate, template with subject then object)
    "Symptom": ("临床表现", "{}表现为{}。"),
    "Drug": ("药物治疗", "{}予{}治疗。"),
    "Exam": ("影像学检查", "{}经{}证实。"),
    "LabTest": ("实验室检查", "{}查{}异常。"),
}
TYPE_MIX = (("Disease", 0.28), ("Symptom", 0.27), ("Drug", 0.2), ("Exam", 0.1), ("LabTest", 0.08),
            ("Procedure", 0.07))


def vocabulary(rng: random.Random) -> dict[str, list[str]]:
    def unique(make, n):
        out: dict[str, None] = {}
        while len(out) < n:
            out[make()] = None
        return list(out)

    return {
        "Disease": unique(lambda: rng.choice(DISEASE_PRE) + rng.choice(ORGANS) + rng.choice(DISEASE_SUF),
                          COUNTS["Disease"]),
        "Symptom": list(SYMPTOMS) + unique(lambda: rng.choice(ORGANS) + rng.choice(SYMPTOM_SUF),
                                     COUNTS["Symptom"] - len(SYMPTOMS)),
        "Drug": unique(lambda: "".join(rng.choices(SYLLABLES, k=rng.randint(3, 5))) + rng.choice(DRUG_SUF),
                       COUNTS["Drug"]),
        "Procedure": unique(lambda: rng.choice(ORGANS) + rng.choice(PROC_SUF), COUNTS["Procedure"]),
        "Exam": unique(lambda: rng.choice(ORGANS) + rng.choice(EXAM_SUF), COUNTS["Exam"]),
        "LabTest": list(LABS) + unique(lambda: rng.choice(ORGANS) + rng.choice(LABS), COUNTS["LabTest"] - len(LABS)),
    }


class Generator:
    """Deterministic synthetic patients: the same seed gives the same records, so a second run re-ingests."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.seed = seed
        self.vocab = vocabulary(rng)
        self.weights = {t: self._zipf(len(names)) for t, names in self.vocab.items()}
        # each disease has a few typical symptoms, drugs, exams, lab tests: relations repeat across patients
        self.assoc = {d: {t: rng.sample(range(len(self.vocab[t])), 6) for t in PAIRS}
                      for d in range(len(self.vocab["Disease"]))}

    @staticmethod
    def _zipf(n: int, s: float = 1.1) -> np.ndarray:
        w = 1.0 / np.arange(1, n + 1) ** s
        return np.cumsum(w / w.sum())

    def _pick(self, rng: random.Random, t: str) -> int:
        return int(np.searchsorted(self.weights[t], rng.random(), side="right").clip(0, len(self.vocab[t]) - 1))

    def patient(self, i: int) -> list[tuple[ClinicalRecord, list[Entity], list[Relation]]]:
        rng = random.Random(self.seed * 1_000_003 + i)
        pid = f"P{i:06d}"
        n_mentions = rng.randint(10, 30)
        encounters = rng.randint(1, 3)
        docs = [(e, k) for e in range(encounters) for k in range(rng.randint(1, 2))]
        day0 = date(2018, 1, 1) + timedelta(days=rng.randrange(2500))
        out, budget = [], n_mentions
        for j, (e, k) in enumerate(docs):
            share = budget if j == len(docs) - 1 else max(1, round(n_mentions / len(docs)))
            budget -= share
            out.append(self._document(rng, pid, e, k, max(1, share), day0 + timedelta(days=40 * e + k)))
        return out

    def _document(self, rng, pid, e, k, n, day):
        text, ents, rels = [], [], []
        pos = 0

        def add(sentence_parts):
            nonlocal pos
            sentence = "".join(p if isinstance(p, str) else p[0] for p in sentence_parts)
            spans, cur = [], pos
            for p in sentence_parts:
                if isinstance(p, str):
                    cur += len(p)
                else:
                    spans.append(Span(start=cur, end=cur + len(p[0]), text=p[0]))
                    cur += len(p[0])
            text.append(sentence)
            evidence = Span(start=pos, end=pos + len(sentence), text=sentence)
            pos += len(sentence)
            return spans, evidence

        while n > 0:
            if n >= 2 and rng.random() < 0.2:  # a relation sentence: disease + associated concept
                t = rng.choice(tuple(PAIRS))
                d = self._pick(rng, "Disease")
                o = self.assoc[d][t][min(int(rng.expovariate(0.7)), 5)]
                dn, on = self.vocab["Disease"][d], self.vocab[t][o]
                predicate, tpl = PAIRS[t]
                a, b = tpl.split("{}")[1], tpl.split("{}")[2]
                (s1, s2), ev = add([(dn,), a, (on,), b])
                de = Entity(span=s1, type=EntityType.disease, confidence=0.95, model="bench-ner")
                oe = Entity(span=s2, type=EntityType(t), confidence=0.93, model="bench-ner")
                ents += [de, oe]
                rels.append(Relation(subject=de, predicate=predicate, object=oe, evidence=ev, confidence=0.9,
                                     model="bench-re"))
                n -= 2
            else:
                t = rng.choices([x for x, _ in TYPE_MIX], [w for _, w in TYPE_MIX])[0]
                assertion = rng.choices([x for x, _ in ASSERTIONS], [w for _, w in ASSERTIONS])[0]
                name = self.vocab[t][self._pick(rng, t)]
                before, after = TEMPLATES[t][assertion].split("{}")
                (span,), _ = add([before, (name,), after])
                ents.append(Entity(span=span, type=EntityType(t), assertion=assertion, confidence=0.9,
                                   model="bench-ner"))
                n -= 1
        record = ClinicalRecord(doc_id=f"D{pid[1:]}-{e}-{k}", text="".join(text), patient_id=pid,
                                encounter_id=f"E{pid[1:]}-{e}", recorded_on=day)
        return record, ents, rels


# --- measurements ----------------------------------------------------------------------------------------------

def load(driver, database, gen: Generator, patients: int, per_call: int) -> dict:
    """Generate patients in one thread and write them ``per_call`` at a time from another. One writer: on
    ArcadeDB, parallel big transactions touching the same hot concepts and relations conflict, and a
    conflict retries the whole batch (measured: two writers were half as fast as one)."""
    work: queue.Queue = queue.Queue(maxsize=2)
    stats = {"documents": 0, "mentions": 0, "relations": 0}
    writer = GraphWriter(driver, database, batch_size=10_000)
    errors: list[Exception] = []

    def consume():
        try:
            while (batch := work.get()) is not None:
                writer.write_records(batch)
        except Exception as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)
            while work.get() is not None:  # drain so the producer does not block
                pass

    thread = threading.Thread(target=consume)
    thread.start()
    t0 = time.perf_counter()
    for start in range(0, patients, per_call):
        batch = [doc for i in range(start, min(patients, start + per_call)) for doc in gen.patient(i)]
        stats["documents"] += len(batch)
        stats["mentions"] += sum(len(d[1]) for d in batch)
        stats["relations"] += sum(len(d[2]) for d in batch)
        work.put(batch)
    work.put(None)
    thread.join()
    if errors:
        raise errors[0]
    seconds = time.perf_counter() - t0
    return {**stats, "seconds": round(seconds, 1), "documents_per_s": round(stats["documents"] / seconds),
            "mentions_per_s": round(stats["mentions"] / seconds), "retried": dict(writer.retried)}


def graph_counts(driver, database) -> dict:
    with driver.session(database=database) as s:
        nodes = s.run("MATCH (n) RETURN count(n) AS n").single()["n"]
        rels = s.run("MATCH ()-[r]->() RETURN count(r) AS n").single()["n"]
        by_label = {label: s.run(f"MATCH (n:{label}) RETURN count(n) AS n").single()["n"]
                    for label in ("Patient", "Encounter", "Document", "Concept")}
        by_type = {t: s.run(f"MATCH ()-[r:{t}]->() RETURN count(r) AS n").single()["n"]
                   for t in ("MENTIONS", "HAS_DOCUMENT", "HAS_ENCOUNTER")}
    return {"nodes": nodes, "relationships": rels, **by_label, **by_type}


def ingest_rates(driver, database, gen: Generator, patients: int) -> dict:
    """merge_relationships rows/s per batch size: fresh MENTIONS rows between loaded documents and concepts."""
    rng = random.Random(7)
    plan = {1: 500, 100: 10_000, 1_000: 50_000, 10_000: 100_000}
    docs = [f"D{i:06d}-0-0" for i in rng.sample(range(patients), min(patients, 20_000))]  # all patients have 0-0
    keys = [concept_key(name) for name in gen.vocab["Disease"]]
    out, offset = {}, 10_000_000  # offsets far beyond any real mention: every row creates a relationship
    for size, n in plan.items():
        writer = GraphWriter(driver, database, batch_size=size)
        rows = [{"start": docs[i % len(docs)], "end": keys[rng.randrange(len(keys))],
                 "props": {"start": offset + i, "end": offset + i + 3, "text": "x", "assertion": "affirmed",
                           "model": "bench"}} for i in range(n)]
        offset += n
        t0 = time.perf_counter()
        writer.merge_relationships("MENTIONS", ("Document", "doc_id"), ("Disease", "key"), rows,
                                   rel_key=("start", "end"))
        dt = time.perf_counter() - t0
        out[str(size)] = {"rows": n, "seconds": round(dt, 2), "rows_per_s": round(n / dt)}
    return out


def records_rates(driver, database, gen: Generator, first: int) -> dict:
    """write_records: one document per transaction vs. 10,000-row batches, on new patients."""
    out = {}
    for label, batch_size, patients in (("one_document_per_transaction", 1, 60), ("batched_10000", 10_000, 1500)):
        docs = [d for i in range(first, first + patients) for d in gen.patient(i)]
        first += patients
        writer = GraphWriter(driver, database, batch_size=batch_size)
        rels = sum(len(d[1]) + len(d[2]) for d in docs)  # mentions + relation evidence
        t0 = time.perf_counter()
        writer.write_records(docs)
        dt = time.perf_counter() - t0
        out[label] = {"documents": len(docs), "relationships": rels, "seconds": round(dt, 2),
                      "documents_per_s": round(len(docs) / dt, 1), "relationships_per_s": round(rels / dt)}
    out["speedup"] = round(out["batched_10000"]["relationships_per_s"]
                           / out["one_document_per_transaction"]["relationships_per_s"], 1)
    return out


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def emr_latency(driver, database, patients: int, n: int) -> dict:
    rng = random.Random(11)
    pids = [f"P{rng.randrange(patients):06d}" for _ in range(n)]
    for pid in pids[:20]:  # warm-up
        emr_view(driver, pid, database)
    times, sizes = [], []
    for pid in pids:
        t0 = time.perf_counter()
        view = emr_view(driver, pid, database)
        times.append((time.perf_counter() - t0) * 1000)
        sizes.append(sum(len(v) for v in view["concepts"].values()))
    return {"queries": n, "p50_ms": round(statistics.median(times), 2), "p95_ms": round(percentile(times, 95), 2),
            "max_ms": round(max(times), 2), "mentions_per_view_mean": round(statistics.mean(sizes), 1)}


def cohort_latency(driver, database, gen: Generator) -> dict:
    out = {}
    for rank in (0, 50):
        disease = gen.vocab["Disease"][rank]
        t0 = time.perf_counter()
        pids = cohort(driver, [("Disease", disease)], [("Symptom", gen.vocab["Symptom"][0])], database)
        out[f"disease_rank_{rank}"] = {"ms": round((time.perf_counter() - t0) * 1000, 1), "patients": len(pids)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=57_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--heap", default="3g")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-call", type=int, default=400, help="patients per write_records call while loading")
    ap.add_argument("--data-dir", default=os.environ.get("MEDKG_GRAPH_DIR"))
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="medkg-graph-bench-")
    server = EmbeddedServer(args.data_dir or tmp.name, heap=args.heap)
    import neo4j

    phases: dict[str, float] = {}

    def timed(name, fn, *a):
        t0 = time.perf_counter()
        out = fn(*a)
        phases[name] = round(time.perf_counter() - t0, 1)
        return out

    try:
        conn = timed("server_start", server.connection)
        with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
            db = conn.database
            init_schema(driver, db)
            gen = Generator(args.seed)
            first = timed("load", load, driver, db, gen, args.patients, args.per_call)
            counts = timed("count", graph_counts, driver, db)
            second = timed("reingest", load, driver, db, gen, args.patients, args.per_call)
            again = graph_counts(driver, db)
            emr = timed("emr_view", emr_latency, driver, db, args.patients, args.queries)
            cohorts = timed("cohort", cohort_latency, driver, db, gen)
            rates = timed("merge_relationships", ingest_rates, driver, db, gen, args.patients)
            records = timed("write_records", records_rates, driver, db, gen, args.patients)
            info = driver.get_server_info().agent
        result = {
            "benchmark": "graph",
            "server": f"embedded ArcadeDB ({info}), heap {args.heap}",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average at the end "
                       f"{os.getloadavg()[0]:.1f} (the machine is shared)",
            "patients": args.patients,
            "graph": counts,
            "load": {**first, "batch_size_rows": 10_000, "patients_per_call": args.per_call},
            "reingest": {**second, "counts_identical": counts == again},
            "emr_view": emr,
            "cohort": cohorts,
            "merge_relationships_rows_per_s": rates,
            "batched_vs_single_row": round(rates["10000"]["rows_per_s"] / rates["1"]["rows_per_s"], 1),
            "write_records": records,
            "phase_seconds": phases,
        }
    finally:
        server.down()
        if tmp is not None:
            tmp.cleanup()
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if not args.no_save:
        RESULT.write_text(text + "\n")


if __name__ == "__main__":
    main()

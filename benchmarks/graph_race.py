"""Writers racing on one graph: how often a round fails or hangs. Prints one JSON object and saves a copy to
benchmarks/results/graph_race.json (unless --no-save).

Each round, four threads share one driver (as the API's request threads do) and each writes the same 12
documents (two concepts and one relation each, in transactions of two documents) and the same 30 concept
nodes, starting at different documents, through ``GraphWriter`` on the embedded server (ArcadeDB over Bolt).
The races are real: write conflicts, constraint errors on concurrent ``MERGE``, and (rarely) a record read
while another transaction rewrites it. A round *fails* when a writer raises, and *stalls* when a writer gets
no answer within --stall-s (its thread is left behind, blocked; the next rounds go on).

Variants, run one after the other on one server, each with its own driver:
- ``session_closes``: the writer as shipped (``graph.writer.in_transaction``: the session closes the
  transaction);
- ``transaction_closes``: the same writer with the transaction closed by its own context manager
  (``with session.begin_transaction() as tx``), as before the fix; with ``neo4j`` 6.4 a failed transaction's
  close reads a connection already handed to another thread.

    .venv/bin/python benchmarks/graph_race.py [--rounds 1000] [--variants session_closes transaction_closes]
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
import tempfile
import threading
import time
from collections import Counter

import neo4j

import graph.writer as writer_module
from core.hardware import probe
from core.records import ClinicalRecord, Entity, EntityType, Relation, Span
from graph.model import Sentences
from graph.schema import init_schema
from graph.server import EmbeddedServer
from graph.writer import GraphWriter

RESULTS = Path(__file__).resolve().parent / "results" / "graph_race.json"
WRITERS = 4


def transaction_closes(driver, database, work):
    """The transaction closed by its own context manager (the writer before the fix)."""
    with driver.session(database=database) as session, session.begin_transaction() as tx:
        result = work(tx)
        tx.commit()
        return result


VARIANTS = {"session_closes": writer_module.in_transaction, "transaction_closes": transaction_closes}


def _entity(text: str, surface: str, type_: str) -> Entity:
    start = text.index(surface)
    return Entity(span=Span(start=start, end=start + len(surface), text=surface), type=EntityType(type_),
                  assertion="affirmed", confidence=0.9, model="race")


def documents(uid: str) -> list[tuple[ClinicalRecord, list[Entity], list[Relation]]]:
    out = []
    for i in range(12):
        text = f"病{uid}{i % 4}伴症{uid}{i % 3}。"
        d, s = _entity(text, f"病{uid}{i % 4}", "Disease"), _entity(text, f"症{uid}{i % 3}", "Symptom")
        a, b = Sentences(text).bounds(0)
        r = Relation(subject=d, predicate="临床表现", label="", object=s, evidence=Span(start=a, end=b, text=text[a:b]),
                     model="race")
        out.append((ClinicalRecord.of(text, doc_id=f"doc-{uid}-{i}", patient_id=f"p-{uid}-{i % 5}"), [d, s], [r]))
    return out


def race_round(driver, database: str, uid: str, stall_s: float) -> tuple[str, Counter, list[BaseException]]:
    """One round: 'ok', 'failed' or 'stalled', the writers' retries by error class, and what they raised."""
    docs = documents(uid)
    writers = [GraphWriter(driver, database, batch_size=2, backoff_s=0.01) for _ in range(WRITERS)]
    errors: list[BaseException] = []

    def work(w: GraphWriter, k: int) -> None:
        try:
            w.write_records(docs[k:] + docs[:k])
            w.merge_nodes("Disease", "key", [{"key": f"race-{uid}-{j}"} for j in range(30)])
        except Exception as exc:  # noqa: BLE001 - counted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w, 3 * k), daemon=True) for k, w in enumerate(writers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + stall_s
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    retried = sum((w.retried for w in writers), Counter())
    if any(t.is_alive() for t in threads):
        return "stalled", retried, errors
    return ("failed" if errors else "ok"), retried + Counter(f"raised {type(e).__name__}" for e in errors), errors


def run_variant(conn, name: str, rounds: int, stall_s: float) -> dict:
    writer_module.in_transaction = VARIANTS[name]  # GraphWriter.transact calls it by its module name
    outcome: Counter = Counter()
    retried: Counter = Counter()
    first_stall = None
    raised: dict[str, str] = {}  # one message per error class a writer raised
    t0 = time.monotonic()
    with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
        for i in range(rounds):
            result, r, errors = race_round(driver, conn.database, f"{name[:1]}{i:05d}", stall_s)
            for e in errors:
                raised.setdefault(type(e).__name__, f"round {i}: {e}"[:400])
            outcome[result] += 1
            retried += r
            if result == "stalled":
                first_stall = i
                break  # a stalled thread holds a pooled connection: this driver is not trusted further
    return {"rounds": sum(outcome.values()), **{k: outcome[k] for k in ("ok", "failed", "stalled")},
            "first_stall_at_round": first_stall, "retried": dict(retried.most_common()), "raised": raised,
            "seconds": round(time.monotonic() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1000, help="rounds per variant (default 1000)")
    ap.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--stall-s", type=float, default=60.0, help="a round with a writer silent this long stalled")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    original = writer_module.in_transaction
    with tempfile.TemporaryDirectory(prefix="graph-race-") as tmp:
        server = EmbeddedServer(tmp, heap="1g")
        conn = server.connection()
        try:
            with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
                init_schema(driver, conn.database)
            variants = {name: run_variant(conn, name, args.rounds, args.stall_s) for name in args.variants}
        finally:
            writer_module.in_transaction = original
            server.down()
    out = {"benchmark": "graph-race", "command": "python benchmarks/graph_race.py " + " ".join(sys.argv[1:]),
           "cpu": {"model": probe().cpu_model, "cores": os.cpu_count()}, "python": platform.python_version(),
           "neo4j_driver": neo4j.__version__,
           "writers": WRITERS, "stall_s": args.stall_s, "variants": variants}
    text = json.dumps(out, ensure_ascii=False, indent=1)
    print(text)
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()

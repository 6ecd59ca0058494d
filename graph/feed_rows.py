"""What HIS feeds add to the graph (feeds.hl7v2 / feeds.fhir ``FeedMessage.ops``), in Neo4j 5 Cypher.

Additions to the graph model (all additive; existing nodes only gain properties)::

    (:Patient {pid, sex, birth_date})
    (:Patient)-[:HAS_ENCOUNTER]->(:Encounter {eid, status, admitted_at, discharged_at, ward, visit_class})
    (:Encounter)-[:HAS_TRANSFER]->(:Transfer {transfer_id, from_ward, to_ward, at})
    (:Patient|Encounter)-[:HAS_LAB_RESULT]->(:LabResult {result_id, code, name, value, value_num, unit,
          ref_range, abnormal, status, observed_at, order})-[:OF_TEST]->(:Concept:LabTest {key})
    (:Patient|Encounter)-[:HAS_CHARGE]->(:Charge {charge_id, code, name, type, quantity, amount, unit_price,
          posted_at})                      charges per encounter, for reconciliation with the claims

Order: every value carries the version of the message that set it (``<field>_v`` on patients and
encounters, ``v`` on lab results and charges; a version is the message time as fixed-width UTC text plus
``|`` and its control id, so versions compare as strings). A value is written only when the stored version
is not newer: an older message arriving late leaves newer values alone, and re-applying a message (a
redelivery after a crash) writes the same values again. Cancellations are writes of their own: A11 sets
``status = 'cancelled'`` and removes ``admitted_at`` (the version stays, so the cancelled admission cannot
come back by a late duplicate), A13 sets ``status = 'admitted'`` and removes ``discharged_at``.

Every statement is keyed (unique constraints of :data:`FEED_KEYS`), parameterised (labels and property
names are constants of this module, values are parameters) and idempotent. The writer's generic methods
(``merge_nodes``) cannot express the version guard, so :func:`write_ops` runs its own transaction on the
writer's driver, with the writer's bounded reruns (``graph.writer.RERUN_ERRORS``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence

from neo4j.exceptions import ConstraintError, DriverError, Neo4jError, TransientError

from graph.writer import RERUN_ERRORS, in_transaction, server_error

FEED_KEYS: tuple[tuple[str, str, str], ...] = (
    ("transfer_transfer_id", "Transfer", "transfer_id"),
    ("lab_result_result_id", "LabResult", "result_id"),
    ("charge_charge_id", "Charge", "charge_id"),
)
PATIENT_FIELDS = ("sex", "birth_date")
ENCOUNTER_FIELDS = ("status", "admitted_at", "discharged_at", "ward", "visit_class")
LAB_PROPS = ("code", "name", "value", "value_num", "unit", "ref_range", "abnormal", "status", "observed_at", "order",
             "pid", "eid")
CHARGE_PROPS = ("code", "name", "type", "quantity", "amount", "unit_price", "posted_at", "pid", "eid")


def schema_statements() -> list[str]:
    return [f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE"
            for name, label, prop in FEED_KEYS]


def init_feed_schema(driver, database: str | None = None) -> None:
    """The feed labels' unique keys (the base schema, graph.schema.init_schema, holds the others)."""
    for stmt in schema_statements():
        for attempt in range(5):
            try:
                with driver.session(database=database) as s:
                    s.run(stmt).consume()
                break
            except (TransientError, ConstraintError):
                time.sleep(0.2 * (attempt + 1))


def _field_query(label: str, key: str, field: str) -> str:
    assert label in ("Patient", "Encounter") and field in PATIENT_FIELDS + ENCOUNTER_FIELDS
    return (f"UNWIND $rows AS r MERGE (n:{label} {{{key}: r.key}}) WITH n, r "
            f"WHERE n.{field}_v IS NULL OR n.{field}_v <= r.v SET n.{field} = r.value, n.{field}_v = r.v")


_PATIENTS = "UNWIND $ids AS id MERGE (:Patient {pid: id})"
_ENCOUNTERS = ("UNWIND $rows AS r MERGE (e:Encounter {eid: r.eid}) WITH e, r WHERE r.pid IS NOT NULL "
               "MERGE (p:Patient {pid: r.pid}) MERGE (p)-[:HAS_ENCOUNTER]->(e)")
_TRANSFERS = ("UNWIND $rows AS r MERGE (e:Encounter {eid: r.eid}) MERGE (t:Transfer {transfer_id: r.transfer_id}) "
              "SET t.from_ward = r.from_ward, t.to_ward = r.to_ward, t.at = r.at, t.v = r.v "
              "MERGE (e)-[:HAS_TRANSFER]->(t)")
_LABS = ("UNWIND $rows AS r MERGE (l:LabResult {result_id: r.result_id}) WITH l, r "
         "WHERE l.v IS NULL OR l.v <= r.v SET l += r.props, l.v = r.v")
_LAB_TESTS = ("UNWIND $rows AS r OPTIONAL MATCH (c:LabTest {key: r.key}) WITH r, c WHERE c IS NULL "
              "CREATE (:Concept:LabTest {key: r.key, name: r.name})")
_LAB_LINKS = ("UNWIND $rows AS r MATCH (l:LabResult {result_id: r.result_id}) MATCH (t:LabTest {key: r.key}) "
              "MERGE (l)-[:OF_TEST]->(t)")
_CHARGES = ("UNWIND $rows AS r MERGE (c:Charge {charge_id: r.charge_id}) WITH c, r "
            "WHERE c.v IS NULL OR c.v <= r.v SET c += r.props, c.v = r.v")


def _owner_links(label: str, key: str, rel: str) -> tuple[str, str]:
    """(encounter link, patient link) for result/charge nodes: to the encounter when known, else the patient."""
    return ((f"UNWIND $rows AS r MATCH (x:{label} {{{key}: r.id}}) MERGE (e:Encounter {{eid: r.eid}}) "
            f"MERGE (e)-[:{rel}]->(x)"),
            (f"UNWIND $rows AS r MATCH (x:{label} {{{key}: r.id}}) MERGE (p:Patient {{pid: r.pid}}) "
            f"MERGE (p)-[:{rel}]->(x)"))


def _latest(rows: Iterable[dict], key) -> list[dict]:
    """One row per key: the newest version (a batch may hold several messages about one thing)."""
    best: dict = {}
    for r in rows:
        k = key(r)
        if k not in best or best[k]["v"] <= r["v"]:
            best[k] = r
    return list(best.values())


def plan(ops: Sequence[tuple[str, dict]]) -> list[tuple[str, list[dict]]]:
    """The statements (query, rows) that apply ``ops``, in order. Pure: tested without a server."""
    by: dict[str, list[dict]] = {}
    for op, row in ops:
        by.setdefault(op, []).append(row)
    out: list[tuple[str, list[dict]]] = []
    pids = sorted({r["pid"] for rows in by.values() for r in rows if r.get("pid")})
    if pids:
        out.append((_PATIENTS, [{"id": p} for p in pids]))  # rows of a different shape: see write_ops
    for f in PATIENT_FIELDS:
        rows = _latest(({"key": r["pid"], "value": r[f], "v": r["v"]} for r in by.get("patient", ()) if f in r),
                       lambda r: r["key"])
        if rows:
            out.append((_field_query("Patient", "pid", f), rows))
    encounters = by.get("encounter", ())
    if encounters:
        out.append((_ENCOUNTERS, [{"eid": e, "pid": p} for e, p in
                                  sorted({(r["eid"], r.get("pid")) for r in encounters}, key=str)]))
    for f in ENCOUNTER_FIELDS:
        src = "class" if f == "visit_class" else f
        rows = _latest(({"key": r["eid"], "value": r[src], "v": r["v"]} for r in encounters if src in r),
                       lambda r: r["key"])
        if rows:
            out.append((_field_query("Encounter", "eid", f), rows))
    if by.get("transfer"):
        out.append((_TRANSFERS, _latest(by["transfer"], lambda r: r["transfer_id"])))
    labs = _latest(by.get("lab", ()), lambda r: r["result_id"])
    if labs:
        out.append((_LABS, [{"result_id": r["result_id"], "v": r["v"], "props": {k: r.get(k) for k in LAB_PROPS}}
                            for r in labs]))
        keyed = [r for r in labs if r.get("key")]
        names = dict(sorted({(r["key"], r["name"]) for r in keyed}))  # one row per concept key
        out.append((_LAB_TESTS, [{"key": k, "name": n} for k, n in names.items()]))
        out.append((_LAB_LINKS, [{"result_id": r["result_id"], "key": r["key"]} for r in keyed]))
        out.extend(_links("LabResult", "result_id", "HAS_LAB_RESULT", labs))
    charges = _latest(by.get("charge", ()), lambda r: r["charge_id"])
    if charges:
        out.append((_CHARGES, [{"charge_id": r["charge_id"], "v": r["v"],
                                "props": {k: r.get(k) for k in CHARGE_PROPS}} for r in charges]))
        out.extend(_links("Charge", "charge_id", "HAS_CHARGE", charges))
    return [(q, rows) for q, rows in out if rows]


def _links(label: str, key: str, rel: str, rows: list[dict]) -> list[tuple[str, list[dict]]]:
    enc_q, pat_q = _owner_links(label, key, rel)
    return [(enc_q, [{"id": r[key], "eid": r["eid"]} for r in rows if r.get("eid")]),
            (pat_q, [{"id": r[key], "pid": r["pid"]} for r in rows if not r.get("eid") and r.get("pid")])]


def _run_all(tx, statements: list[tuple[str, list[dict]]]) -> None:
    for query, rows in statements:
        if query == _PATIENTS:
            tx.run(query, ids=[r["id"] for r in rows]).consume()
        else:
            tx.run(query, rows=rows).consume()


def write_ops(writer, ops: Sequence[tuple[str, dict]], constraint_attempts: int = 10) -> int:
    """Apply feed ops in one transaction on ``writer`` (a ``graph.writer.GraphWriter``: its driver and
    database). Connection errors are raised for the caller's reconnect loop
    (``pipelines.graphio.ResilientWriter``); write conflicts and the writer's bounded reruns
    (``graph.writer.RERUN_ERRORS``: concurrent-MERGE constraint errors, a record read mid-rewrite) are
    retried here. Returns the number of statements run."""
    statements = plan(ops)
    if not statements:
        return 0
    attempt = 0
    while True:
        attempt += 1
        try:
            in_transaction(writer.driver, writer.database, lambda tx: _run_all(tx, statements))
            return len(statements)
        except (Neo4jError, DriverError) as exc:
            if not isinstance(server_error(exc), (*RERUN_ERRORS, TransientError)) or attempt >= constraint_attempts:
                raise
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** attempt)))

"""Batched, idempotent, retrying writes into the graph (architecture guide, "Graph model").

Every write is ``UNWIND $rows AS r MERGE ...``: one round trip per label or relationship type for a whole
batch, and ``MERGE`` on the unique keys of :mod:`graph.schema` makes re-writing the same data a no-op. Two
exceptions: a document's mentions are ``CREATE``d right after the document's previous mentions were deleted,
in the same transaction (see below), which is exact and faster; and concepts, whose nodes carry two labels
(``Concept:Disease``), are matched on their one keyed label and created where missing (``_concepts_query``).

Injection safety: Cypher cannot take labels, relationship types or property names as parameters, so those
are the only parts put into query text, and each comes from the allow-lists of :mod:`graph.model` (checked
again where a caller passes one in). Every value travels as a parameter, never in the query text.

Versions (clinical documents and claims alike): the node stores ``content_hash`` (see :mod:`graph.rows`).
A batch is one transaction that first reads the stored hashes: equal hashes are skipped (re-ingest writes
nothing); the others are locked (``SET n._lock``: Neo4j then serialises concurrent writers of the same
document, ArcadeDB fails all but one with a retryable conflict), re-read, their previous version removed
and the new one written. Because the hash is checked and replaced inside the same transaction as the
data, a retried batch -- after a lost commit acknowledgement, say -- finds its own hash and does nothing.

Relation evidence: ``evidence`` on a concept->concept relationship is the number of distinct (document,
sentence) pairs asserting it. Each Document keeps its own contribution (``asserts``: per relation, how
many of its sentences assert it); a new version subtracts the old contribution and adds the new one, in
one transaction, and a relationship whose evidence reaches 0 is deleted. ``first_seen``/``last_seen``
(the documents' ``recorded_on``, or the ingest date when unknown) only widen: a removed version does not
narrow them.

Assertions: only a triple whose subject *and* object mentions are both affirmed counts as evidence (and so is
in ``asserts``); one with a negated, possible, historical or family argument never creates or increments a
concept-level relationship. Every triple, whatever its arguments' assertions, is kept at the document level as
a statement: ``(:Document)-[:STATES]->(:Statement {statement_id, type, label, predicate, affirmed, subject,
subject_type, subject_start, subject_end, subject_assertion, object, ... , sentence, evidence, evidence_start,
evidence_end, confidence, model})`` with ``-[:HAS_SUBJECT]->`` and ``-[:HAS_OBJECT]->`` its two concepts.
Statements are a document's own, like its mentions: a new version ``DETACH DELETE``s the previous version's
statements and ``CREATE``s its own in the same transaction (keyed by ``statement_id``, unique), so re-ingest
is exact. A patient's own facts are the affirmed statements of the patient's documents
(``Patient-[:HAS_ENCOUNTER]->Encounter-[:HAS_DOCUMENT]->Document-[:STATES]->Statement``, read by
:mod:`graph.facts`); the concept-to-concept relationships are the knowledge aggregated over all documents.

Retries: each batch is an explicit transaction, retried here as a whole (the driver's own retry loop is not
used, so one policy applies): ``TransientError`` (ArcadeDB reports write conflicts as
``DeadlockDetected``), ``ServiceUnavailable``/``SessionExpired`` (a server restart; commits whose outcome
is unknown are safe to repeat, see above) until ``max_wait_s`` has passed, and ``ConstraintError`` and
``DatabaseError`` up to ``constraint_attempts`` times within that time (:data:`RERUN_ERRORS`): under
concurrent ``MERGE`` on one unique key ArcadeDB raises ``ConstraintError`` where Neo4j waits on the lock
(and two writers creating one new concept raise it on both servers); the rerun finds the node the other
writer created. ArcadeDB 26.10 also, rarely, reads a record that another transaction is rewriting as a
broken chunk chain (``BrokenChunkChainException`` in its log, ``Neo.DatabaseError.General.UnknownError`` to
the client; 4 times in about 4,400 rounds of four writers racing on the same 12 documents,
``benchmarks/graph_race.py``); the rerun reads it whole. One that survives every attempt is a real
violation or a real failure and is raised. Backoff is exponential with full jitter, so racing writers
spread out. On ArcadeDB a conflict retries a whole batch: one writer per graph loads fastest (measured in
benchmarks/graph.py; two writers with 10,000-row batches were half as fast as one).

On a real Neo4j 5 every statement here runs as is (``IF NOT EXISTS`` schema, ``UNWIND``/``MERGE``/
``ON CREATE SET``, ``SET n += map``, ``EXISTS { pattern }``); the ``_lock`` property is Neo4j's documented
way to take a node's write lock before reading it, so concurrent writers of one document serialise.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from neo4j.exceptions import (
    ConstraintError,
    DatabaseError,
    DriverError,
    Neo4jError,
    ResultFailedError,
    ServiceUnavailable,
    SessionExpired,
    TransactionError,
)

from core.records import Claim, ClinicalRecord, Entity, Relation
from graph.model import (  # noqa: F401 - re-exported: the writer's allow-lists
    CMEIE_PREDICATES,
    CONCEPT_PREDICATES,
    NODE_LABELS,
    RELATIONSHIP_TYPES,
    check_concept_label,
    check_label,
    check_prop,
    check_rel_type,
)
from graph.rows import ClaimRows, DocRows, claim_rows, parse_asserts, record_rows
from graph.schema import CONCEPT_LABELS

Key = str | Sequence[str]
T = TypeVar("T")


def _label(label: str) -> str:
    """The Cypher label pattern for an allowed label; concepts also carry ``:Concept``."""
    check_label(label)
    return f"Concept:{label}" if label in CONCEPT_LABELS else label


def _props(key: Key) -> tuple[str, ...]:
    props = (key,) if isinstance(key, str) else tuple(key)
    if not props:
        raise ValueError("at least one key property is needed")
    return tuple(check_prop(p) for p in props)


def _key_map(props: tuple[str, ...], source: str) -> str:
    """``{a: r.x.a, b: r.x.b}``: names checked by :func:`_props`, values read from the parameter."""
    return "{" + ", ".join(f"{p}: {source}.{p}" for p in props) + "}"


def node_query(label: str, key_props: Key) -> str:
    """``MERGE`` of one batch of nodes. A row is a flat map of properties that includes the keys."""
    return f"UNWIND $rows AS r MERGE (n:{_label(label)} {_key_map(_props(key_props), 'r')}) SET n += r"


def relationship_query(rel_type: str, start: tuple[str, Key], end: tuple[str, Key], rel_key: Key = ()) -> str:
    """``MERGE`` of one batch of relationships between existing nodes.

    Endpoints are matched by their specific label (``(s:Drug {key: ...})``, not ``:Concept``): that uses the
    unique index on Neo4j and ArcadeDB alike. A row whose endpoint does not exist writes nothing. ``rel_key``
    names relationship properties that tell parallel relationships apart (a mention's ``start``/``end``);
    without it there is at most one relationship of this type per pair.
    """
    (s_label, s_key), (e_label, e_key) = start, end
    r_map = " " + _key_map(_props(rel_key), "r.props") if rel_key else ""
    return (f"UNWIND $rows AS r MATCH (s:{check_label(s_label)} {_key_map(_props(s_key), 'r.start')}) "
            f"MATCH (e:{check_label(e_label)} {_key_map(_props(e_key), 'r.end')}) "
            f"MERGE (s)-[x:{check_rel_type(rel_type)}{r_map}]->(e) SET x += r.props")


def _endpoint(props: tuple[str, ...], value: Any) -> dict:
    if isinstance(value, Mapping):
        return {p: value[p] for p in props}
    if len(props) != 1:
        raise ValueError(f"a composite key {props} needs a mapping, got {value!r}")
    return {props[0]: value}


def _checked(row: Mapping[str, Any]) -> dict:
    return {check_prop(k): v for k, v in row.items()}


def _chunks(items: list[T], weight: Callable[[T], int], limit: int) -> Iterable[list[T]]:
    """Consecutive chunks whose total weight stays within ``limit`` (a heavier item goes alone)."""
    chunk, total = [], 0
    for item in items:
        w = weight(item)
        if chunk and total + w > limit:
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += w
    if chunk:
        yield chunk


# --- statements of the high-level writes; labels and types below come from the allow-lists only ----------

_DOC_HASHES = "UNWIND $ids AS id MATCH (d:Document {doc_id: id}) RETURN d.doc_id AS id, d.content_hash AS hash"
_DOC_LOCK = ("UNWIND $ids AS id MERGE (d:Document {doc_id: id}) SET d._lock = true "
             "RETURN d.doc_id AS id, d.content_hash AS hash, d.asserts AS asserts")
_DOC_DROP_MENTIONS = ("UNWIND $ids AS id MATCH (d:Document {doc_id: id})-[m:MENTIONS]->(c:Concept) "
                      "WITH c, m, c.key AS key, labels(c) AS labels DELETE m RETURN DISTINCT labels, key")
_DOC_DROP_STATEMENTS = ("UNWIND $ids AS id MATCH (d:Document {doc_id: id})-[:STATES]->(s:Statement) "
                        "DETACH DELETE s")
_DOC_DROP_LINKS = "UNWIND $ids AS id MATCH (d:Document {doc_id: id})<-[h:HAS_DOCUMENT]-() DELETE h"
_DOC_SET = ("UNWIND $rows AS r MATCH (d:Document {doc_id: r.doc_id}) SET d += r.props, "
            "d.content_hash = r.hash, d.asserts = r.asserts, d.version = coalesce(d.version, 0) + 1, "
            "d.written_at = $now")
_DOC_UNLOCK = "UNWIND $ids AS id MATCH (d:Document {doc_id: id}) REMOVE d._lock"
_PATIENTS = "UNWIND $ids AS id MERGE (:Patient {pid: id})"
_ENCOUNTERS = ("UNWIND $rows AS r MERGE (e:Encounter {eid: r.eid}) WITH e, r WHERE r.pid IS NOT NULL "
               "MATCH (p:Patient {pid: r.pid}) MERGE (p)-[:HAS_ENCOUNTER]->(e)")
_ENCOUNTER_DOCS = ("UNWIND $rows AS r MATCH (e:Encounter {eid: r.eid}) MATCH (d:Document {doc_id: r.doc_id}) "
                   "MERGE (e)-[:HAS_DOCUMENT]->(d)")
_PATIENT_DOCS = ("UNWIND $rows AS r MATCH (p:Patient {pid: r.pid}) MATCH (d:Document {doc_id: r.doc_id}) "
                 "MERGE (p)-[:HAS_DOCUMENT]->(d)")

_CLAIM_HASHES = "UNWIND $ids AS id MATCH (c:Claim {claim_id: id}) RETURN c.claim_id AS id, c.content_hash AS hash"
_CLAIM_LOCK = ("UNWIND $ids AS id MERGE (c:Claim {claim_id: id}) SET c._lock = true "
               "RETURN c.claim_id AS id, c.content_hash AS hash")
_CLAIM_DROP_PARTS = ("UNWIND $ids AS id MATCH (c:Claim {claim_id: id})-[:HAS_ITEM|HAS_FINDING]->(n) "
                     "DETACH DELETE n")
_CLAIM_DROP_LINKS = "UNWIND $ids AS id MATCH (c:Claim {claim_id: id})-[x:BILLED_TO|FROM_DOCUMENT]->() DELETE x"
_CLAIM_SET = ("UNWIND $rows AS r MATCH (c:Claim {claim_id: r.claim_id}) SET c += r.props, "
              "c.content_hash = r.hash, c.version = coalesce(c.version, 0) + 1, c.written_at = $now "
              "MERGE (d:Document {doc_id: r.doc_id}) MERGE (c)-[:FROM_DOCUMENT]->(d)")
_CLAIM_PATIENTS = ("UNWIND $rows AS r MATCH (c:Claim {claim_id: r.claim_id}) MERGE (p:Patient {pid: r.pid}) "
                   "MERGE (c)-[:BILLED_TO]->(p)")
_CLAIM_ITEMS = ("UNWIND $rows AS r MATCH (c:Claim {claim_id: r.claim_id}) "
                "MERGE (i:LineItem {claim_id: r.claim_id, line_no: r.line_no}) SET i += r "
                "MERGE (c)-[:HAS_ITEM]->(i)")
# catalogue entries are shared reference data: set on creation only, so concurrent claims do not contend
_CLAIM_MATCHES = ("UNWIND $rows AS r MATCH (i:LineItem {claim_id: r.claim_id, line_no: r.line_no}) "
                  "MERGE (ci:CatalogItem {code: r.code}) ON CREATE SET ci.name = r.name, ci.category = r.category "
                  "MERGE (i)-[m:MATCHES]->(ci) SET m.score = r.score, m.method = r.method")
_CLAIM_FINDINGS = ("UNWIND $rows AS r MATCH (c:Claim {claim_id: r.claim_id}) "
                   "MERGE (f:Finding {finding_id: r.finding_id}) SET f += r MERGE (c)-[:HAS_FINDING]->(f)")
_CLAIM_UNLOCK = "UNWIND $ids AS id MATCH (c:Claim {claim_id: id}) REMOVE c._lock"


def _concepts_query(label: str) -> str:
    """Concepts of one label, one distinct row each, created where missing. The concept's ``name`` is the first
    surface form seen; an existing concept is only matched (no write, so concurrent writers do not contend
    on it). Match-then-create rather than ``MERGE (c:Concept:Disease {key: ...})``: ArcadeDB does not use the
    unique index for a ``MERGE`` on two labels, and that one statement took about two thirds of the graph
    server's CPU in a records ingest (25x slower than this form at 6,600 concepts). Idempotent all the same;
    two writers creating one concept at once meet the unique constraint, and the transaction is retried."""
    label = check_concept_label(label)
    return (f"UNWIND $rows AS r OPTIONAL MATCH (c:{label} {{key: r.key}}) WITH r, c WHERE c IS NULL "
            f"CREATE (:Concept:{label} {{key: r.key, name: r.name}})")


def _mentions_query(label: str) -> str:
    """Mentions of concepts of one label (merged just before). ``CREATE``, not ``MERGE``: the document's
    previous mentions were deleted in the same transaction and the rows are distinct, so nothing can be
    duplicated (and ``CREATE`` is about 1.5x as fast on ArcadeDB)."""
    return (f"UNWIND $rows AS r MATCH (d:Document {{doc_id: r.doc_id}}) "
            f"MATCH (c:{check_concept_label(label)} {{key: r.key}}) CREATE (d)-[m:MENTIONS]->(c) SET m = r.props")


def _statements_query(s_label: str, o_label: str) -> str:
    """A batch's statements whose subject and object have these concept labels. ``CREATE``, as for mentions:
    the documents' previous statements were deleted in the same transaction, and ``statement_id`` is unique."""
    return (f"UNWIND $rows AS r MATCH (d:Document {{doc_id: r.doc_id}}) "
            f"MATCH (a:{check_concept_label(s_label)} {{key: r.s}}) "
            f"MATCH (b:{check_concept_label(o_label)} {{key: r.o}}) "
            "CREATE (d)-[:STATES]->(st:Statement) SET st = r.props "
            "CREATE (st)-[:HAS_SUBJECT]->(a) CREATE (st)-[:HAS_OBJECT]->(b)")


def _evidence_query(rel_type: str, s_label: str, o_label: str) -> str:
    return (f"UNWIND $rows AS r MATCH (s:{check_concept_label(s_label)} {{key: r.s}}) "
            f"MATCH (o:{check_concept_label(o_label)} {{key: r.o}}) "
            f"MERGE (s)-[x:{check_rel_type(rel_type)}]->(o) ON CREATE SET x.evidence = 0 "
            "SET x.evidence = x.evidence + r.delta, x.label = coalesce(r.label, x.label), "
            "x.model = coalesce(r.model, x.model), "
            "x.first_seen = CASE WHEN r.first IS NULL THEN x.first_seen "
            "WHEN x.first_seen IS NULL OR r.first < x.first_seen THEN r.first ELSE x.first_seen END, "
            "x.last_seen = CASE WHEN r.last IS NULL THEN x.last_seen "
            "WHEN x.last_seen IS NULL OR r.last > x.last_seen THEN r.last ELSE x.last_seen END "
            "WITH x WHERE x.evidence <= 0 DELETE x")


def _orphans_query(label: str) -> str:
    return (f"UNWIND $keys AS k MATCH (c:{check_concept_label(label)} {{key: k}}) "
            "WHERE NOT EXISTS { (c)--() } DELETE c")


# rerun a bounded number of times, whatever the time (module docstring): a concurrent MERGE's constraint
# error, and a server's failure to read a record another transaction is rewriting
RERUN_ERRORS = (ConstraintError, DatabaseError)


def server_error(exc: Exception) -> Exception:
    """The error behind ``exc``: a result read after its transaction failed raises ``ResultFailedError`` (and a
    statement run after it ``TransactionError``) with the server's own error as its cause, which decides."""
    while isinstance(exc, (ResultFailedError, TransactionError)) and isinstance(exc.__cause__, (Neo4jError, DriverError)):
        exc = exc.__cause__
    return exc


def in_transaction(driver, database: str | None, work: Callable[[Any], T]) -> T:
    """``work(tx)`` in one explicit write transaction, committed; closed by its session, never by itself.

    Why not ``with session.begin_transaction() as tx`` (or ``execute_write``): on a server failure the
    ``neo4j`` driver (6.4) hands the connection back to the pool at once, yet closing the failed
    ``Transaction`` still checks that connection (a non-blocking read, ``at_eof``), racing the thread that took
    it next: the other thread's read blocks, or its reply is eaten. Four writers sharing a driver hung that way
    within a few hundred rounds (``benchmarks/graph_race.py``). The session rolls back only a transaction it
    still holds, on its own connection."""
    with driver.session(database=database) as session:
        tx = session.begin_transaction()
        result = work(tx)
        tx.commit()
        return result


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, (ServiceUnavailable, SessionExpired)):
        return True
    return isinstance(exc, (Neo4jError, DriverError)) and exc.is_retryable()


class GraphWriter:
    """Batched ``UNWIND ... MERGE`` writes with retries; see the module docstring.

    ``driver`` is a ``neo4j`` driver (e.g. :func:`graph.server.driver`); ``database`` may be None for a
    Neo4j server's default database. ``batch_size`` bounds the rows of one transaction (a high-level batch
    holds whole documents or claims, at least one). ``reconnect`` is called after a connection failure
    and may return a new driver: the embedded server comes back on new ports (:meth:`connect` wires it).
    Thread-safe: each transaction opens its own session.
    """

    def __init__(self, driver, database: str | None = None, batch_size: int = 1000, max_wait_s: float = 60.0,
                 constraint_attempts: int = 10, backoff_s: float = 0.05, max_backoff_s: float = 5.0,
                 reconnect: Callable[[], Any] | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.driver, self.database, self.batch_size = driver, database, batch_size
        self.max_wait_s, self.constraint_attempts = max_wait_s, constraint_attempts
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.reconnect = reconnect
        self.retries = 0  # failed and retried transactions (tests, metrics)
        self.retried: Counter[str] = Counter()  # ... by exception class
        self.skipped_attributes = 0  # relations with a bare-Span object (attribute values): not stored
        self._lock = threading.Lock()
        self._owned: list = []  # drivers this writer created (closed by close())

    @classmethod
    def connect(cls, data_dir=None, **kw) -> GraphWriter:
        """A writer on :func:`graph.server.connection` (``NEO4J_*`` or the embedded server), with
        ``reconnect`` following the embedded server to its new port after a restart."""
        import os

        from graph.server import EmbeddedServer, connection, driver

        conn = connection(data_dir)
        reconnect = None
        if not os.environ.get("NEO4J_URI"):
            server = EmbeddedServer(data_dir)

            def reconnect():
                return driver(server.connection()) if server.status()["running"] else None
        writer = cls(driver(conn), conn.database, reconnect=reconnect, **kw)
        writer._owned.append(writer.driver)
        return writer

    def close(self) -> None:
        for d in self._owned:
            d.close()
        self._owned.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- low level ---------------------------------------------------------------------------------------
    def merge_nodes(self, label: str, key_props: Key, rows: Iterable[Mapping[str, Any]]) -> int:
        """Merge nodes keyed by ``key_props``; other row entries are set as properties. Returns rows sent."""
        query, props = node_query(label, key_props), _props(key_props)
        out = []
        for row in rows:
            row = _checked(row)
            missing = [p for p in props if row.get(p) is None]
            if missing:
                raise ValueError(f"{label} row lacks key {missing}: {row!r}")
            out.append(row)
        return self._run_batches(query, out)

    def merge_relationships(self, rel_type: str, start: tuple[str, Key], end: tuple[str, Key],
                            rows: Iterable[Mapping[str, Any]], rel_key: Key = ()) -> int:
        """Merge relationships. A row is ``{"start": key, "end": key, "props": {...}}`` where a key is the
        value of a single key property or a map of the key properties (composite keys). With ``rel_key``,
        those entries of ``props`` identify the relationship. Returns rows sent."""
        query = relationship_query(rel_type, start, end, rel_key)
        s_props, e_props, k_props = _props(start[1]), _props(end[1]), _props(rel_key) if rel_key else ()
        out = []
        for row in rows:
            props = _checked(row.get("props") or {})
            missing = [p for p in k_props if props.get(p) is None]
            if missing:
                raise ValueError(f"{rel_type} row lacks relationship key {missing}: {row!r}")
            out.append({"start": _endpoint(s_props, row["start"]), "end": _endpoint(e_props, row["end"]),
                        "props": props})
        return self._run_batches(query, out)

    # --- claims -----------------------------------------------------------------------------------------
    def write_claims(self, items: Sequence[tuple[Claim, str | None]]) -> list[str]:
        """Write claims (bill pages) with line items, catalogue matches and findings, optionally billed to a
        patient; returns the claim ids (``"<doc_id>:<page>"``) in input order.

        A claim whose content is unchanged is skipped; a changed one has its items and findings replaced.
        """
        rows = [claim_rows(c, pid) for c, pid in items]
        latest = list({r.claim_id: r for r in rows}.values())  # the same claim twice: the last one wins
        for chunk in _chunks(latest, lambda r: 1 + len(r.items) + len(r.matches) + len(r.findings),
                             self.batch_size):
            self.transact(lambda tx, chunk=chunk: self._claims_tx(tx, chunk))
        return [r.claim_id for r in rows]

    def write_claim(self, claim: Claim, patient_id: str | None = None) -> str:
        return self.write_claims([(claim, patient_id)])[0]

    def _claims_tx(self, tx, chunk: list[ClaimRows]) -> int:
        stored = {r["id"]: r["hash"] for r in tx.run(_CLAIM_HASHES, ids=[c.claim_id for c in chunk])}
        todo = [c for c in chunk if stored.get(c.claim_id) != c.content_hash]
        if not todo:
            return 0
        locked = {r["id"]: r["hash"] for r in tx.run(_CLAIM_LOCK, ids=[c.claim_id for c in todo])}
        todo = [c for c in todo if locked[c.claim_id] != c.content_hash]  # re-read under the lock
        ids = [c.claim_id for c in todo]
        if ids:
            tx.run(_CLAIM_DROP_PARTS, ids=ids).consume()
            tx.run(_CLAIM_DROP_LINKS, ids=ids).consume()
            now = datetime.now(UTC)
            tx.run(_CLAIM_SET, now=now, rows=[
                {"claim_id": c.claim_id, "doc_id": c.doc_id, "hash": c.content_hash, "props": c.props}
                for c in todo]).consume()
            billed = [{"claim_id": c.claim_id, "pid": c.patient_id} for c in todo if c.patient_id is not None]
            for query, rows in ((_CLAIM_PATIENTS, billed),
                                (_CLAIM_ITEMS, [i for c in todo for i in c.items]),
                                (_CLAIM_MATCHES, [m for c in todo for m in c.matches]),
                                (_CLAIM_FINDINGS, [f for c in todo for f in c.findings])):
                if rows:
                    tx.run(query, rows=rows).consume()
        tx.run(_CLAIM_UNLOCK, ids=list(locked)).consume()
        return len(todo)

    # --- clinical records ---------------------------------------------------------------------------------
    def write_records(self, items: Sequence[tuple[ClinicalRecord, Sequence[Entity], Sequence[Relation]]]) -> None:
        """Write clinical documents with their mentions and relations (see the module docstring for
        versions and evidence). Patient, Encounter and Document nodes are linked as far as the record
        knows them: ``Patient-HAS_ENCOUNTER->Encounter-HAS_DOCUMENT->Document``, or
        ``Patient-HAS_DOCUMENT->Document`` when no encounter is known. Every relation endpoint is also a
        mention; relations whose object is a bare Span (an attribute value) are counted in
        ``skipped_attributes`` and not stored. Unknown predicates raise ``ValueError`` before anything is
        written."""
        docs: dict[str, DocRows] = {}
        for record, entities, relations in items:
            rows = record_rows(record, entities, relations)
            docs[rows.doc_id] = rows  # the same document twice: the last one wins
        with self._lock:
            self.skipped_attributes += sum(d.skipped_attributes for d in docs.values())
        def weight(d: DocRows) -> int:
            return 1 + len(d.mentions) + len(d.statements) + len(d.asserts)

        for chunk in _chunks(list(docs.values()), weight, self.batch_size):
            self.transact(lambda tx, chunk=chunk: self._records_tx(tx, chunk))

    def _records_tx(self, tx, chunk: list[DocRows]) -> int:
        stored = {r["id"]: r["hash"] for r in tx.run(_DOC_HASHES, ids=[d.doc_id for d in chunk])}
        todo = [d for d in chunk if stored.get(d.doc_id) != d.content_hash]
        if not todo:
            return 0
        locked = {r["id"]: r for r in tx.run(_DOC_LOCK, ids=[d.doc_id for d in todo])}
        todo = [d for d in todo if locked[d.doc_id]["hash"] != d.content_hash]  # re-read under the lock
        if todo:
            self._replace_docs(tx, todo, {d.doc_id: parse_asserts(locked[d.doc_id]["asserts"]) for d in todo})
        tx.run(_DOC_UNLOCK, ids=list(locked)).consume()
        return len(todo)

    def _replace_docs(self, tx, todo: list[DocRows], old_asserts: dict[str, list[tuple]]) -> None:
        ids = [d.doc_id for d in todo]
        # 1. the previous version's mentions, statements and links go; its concepts are checked for orphans last
        dropped: dict[str, set[str]] = defaultdict(set)
        for r in tx.run(_DOC_DROP_MENTIONS, ids=ids):
            label = next((x for x in r["labels"] if x in CONCEPT_LABELS), None)
            if label:
                dropped[label].add(r["key"])
        tx.run(_DOC_DROP_STATEMENTS, ids=ids).consume()
        tx.run(_DOC_DROP_LINKS, ids=ids).consume()
        # 2. document properties, patients, encounters and their links
        tx.run(_DOC_SET, now=datetime.now(UTC), rows=[
            {"doc_id": d.doc_id, "hash": d.content_hash, "asserts": d.stored_asserts(), "props": d.props}
            for d in todo]).consume()
        pids = sorted({d.patient_id for d in todo if d.patient_id is not None})
        if pids:
            tx.run(_PATIENTS, ids=pids).consume()
        encounters = {(d.encounter_id, d.patient_id) for d in todo if d.encounter_id is not None}
        if encounters:
            tx.run(_ENCOUNTERS, rows=[{"eid": e, "pid": p} for e, p in sorted(encounters, key=str)]).consume()
            tx.run(_ENCOUNTER_DOCS, rows=[{"eid": d.encounter_id, "doc_id": d.doc_id}
                                          for d in todo if d.encounter_id is not None]).consume()
        direct = [{"pid": d.patient_id, "doc_id": d.doc_id} for d in todo
                  if d.encounter_id is None and d.patient_id is not None]
        if direct:
            tx.run(_PATIENT_DOCS, rows=direct).consume()
        # 3. concepts and mentions, then the statements between them
        self._write_mentions(tx, todo)
        self._write_statements(tx, todo)
        # 4. relation evidence: minus the old contribution, plus the new one, one statement per type and labels
        for (rel_type, s_label, o_label), rows in sorted(_evidence_rows(todo, old_asserts).items()):
            tx.run(_evidence_query(rel_type, s_label, o_label), rows=rows).consume()
        # 5. concepts the old version alone used
        for label in sorted(dropped):
            tx.run(_orphans_query(label), keys=sorted(dropped[label])).consume()

    def _write_mentions(self, tx, todo: list[DocRows]) -> None:
        """Per concept label: the batch's distinct concepts (one ``MERGE`` each), then its mentions. Merging
        each concept once, not once per mention, cut the graph server's CPU by about a third (ArcadeDB)."""
        concepts: dict[str, dict[str, str]] = defaultdict(dict)
        mentions: dict[str, list[dict]] = defaultdict(list)
        for d in todo:
            for m in d.mentions:
                concepts[m["label"]].setdefault(m["key"], d.concepts[m["label"], m["key"]])
                mentions[m["label"]].append({"doc_id": d.doc_id, "key": m["key"], "props": m["props"]})
        for label in sorted(mentions):
            tx.run(_concepts_query(label), rows=[{"key": k, "name": n} for k, n in concepts[label].items()]).consume()
            tx.run(_mentions_query(label), rows=mentions[label]).consume()

    def _write_statements(self, tx, todo: list[DocRows]) -> None:
        """Every triple of the batch's documents, one statement each, one ``CREATE`` per (subject label,
        object label); the concepts exist already (a statement's arguments are mentions too)."""
        rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for d in todo:
            for st in d.statements:
                rows[st["s_label"], st["o_label"]].append(
                    {"doc_id": d.doc_id, "s": st["s_key"], "o": st["o_key"], "props": st["props"]})
        for (s_label, o_label), batch in sorted(rows.items()):
            tx.run(_statements_query(s_label, o_label), rows=batch).consume()

    # --- transactions and retries -------------------------------------------------------------------------
    def _run_batches(self, query: str, rows: list[dict]) -> int:
        for i in range(0, len(rows), self.batch_size):
            batch = rows[i:i + self.batch_size]
            self.transact(lambda tx, batch=batch: tx.run(query, rows=batch).consume())
        return len(rows)

    def transact(self, work: Callable[[Any], T]) -> T:
        """Run ``work(tx)`` in one write transaction, retried as a whole (module docstring)."""
        deadline = time.monotonic() + self.max_wait_s
        attempt = 0
        while True:
            attempt += 1
            try:
                return in_transaction(self.driver, self.database, work)
            except (Neo4jError, DriverError) as exc:
                error = server_error(exc)
                if isinstance(error, RERUN_ERRORS):
                    if attempt >= self.constraint_attempts or time.monotonic() > deadline:
                        raise
                elif not _is_retryable(error) or time.monotonic() > deadline:
                    raise
                elif isinstance(error, (ServiceUnavailable, SessionExpired)):
                    self._reconnect()
            with self._lock:
                self.retries += 1
                self.retried[type(error).__name__] += 1
            time.sleep(random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** attempt)))

    def _reconnect(self) -> None:
        if self.reconnect is None:
            return  # the driver reconnects to the same address by itself
        try:
            new = self.reconnect()
        except Exception:  # noqa: BLE001 - the server is still down: keep waiting
            return
        if new is not None:
            with self._lock:
                self._owned.append(new)  # the old driver may still be in use by another thread
                self.driver = new


def _evidence_rows(todo: list[DocRows], old_asserts: dict[str, list[tuple]]) -> dict[tuple, list[dict]]:
    """Per (type, subject label, object label): one row per relation with its evidence delta and, for
    relations the new versions assert, the label, model and the dates seen."""
    delta: dict[tuple, int] = defaultdict(int)
    meta: dict[tuple, dict] = {}
    for d in todo:
        for *triple, n in old_asserts.get(d.doc_id, ()):
            delta[tuple(triple)] -= n
        for *triple, n in d.asserts:
            triple = tuple(triple)
            delta[triple] += n
            label, model = d.relation_meta[triple]
            m = meta.setdefault(triple, {"label": None, "model": None, "first": d.seen, "last": d.seen})
            m["label"], m["model"] = label or m["label"], model or m["model"]
            m["first"], m["last"] = min(m["first"], d.seen), max(m["last"], d.seen)
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for triple, n in delta.items():
        rel_type, s_label, s_key, o_label, o_key = triple
        m = meta.get(triple, {"label": None, "model": None, "first": None, "last": None})
        if n == 0 and triple not in meta:
            continue
        grouped[(rel_type, s_label, o_label)].append({"s": s_key, "o": o_key, "delta": n, **m})
    return grouped

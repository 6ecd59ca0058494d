"""Constraints and indexes of the graph model (architecture guide, "Graph model"), in Neo4j 5 Cypher.

Every statement is ``CREATE CONSTRAINT|INDEX <name> IF NOT EXISTS ...``, so :func:`init_schema` is
idempotent on Neo4j 5 and on the embedded ArcadeDB Bolt server alike. Verified on ArcadeDB 26.10.2
(``arcadedb-embedded``), which accepts all of them unchanged:

- single-property ``REQUIRE n.x IS UNIQUE`` and the composite ``REQUIRE (n.claim_id, n.line_no) IS
  UNIQUE`` (so LineItem keeps its natural composite key, no derived key needed), and both are
  enforced: a duplicate ``CREATE`` fails with ``neo4j.exceptions.ConstraintError``
  (``Neo.ClientError.Schema.ConstraintValidationFailed``) as on Neo4j;
- ``CREATE INDEX ... FOR (n:Label) ON (n.prop)``; ``SHOW CONSTRAINTS`` / ``SHOW INDEXES`` answer in
  Neo4j's column layout.

Differences seen on ArcadeDB (none needs a different statement here):

- a constraint with a new name on an already-constrained (label, property) fails with a generic
  ``ClientError`` (Neo4j: ``EquivalentSchemaRuleAlreadyExists``); ``IF NOT EXISTS`` with the same name
  is a no-op on both. Renaming a constraint therefore needs a ``DROP CONSTRAINT`` first.
- ``IS NODE KEY`` is accepted but Neo4j Community rejects it (Enterprise only), so it is not used.
- under concurrent ``MERGE`` on a unique key ArcadeDB raises ``ConstraintError`` where Neo4j waits on
  the lock: writers must retry it (graph writer's job).

Concept keys are unique *per concept label* (``Disease.key``, ``Drug.key``, ...): the same surface key
may name a Disease and a Drug. ``Concept.key`` therefore has a plain (non-unique) index for
label-agnostic lookups, not a uniqueness constraint.

ArcadeDB deviation that does change what runs: a node with labels ``Concept:Disease`` becomes a record of
a type inheriting both, and a plain ``CREATE INDEX`` on ``Concept(key)`` next to the unique constraints on
``Disease(key)``/``Drug(key)`` makes ArcadeDB reject ``(:Concept:Drug {key:'k'})`` once
``(:Concept:Disease {key:'k'})`` exists (``DuplicatedKeyException`` on index ``concept_key``), i.e. the
non-unique index behaves as a unique one across concept labels. On ArcadeDB (detected from the Bolt
agent string) :func:`init_schema` therefore skips the indexes in :data:`ARCADEDB_SKIP`; queries should
match concepts by their specific label (``MATCH (c:Disease {key: $key})``), which uses the unique index on
both servers. Plain indexes on labels without such a constraint (``Finding(rule)``) stay non-unique.

Finding nodes carry a derived ``finding_id`` (the writer builds it from the claim id and the finding's
position, ``"<claim_id>:<n>"``) as their unique key; ``rule`` and ``severity`` are indexed for the findings queries.
Statement nodes (a document's relation triples, :mod:`graph.rows`) are keyed by a derived ``statement_id``
(document, relationship type and both arguments' typed spans).
"""

from __future__ import annotations

import time

CONCEPT_LABELS: tuple[str, ...] = (
    "Disease", "Symptom", "Drug", "Procedure", "Exam", "LabTest", "BodyPart", "Department", "Microbe",
    "Equipment", "Item", "Factor",
)

# (name, label, properties) -> CREATE CONSTRAINT name IF NOT EXISTS FOR (n:label) REQUIRE ... IS UNIQUE
UNIQUE_KEYS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("patient_pid", "Patient", ("pid",)),
    ("encounter_eid", "Encounter", ("eid",)),
    ("document_doc_id", "Document", ("doc_id",)),
    ("statement_statement_id", "Statement", ("statement_id",)),
    *((f"{label.lower()}_key", label, ("key",)) for label in CONCEPT_LABELS),
    ("claim_claim_id", "Claim", ("claim_id",)),
    ("line_item_claim_line", "LineItem", ("claim_id", "line_no")),
    ("catalog_item_code", "CatalogItem", ("code",)),
    ("finding_finding_id", "Finding", ("finding_id",)),
)

# (name, label, property) -> CREATE INDEX name IF NOT EXISTS FOR (n:label) ON (n.property)
INDEXES: tuple[tuple[str, str, str], ...] = (
    ("concept_key", "Concept", "key"),
    ("finding_rule", "Finding", "rule"),
    ("finding_severity", "Finding", "severity"),
)


def _constraint(name: str, label: str, props: tuple[str, ...]) -> str:
    target = f"n.{props[0]}" if len(props) == 1 else "(" + ", ".join(f"n.{p}" for p in props) + ")"
    return f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE {target} IS UNIQUE"


def _index(name: str, label: str, prop: str) -> str:
    return f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"


# index names not created on ArcadeDB (see the module docstring)
ARCADEDB_SKIP: frozenset[str] = frozenset({"concept_key"})


def is_arcadedb(driver) -> bool:
    return "arcadedb" in (driver.get_server_info().agent or "").lower()


def statements_for(driver) -> list[str]:
    """The statements :func:`init_schema` runs on this server."""
    if not is_arcadedb(driver):
        return list(STATEMENTS)
    return [s for s in STATEMENTS if s.split()[2] not in ARCADEDB_SKIP] + list(ARCADEDB_CONCEPT_TYPES)


# ArcadeDB makes the type of a two-label node (``Concept~Disease``) when the first such node is created; two
# writers doing that at once on a fresh graph make one fail with a non-retryable error (TypeAlreadyExists,
# seen by the client as a SemanticError). Creating and deleting one node per concept label at init makes
# every such type before any writer starts. Nothing stays behind; rerunning it changes nothing.
ARCADEDB_CONCEPT_TYPES: tuple[str, ...] = tuple(
    f"CREATE (n:Concept:{label} {{key: '__medkg_schema__'}}) DELETE n" for label in CONCEPT_LABELS)


# Built from the fixed tables above only; nothing here comes from data.
STATEMENTS: tuple[str, ...] = (
    *(_constraint(*c) for c in UNIQUE_KEYS),
    *(_index(*i) for i in INDEXES),
)


def init_schema(driver, database: str | None = None, retries: int = 5) -> list[str]:
    """Create every constraint and index (idempotent); returns the statements run.

    Each statement runs in its own auto-commit transaction (schema changes may not share a transaction
    with other writes on Neo4j). Transient errors are retried with backoff.
    """
    from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

    statements = statements_for(driver)
    with driver.session(database=database) as session:
        for statement in statements:
            for attempt in range(retries):
                try:
                    session.run(statement).consume()
                    break
                except (TransientError, ServiceUnavailable, SessionExpired):
                    if attempt == retries - 1:
                        raise
                    time.sleep(0.2 * 2 ** attempt)
    return statements

"""Claims reconciliation for the API (issue 21): the stored findings of a claim (``graph.reconcile.
reconciliation_view``) and a run now (``graph.reconcile.reconcile_claim`` with the bureau's files named by
``MEDKG_RECONCILE_*``, ``RuleBook.from_settings``). The rule book is loaded on first use and again only when
the files named, or their modification times, change."""

from __future__ import annotations

import os
import threading

from api.graph_access import GraphAccess
from api.problems import ApiProblem
from core.settings import Settings

_KINDS = ("rules", "catalogue", "classes", "diseases")


class ReconcileService:
    def __init__(self, graph: GraphAccess, settings: Settings):
        self.graph, self.settings = graph, settings
        self._lock = threading.Lock()
        self._book, self._book_key = None, None

    def view(self, claim_id: str) -> dict:
        from graph.reconcile import reconciliation_view

        out = self.graph.call(lambda d, db: reconciliation_view(d, claim_id, db))
        if out is None:
            raise ApiProblem(404, "claim-not-found", "no such claim in the graph")
        return out

    def run(self, claim_id: str) -> dict:
        from claims.reconcile import Tolerance
        from graph.reconcile import reconcile_claim

        book = self.rulebook()
        tolerance = Tolerance.from_settings(self.settings)
        rec = self.graph.call(lambda d, db: reconcile_claim(d, claim_id, book, tolerance=tolerance, database=db))
        if rec is None:
            raise ApiProblem(404, "claim-not-found", "no such claim in the graph")
        return self.view(claim_id)

    def _key(self) -> tuple:
        key = []
        for kind in _KINDS:
            for path in (p for p in getattr(self.settings, f"reconcile_{kind}").split(os.pathsep) if p.strip()):
                try:
                    mtime = os.stat(path).st_mtime_ns
                except OSError:
                    mtime = None
                key.append((kind, path, mtime))
        return tuple(key)

    def rulebook(self):
        """The rule book of the configured files; 409 ``reconcile-not-configured`` when none is named,
        409 ``reconcile-rules-unreadable`` when a named file cannot be read."""
        from claims.reconcile import RuleBook

        key = self._key()
        if not key:
            raise ApiProblem(409, "reconcile-not-configured",
                             "no reconciliation rules or catalogue are configured: set MEDKG_RECONCILE_RULES "
                             "(and MEDKG_RECONCILE_CATALOGUE, _CLASSES, _DISEASES) to the bureau's files")
        with self._lock:
            if self._book_key != key:
                try:
                    book = RuleBook.from_settings(self.settings)
                except (OSError, ValueError, KeyError) as exc:
                    raise ApiProblem(409, "reconcile-rules-unreadable",
                                     f"the configured reconciliation files could not be read ({type(exc).__name__})"
                                     ) from None
                self._book, self._book_key = book, key
            return self._book

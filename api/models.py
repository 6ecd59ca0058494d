"""The models the API runs itself, loaded once at start-up (the app's lifespan) and shared by every request:
the OCR engine (bills) and the NER + relations stage (records). Neither is thread-safe, so each has a lock;
requests queue on it. ``MEDKG_API_MODELS`` (``ocr,records``: both, the default; ``none``: neither) leaves
one out, e.g. for a read-only replica; its routes then answer 503."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager

from api.problems import ApiProblem

log = logging.getLogger("medkg.api")


class Models:
    def __init__(self):
        self.ocr = self.records = None
        self.ocr_lock, self.records_lock = threading.Lock(), threading.Lock()
        self.errors: dict[str, str] = {}
        self.wanted: set[str] = set()

    def load(self, settings) -> None:
        wanted = {w.strip() for w in os.environ.get("MEDKG_API_MODELS", "ocr,records").split(",")}
        self.wanted = wanted & {"ocr", "records"}
        if "ocr" in wanted:
            try:
                from ocr.pipeline import OcrEngine

                self.ocr = OcrEngine.load(settings=settings)
            except Exception as exc:  # reported by /readyz, not fatal for the other routes
                log.exception("OCR models failed to load")
                self.errors["ocr"] = str(exc)
        if "records" in wanted:
            try:
                from relations.stage import RelationStage

                self.records = RelationStage.load()
            except Exception as exc:
                log.exception("NER/relation models failed to load")
                self.errors["records"] = str(exc)

    def status(self) -> dict[str, bool]:
        """Each model this server was asked to load: loaded or not."""
        return {name: getattr(self, name) is not None for name in sorted(self.wanted)}

    @contextmanager
    def use(self, name: str):
        model = getattr(self, name)
        if model is None:
            raise ApiProblem(503, "model-unavailable", f"the {name} models are not loaded in this server",
                             headers={"Retry-After": "60"})
        with getattr(self, f"{name}_lock"):
            yield model

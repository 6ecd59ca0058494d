"""Bill uploads: each file stored content-addressed, then either structured here (a small upload: OCR ->
``claims.document.structure_document`` -> the claim store and the graph) or handed to a job that runs the same
Beam pipeline as ``medkg ingest bills``."""

from __future__ import annotations

from api.claims_service import ClaimService
from api.files import FileStore
from api.models import Models
from api.problems import ApiProblem
from ocr.errors import InputError, LimitExceeded


def input_problem(exc: InputError) -> ApiProblem:
    """A bad file as a problem: limits are 413, an unknown format 415, anything else unreadable 422. The detail
    names no path (the stored name is the hash, the client's is not kept)."""
    status = 413 if isinstance(exc, LimitExceeded) else 415 if exc.reason == "unsupported-format" else 422
    return ApiProblem(status, exc.reason, exc.message)


class BillService:
    def __init__(self, files: FileStore, models: Models, claims: ClaimService, settings, catalogue=None,
                 register=None):
        self.files, self.models, self.claims, self.settings = files, models, claims, settings
        self.catalogue = catalogue  # a claims.catalogue.Catalogue (MEDKG_CATALOGUE, loaded once), or None
        self.register = register  # a claims.hospitals.HospitalRegister (MEDKG_HOSPITAL_REGISTER), or None

    def check_size(self, data: bytes) -> None:
        limit = self.settings.max_file_bytes
        if len(data) > limit:
            raise ApiProblem(413, "limit:max_file_bytes",
                             f"a file has {len(data):,} bytes, over MEDKG_MAX_FILE_BYTES={limit:,}")
        if not data:
            raise ApiProblem(422, "empty", "a file is empty (0 bytes)")

    def inspect(self, data: bytes):
        """Open a file (format, pages, pixels: every limit of ``ocr.readers`` checked before any OCR)."""
        from ocr.readers import open_document

        sha, _ = self.files.put(data)
        try:
            return open_document(data, name=f"upload-{sha[:12]}")
        except InputError as exc:
            raise input_problem(exc) from None

    def stage(self, blobs: list[bytes]) -> list:
        """For a job: every file checked (a bad one fails the upload at once), their stored paths."""
        return [self.files.path(self.inspect(data).document.doc_id) for data in blobs]

    def structure(self, blobs: list[bytes], source: str) -> list[str]:
        from claims.document import structure_document

        docs = [self.inspect(data) for data in blobs]  # every file checked before the first is OCR'd
        claims = []
        for src in docs:
            try:
                with self.models.use("ocr") as engine:
                    pages = engine.read(src.pages(), src.document.doc_id)
            except InputError as exc:
                raise input_problem(exc) from None
            claims += structure_document(pages)
        from claims.bureau import with_bureau_data

        claims = with_bureau_data(claims, self.catalogue, self.register)  # as pipelines.bills.ReadBills adds it
        return self.claims.store_new(claims, source)

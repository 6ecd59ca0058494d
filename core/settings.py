"""Every tunable in one place, read from the environment (prefix ``MEDKG_``).

Limits are explicit settings so an operator can see and change them; each one is named in the
error raised when an input exceeds it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Precision = Literal["auto", "int8", "bf16", "fp32"]


def _default_models_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "medkg" / "models"


def _default_data_dir() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "medkg" / "api"


def _default_feeds_dir() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "medkg" / "feeds"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDKG_", extra="ignore")

    models: Path = Field(default_factory=_default_models_dir, description="model directory (MEDKG_MODELS)")
    threads: int = Field(0, ge=0, description="inference threads; 0 = one per available core")

    # OCR
    ocr_models: str = Field("ppocrv6", description="OCR model generation, or a directory of the user's models")
    ocr_precision: Precision = "auto"
    ocr_rec_batch: int = Field(8, ge=1, description="crops per recognition batch (8 measured fastest: less padding)")
    ocr_det_max_side: int = Field(1280, ge=320, description="detection input's longest side, pixels")
    ocr_det_fine_max_side: int = Field(2560, ge=0, description="longest side a page whose text is small at "
                                       "ocr_det_max_side is detected again at, pixels (0: never)")
    ocr_seals: int = Field(4, ge=0, le=16, description="red seals per page whose ring is read (ocr.seals; 0: none)")
    ocr_under_seals: bool = Field(True, description="detect again in the rows each seal spans with its red ink taken "
                                  "out (ocr.stamps): print the page's detection missed there is added, lines the "
                                  "stamp cut short are read whole")
    pdf_dpi: int = Field(200, ge=72, le=600)

    # Input limits
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_page_pixels: int = Field(40_000_000, ge=1, description="per page, guards against decompression bombs")
    max_pages: int = Field(100, ge=1)
    page_timeout_s: float = Field(120.0, gt=0)

    # HTTP API (`medkg serve`, api/); README "serve and try it"
    data_dir: Path = Field(default_factory=lambda: _default_data_dir(), description="API state: users, jobs, claims, files")
    pseudonym_key: str = Field("", description="HMAC key of researchers' pseudonymised ids; empty: generated into data_dir")
    cohort_k: int = Field(5, ge=2, description="counts below k are suppressed in researcher responses")
    api_rate_per_s: float = Field(20.0, gt=0, description="requests per second per API key (token bucket refill)")
    api_burst: int = Field(60, ge=1, description="token bucket size per API key")
    api_request_timeout_s: float = Field(120.0, gt=0, description="a request running longer answers 504")
    api_max_files: int = Field(20, ge=1, description="files per upload")
    api_sync_max_files: int = Field(2, ge=1, description="uploads with more files run as a background job")
    api_sync_max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="uploads larger than this run as a job")
    api_jwt_key: str = Field("", description="OAuth2 bearer JWTs: PEM public key (RS*/ES*) or shared secret (HS*)")
    api_jwt_algorithms: str = Field("RS256", description="accepted JWT algorithms, comma separated")
    api_jwt_audience: str = Field("", description="required JWT audience (empty: not checked)")
    api_jwt_issuer: str = Field("", description="required JWT issuer (empty: not checked)")
    api_jwt_role_claim: str = Field("medkg_role", description="JWT claim holding the medkg role")
    catalogue: str = Field("", description="the bureau's catalogue (CSV/XLSX): uploads and bill jobs match their "
                           "line items to it, as `medkg ingest bills --catalogue` does; empty: no matching")
    hospital_register: str = Field("", description="the bureau's hospital register (CSV: code, name, level, aliases): "
                                   "each claim's hospital is matched to it for its code and level (claims.hospitals); "
                                   "empty: none")

    # Claims reconciliation (claims/reconcile, `medkg reconcile`): how far a bill may differ from the HIS charges
    reconcile_amount_tolerance: float = Field(0.01, ge=0, description="yuan: an amount or unit price may differ by this")
    reconcile_relative_tolerance: float = Field(0.0, ge=0, description="fraction of the charged amount also tolerated")
    reconcile_quantity_tolerance: float = Field(0.0, ge=0, description="units a billed quantity may differ by")
    reconcile_name_threshold: float = Field(85.0, ge=0, le=100, description="rapidfuzz score pairing a bill line with a charge by name")
    reconcile_near_duplicate: float = Field(0.9, gt=0, le=1, description="share of equal lines making two bills near-duplicates")
    reconcile_mapping_threshold: float = Field(80.0, ge=0, le=100, description="score mapping a diagnosis to the disease dictionary")
    # the bureau's files (CSV/XLSX; several joined by os.pathsep): the defaults of `medkg reconcile` and the API
    reconcile_rules: str = Field("", description="restriction rule files (drug, service …)")
    reconcile_catalogue: str = Field("", description="catalogue files, for matching printed names to codes")
    reconcile_classes: str = Field("", description="class dictionaries: item code → 费用项目")
    reconcile_diseases: str = Field("", description="disease dictionary: ICD classes with their grouped names")

    # HIS feeds (feeds/, `medkg feeds ...`): REDIS_URL points at a production Redis/Valkey instead of the embedded one
    feeds_dir: Path = Field(default_factory=lambda: _default_feeds_dir(), description="embedded Valkey's data directory")
    feeds_stream: str = Field("medkg:feeds", description="the stream raw HL7/FHIR messages are appended to")
    feeds_dead_stream: str = Field("medkg:feeds:dead", description="what could not be accepted or processed, with why")
    feeds_group: str = Field("medkg-graph", description="consumer group of the streaming pipeline")
    feeds_encoding: str = Field("utf-8", description="HL7 v2 byte encoding on the wire: utf-8 or gb18030")
    feeds_max_frame_bytes: int = Field(1024 * 1024, ge=1024, description="largest MLLP frame accepted")
    feeds_host: str = Field("127.0.0.1", description="MLLP gateway listen address")
    feeds_port: int = Field(2575, ge=0, le=65535, description="MLLP gateway port (0: pick a free one)")
    feeds_read_count: int = Field(64, ge=1, description="stream entries per read (one bundle)")
    feeds_block_ms: int = Field(500, ge=1, description="XREADGROUP blocking timeout")
    feeds_claim_idle_ms: int = Field(30_000, ge=1, description="pending entries idle this long are reclaimed")
    feeds_max_deliveries: int = Field(5, ge=1, description="an entry delivered more often is dead-lettered")

    def inference_threads(self) -> int:
        return self.threads or len(os.sched_getaffinity(0))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

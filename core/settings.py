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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDKG_", extra="ignore")

    models: Path = Field(default_factory=_default_models_dir, description="model directory (MEDKG_MODELS)")
    threads: int = Field(0, ge=0, description="inference threads; 0 = one per available core")

    # OCR
    ocr_models: str = Field("ppocrv6", description="OCR model generation, or a directory of the user's models")
    ocr_precision: Precision = "auto"
    ocr_rec_batch: int = Field(8, ge=1, description="crops per recognition batch (8 measured fastest: less padding)")
    ocr_det_max_side: int = Field(1280, ge=320, description="detection input's longest side, pixels")
    pdf_dpi: int = Field(200, ge=72, le=600)

    # Input limits
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_page_pixels: int = Field(40_000_000, ge=1, description="per page, guards against decompression bombs")
    max_pages: int = Field(100, ge=1)
    page_timeout_s: float = Field(120.0, gt=0)

    def inference_threads(self) -> int:
        return self.threads or len(os.sched_getaffinity(0))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

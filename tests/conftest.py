"""Shared fixtures. Models are the real prepared ones (`make setup` builds them); nothing is mocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def ocr_engine(settings):
    from ocr.models import ModelNotPrepared
    from ocr.pipeline import OcrEngine

    try:
        return OcrEngine.load(settings=settings)
    except ModelNotPrepared as exc:
        pytest.fail(f"{exc}. The test command runs after `make setup`, which prepares the models.")

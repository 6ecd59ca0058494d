"""Shared fixtures. Models are the real prepared ones (`make setup` builds them); nothing is mocked."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

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


class GraphDB(NamedTuple):
    server: object  # graph.server.EmbeddedServer
    driver: object  # neo4j.Driver
    database: str


@pytest.fixture(scope="module")
def valkey(tmp_path_factory):
    """A real embedded Valkey (the feed buffer), one per test module that asks for it, in a fresh folder."""
    from feeds.buffer import EmbeddedValkey

    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="session")
def graph_db(tmp_path_factory):
    """One real embedded graph server (ArcadeDB over Bolt) for the graph tests, schema initialised. Tests
    share it: each uses its own ids."""
    neo4j = pytest.importorskip("neo4j")
    pytest.importorskip("arcadedb_embedded")
    from graph.schema import init_schema
    from graph.server import EmbeddedServer

    server = EmbeddedServer(tmp_path_factory.mktemp("graph-db"), heap="512m")
    conn = server.connection()
    try:
        with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
            init_schema(driver, conn.database)
            yield GraphDB(server, driver, conn.database)
    finally:
        server.down()


@pytest.fixture(scope="session")
def api(request, graph_db, tmp_path_factory):
    """One full `medkg serve` for the whole session (models loaded once), shared by the API and UI tests."""
    from api_helpers import shared_api

    return shared_api(request, graph_db, tmp_path_factory)

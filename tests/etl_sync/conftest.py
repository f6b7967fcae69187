"""A small generated legacy dataset, backfilled once per test into a fresh target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from rps_port.db import make_engine
from rps_port.etl import Mapping, RunSummary, Source, load_mapping, open_source, run_backfill
from rps_port.legacy.generate import generate

from .mongo_script import mongo_from_dump


@pytest.fixture(scope="session")
def sync_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 customers (~1,300 documents) as a mongodump and mongoexport."""
    out = tmp_path_factory.mktemp("legacy-sync")
    generate(out, 120, seed=21, fmt="both")
    return out


@pytest.fixture
def loaded(db_url: str, sync_dataset: Path) -> Engine:
    """A target holding the backfill of `sync_dataset`."""
    engine = make_engine(db_url)
    source = open_source(sync_dataset)
    summary = run_backfill(engine, source, load_mapping())
    assert summary.balanced
    yield engine
    engine.dispose()


@dataclass
class LiveLegacy:
    """An in-process legacy MongoDB (mongomock, filled from the dump) and a target backfilled from it."""

    client: Any
    engine: Engine
    mapping: Mapping
    source: Source
    first: RunSummary  # the backfill's summary


@pytest.fixture
def live_loaded(db_url: str, sync_dataset: Path) -> LiveLegacy:
    client = mongo_from_dump(sync_dataset)
    engine = make_engine(db_url)
    mapping = load_mapping()
    source = open_source("mongodb://x", client=client)
    first = run_backfill(engine, source, mapping)
    yield LiveLegacy(client, engine, mapping, source, first)
    engine.dispose()

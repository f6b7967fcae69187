"""Generated legacy datasets for the ETL tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rps_port.legacy.generate import generate


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 customers (~3,300 documents) as mongodump and mongoexport, with its manifest."""
    out = tmp_path_factory.mktemp("legacy-small")
    generate(out, 300, seed=11, fmt="both")
    return out


@pytest.fixture(scope="session")
def dataset_10k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 customers (~111,000 documents) as a mongodump: the issue's "done when" dataset."""
    out = tmp_path_factory.mktemp("legacy-10k")
    generate(out, 10_000, seed=3, fmt="bson")
    return out

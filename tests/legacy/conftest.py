"""One generated legacy dataset per test session (10,000 customers, both formats) and its recount."""

from __future__ import annotations

from pathlib import Path

import bson
import pytest
from bson import json_util
from bson.codec_options import CodecOptions
from bson.json_util import CANONICAL_JSON_OPTIONS

from rps_port.legacy import Manifest, generate

from .recount import Recount

DATASET_CUSTOMERS = 10_000
DATASET_SEED = 20240229
_TZ = CodecOptions(tz_aware=True)
_JSON_TZ = CANONICAL_JSON_OPTIONS.with_options(tz_aware=True)


@pytest.fixture(scope="session")
def legacy_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    out = tmp_path_factory.mktemp("legacy-dataset")
    manifest = generate(out, DATASET_CUSTOMERS, seed=DATASET_SEED, fmt="both")
    return out, manifest


@pytest.fixture(scope="session")
def legacy_recount(legacy_dataset: tuple[Path, Manifest]) -> tuple[Recount, int]:
    """Reads every .bson file with bson.decode_file_iter and every export line with json_util.loads,
    checks the two agree document for document, and recounts the quirks from the BSON documents.
    Returns the recount and the number of documents compared across formats."""
    out, _ = legacy_dataset
    recount = Recount()
    compared = 0
    for collection, visit in (("customers", recount.customer), ("orders", recount.order),
                              ("transactions", recount.transaction)):
        with open(out / "rps" / f"{collection}.bson", "rb") as raw, \
                open(out / "export" / f"{collection}.json", encoding="utf-8") as lines:
            for doc in bson.decode_file_iter(raw, codec_options=_TZ):
                line = lines.readline()
                exported = json_util.loads(line, json_options=_JSON_TZ)
                assert exported == doc, f"{collection} {doc['_id']}: export differs from dump"
                assert list(exported) == list(doc), f"{collection} {doc['_id']}: field order differs"
                compared += 1
                visit(doc)
            assert lines.readline() == "", f"{collection}: export has more documents than the dump"
    recount.finish()
    return recount, compared

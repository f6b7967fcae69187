"""Same seed, same bytes; another seed, other data; the dump layout is what mongodump writes."""

from __future__ import annotations

import json
from pathlib import Path

import bson
import pytest

from rps_port.legacy import generate
from rps_port.legacy.generate import GenerateError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    generate(tmp_path / "a", 300, seed=7, fmt="both")
    generate(tmp_path / "b", 300, seed=7, fmt="both")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == [
        "export/customers.json", "export/orders.json", "export/transactions.json",
        "manifest-ids.json", "manifest.json",
        "rps/customers.bson", "rps/customers.metadata.json", "rps/orders.bson", "rps/orders.metadata.json",
        "rps/transactions.bson", "rps/transactions.metadata.json",
    ]
    assert a == b


def test_different_seed_gives_different_data(tmp_path):
    generate(tmp_path / "a", 300, seed=7)
    generate(tmp_path / "b", 300, seed=8)
    for name in ("customers", "orders", "transactions"):
        assert (tmp_path / "a" / "rps" / f"{name}.bson").read_bytes() != (
            tmp_path / "b" / "rps" / f"{name}.bson"
        ).read_bytes()


def test_regenerating_into_the_same_directory_overwrites(tmp_path):
    generate(tmp_path, 200, seed=1)
    first = _files(tmp_path)
    generate(tmp_path, 50, seed=2)
    generate(tmp_path, 200, seed=1)
    assert _files(tmp_path) == first


def test_switching_format_removes_the_other_formats_stale_files(tmp_path):
    generate(tmp_path, 20, seed=1, fmt="both")
    generate(tmp_path, 20, seed=1, fmt="bson")
    assert not any((tmp_path / "export").iterdir())
    generate(tmp_path, 20, seed=1, fmt="json")
    assert not any((tmp_path / "rps").iterdir())
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [
        "customers.json", "orders.json", "transactions.json"
    ]


def test_mongodump_metadata_shape(tmp_path):
    generate(tmp_path, 5, seed=1, db="legacy_rps")
    for name in ("customers", "orders", "transactions"):
        meta = json.loads((tmp_path / "legacy_rps" / f"{name}.metadata.json").read_text())
        assert list(meta) == ["options", "indexes", "uuid", "collectionName", "type"]
        assert meta["collectionName"] == name and meta["type"] == "collection"
        assert len(meta["uuid"]) == 32 and int(meta["uuid"], 16) >= 0
        assert meta["indexes"][0] == {"v": {"$numberInt": "2"}, "key": {"_id": {"$numberInt": "1"}}, "name": "_id_"}
        # The .bson file is whole BSON documents back to back.
        raw = (tmp_path / "legacy_rps" / f"{name}.bson").read_bytes()
        docs = bson.decode_all(raw)
        assert len(docs) >= 1 and all("_id" in d for d in docs)


def test_zero_customers_writes_empty_collections(tmp_path):
    manifest = generate(tmp_path, 0, seed=1, fmt="json")
    assert manifest.total_documents == 0
    assert (tmp_path / "export" / "orders.json").read_text() == ""
    assert not (tmp_path / "rps").exists()


@pytest.mark.parametrize("kwargs,message", [
    ({"fmt": "csv"}, "format must be one of"),
    ({"customers": -1}, "customers must be >= 0"),
    ({"db": "../x"}, "db must be a plain directory name"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    args = {"customers": 1, **kwargs}
    with pytest.raises(GenerateError, match=message):
        generate(tmp_path, args.pop("customers"), **args)


_SUBPROCESS_GENERATE = "import sys; from rps_port.legacy import generate; generate(sys.argv[1], 150, seed=11, fmt='both')"


def test_identical_across_processes_with_different_hash_seeds(tmp_path):
    import os
    import subprocess
    import sys

    for name, hash_seed in (("a", "1"), ("b", "4242")):
        subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_GENERATE, str(tmp_path / name)],
            check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
    assert _files(tmp_path / "a") == _files(tmp_path / "b")

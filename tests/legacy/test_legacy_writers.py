"""The export writer's fast canonical Extended JSON equals pymongo's json_util byte for byte."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import bson
import pytest
from bson import Decimal128, Int64, ObjectId
from bson.codec_options import CodecOptions

from rps_port.legacy.writers import dumps_canonical, dumps_canonical_reference

EDGE_VALUES = {
    "empty_list": [], "empty_doc": {}, "nested_empty": [{}, []],
    "int32_max": 2**31 - 1, "int32_min": -(2**31), "int64": 2**31, "int64_neg": -(2**31) - 1, "Int64": Int64(5),
    "neg_zero": -0.0, "huge": 1e300, "noise": 19.990000000000002, "nan": float("nan"), "inf": float("-inf"),
    "bool": True, "null": None, "text": 'q"\\\n\t\u2028😀\x00 Zoë 東京', "oid": ObjectId("5f" * 12),
    "dec_nan": Decimal128("NaN"), "dec_neg_zero": Decimal128("-0.00"), "dec_big": Decimal128("1E+6144"),
    "dec": Decimal128("19.90"), "before_epoch": datetime(1960, 1, 1, tzinfo=UTC),
    "date": datetime(2024, 2, 29, 12, 0, 0, 123000, tzinfo=UTC),
}


@pytest.mark.parametrize("key", sorted(EDGE_VALUES))
def test_edge_values(key):
    doc = {"_id": ObjectId("0" * 24), key: EDGE_VALUES[key]}
    assert dumps_canonical(doc) == dumps_canonical_reference(doc)


def test_generated_documents(legacy_dataset):
    out, _ = legacy_dataset
    for name in ("customers", "orders", "transactions"):
        with open(out / "rps" / f"{name}.bson", "rb") as raw, open(out / "export" / f"{name}.json", encoding="utf-8") as lines:
            docs = bson.decode_file_iter(raw, codec_options=CodecOptions(tz_aware=True))
            for doc, line in itertools.islice(zip(docs, lines, strict=False), 5_000):
                assert line.rstrip("\n") == dumps_canonical_reference(doc)


def test_fast_decimal128_equals_pymongo():
    import random
    from decimal import Decimal

    from rps_port.legacy.documents import decimal128

    rng = random.Random(5)
    values = [Decimal(v) for v in ("0", "0.00", "-0.00", "1E+3", "19.99", "9" * 34, "-" + "1" * 34 + "E-40")]
    values += [Decimal(rng.randint(0, 10**15)).scaleb(-rng.randint(0, 6)) * rng.choice((1, -1)) for _ in range(5000)]
    for value in values:
        fast, reference = decimal128(value), Decimal128(value)
        assert fast.bid == reference.bid and str(fast) == str(reference), value


def test_parallel_json_export_writes_the_same_bytes(tmp_path):
    from rps_port.legacy import generate

    generate(tmp_path / "inline", 250, seed=4, fmt="both", parallel_json=False)
    generate(tmp_path / "worker", 250, seed=4, fmt="json", parallel_json=True)
    for name in ("customers", "orders", "transactions"):
        inline = (tmp_path / "inline" / "export" / f"{name}.json").read_bytes()
        assert inline and inline == (tmp_path / "worker" / "export" / f"{name}.json").read_bytes()


def test_export_worker_failure_is_raised_with_its_cause(tmp_path):
    from rps_port.legacy.export_worker import ExportWorkerError, JsonExportWorker

    worker = JsonExportWorker({"orders": tmp_path / "no-such-dir" / "orders.json"})
    with pytest.raises(ExportWorkerError, match="FileNotFoundError"), worker:
        for _ in range(100):
            worker.add("orders", bson.encode({"_id": ObjectId(), "pad": "x" * 10_000}))

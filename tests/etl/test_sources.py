"""Sources: mongodump (root or db folder), mongoexport, and a live MongoDB through pymongo's API (mongomock)."""

from __future__ import annotations

import mongomock
import pytest
from bson import ObjectId

from rps_port.etl.mapping import load_mapping
from rps_port.etl.sources import DumpSource, ExportSource, MongoSource, SourceError, open_source
from rps_port.legacy.manifest import Manifest


def test_open_source_accepts_a_dump_root_a_db_folder_and_an_export_folder(small_dataset, tmp_path):
    assert isinstance(open_source(small_dataset), DumpSource)
    assert isinstance(open_source(small_dataset / "rps"), DumpSource)
    assert isinstance(open_source(small_dataset / "export"), ExportSource)
    (tmp_path / "notes").mkdir()  # a folder holding neither (the dataset's own parent is shared by other tests)
    (tmp_path / "notes" / "readme.txt").write_text("not a dump")
    with pytest.raises(SourceError, match="neither a mongodump"):
        open_source(tmp_path)


def test_dump_and_export_hold_the_same_documents_in_the_same_order(small_dataset):
    manifest = Manifest.load(small_dataset)
    dump, export = open_source(small_dataset / "rps"), open_source(small_dataset / "export")
    for name, stats in manifest.collections.items():
        assert dump.stats(name).count == export.stats(name).count == stats.total
        a = [d["_id"] for _, d in dump.scan(name)]
        b = [d["_id"] for _, d in export.scan(name)]
        assert a == b


def test_ranges_partition_a_collection_and_positions_resume_exactly(small_dataset):
    src = open_source(small_dataset)
    stats = src.stats("orders")
    ids = sorted(str(d["_id"]) for _, d in src.scan("orders"))
    mid = ids[len(ids) // 2]
    left = [str(d["_id"]) for _, d in src.scan("orders", "", mid, stats.max_id)]
    right = [str(d["_id"]) for _, d in src.scan("orders", mid, None, stats.max_id)]
    assert sorted(left + right) == ids and not set(left) & set(right)
    assert all(i < mid for i in left) and all(i >= mid for i in right)
    # a bound below the max leaves the newer documents out
    bounded = [str(d["_id"]) for _, d in src.scan("orders", "", None, mid)]
    assert max(bounded) == mid and src.count_beyond("orders", mid) == len(ids) - len(bounded)
    # resume from the position recorded after the 100th document
    scanned = list(src.scan("orders"))
    pos = scanned[99][0]
    rest = [str(d["_id"]) for _, d in src.scan("orders", start=pos)]
    assert rest == [str(d["_id"]) for _, d in scanned[100:]]


def test_mongodb_source_through_the_pymongo_api(small_dataset):
    client = mongomock.MongoClient()
    dump = open_source(small_dataset)
    for name in ("customers", "orders"):
        client["rps"][name].insert_many([d for _, d in dump.scan(name)])
    src = open_source("ignored", client=client, db="rps")
    assert isinstance(src, MongoSource)
    assert src.collections() == ["customers", "orders"]
    stats = src.stats("orders")
    assert stats.count == dump.stats("orders").count and stats.max_id == dump.stats("orders").max_id
    scanned = list(src.scan("orders"))
    assert [p for p, _ in scanned] == sorted(p for p, _ in scanned)  # _id order; the position is the last id
    rest = list(src.scan("orders", start=scanned[9][0]))
    assert [d["_id"] for _, d in rest] == [d["_id"] for _, d in scanned[10:]]
    newer = ObjectId()
    client["rps"]["orders"].insert_one({"_id": newer, "number": "late"})
    assert src.count_beyond("orders", stats.max_id) == 1
    assert not any(d["_id"] == newer for _, d in src.scan("orders", bound=stats.max_id))
    fetched = list(src.fetch("orders", [str(scanned[0][1]["_id"])]))
    assert fetched[0]["_id"] == scanned[0][1]["_id"]
    # the mapping reads what pymongo returns
    mapping = load_mapping()
    assert mapping.map_document("customers", next(iter(src.scan("customers")))[1]).row["id"]


def test_mongoexport_extended_json_v1_and_v2_read_alike(tmp_path):
    """mongoexport before 4.2 wrote Extended JSON v1 (`{"$date": <ms>}`, `{"$numberLong": ...}` in strict mode)."""
    folder = tmp_path / "export"
    folder.mkdir()
    v1 = ('{"_id":{"$oid":"5f2000000000000000000001"},"org":{"$oid":"5f1d7f0c2a4b6c8d9e0f1a2b"},"name":"A",'
          '"status":"active","createdAt":{"$date":1577836800123},"marketingOptIn":"true"}\n')
    v2 = ('{"_id":{"$oid":"5f2000000000000000000002"},"org":{"$oid":"5f1d7f0c2a4b6c8d9e0f1a2b"},"name":"B",'
          '"status":"active","createdAt":{"$date":{"$numberLong":"1577836800123"}},"marketingOptIn":true}\n')
    relaxed = ('{"_id":{"$oid":"5f2000000000000000000003"},"org":"5f1d7f0c2a4b6c8d9e0f1a2b","name":"C",'
               '"status":"active","createdAt":{"$date":"2020-01-01T00:00:00.123Z"},"marketingOptIn":true}\n')
    (folder / "customers.json").write_text(v1 + v2 + relaxed)
    src = open_source(folder)
    mapping = load_mapping()
    rows = [mapping.map_document("customers", d).row for _, d in src.scan("customers")]
    assert [r["name"] for r in rows] == ["A", "B", "C"]
    assert len({r["created_at"] for r in rows}) == 1 and rows[0]["created_at"].microsecond == 123000
    assert all(r["marketing_opt_in"] is True for r in rows)


def test_ranges_hold_about_equal_document_counts_when_ids_are_unevenly_spread(tmp_path):
    """ObjectIds are timestamps: a collection that grew over time packs most ids into the last part
    of the id space. Ranges are cut at the quantiles of a sample of ids, not evenly over the space."""
    from bson import ObjectId, encode

    from rps_port.etl.backfill import split_ids
    from rps_port.etl.sources import in_range, open_source

    folder = tmp_path / "rps"
    folder.mkdir()
    # 200 documents over the first 90% of the time span, 1,800 in the last 10%.
    start, span = 1_500_000_000, 100_000_000
    stamps = [start + i * (span * 9 // 10) // 200 for i in range(200)]
    stamps += [start + span * 9 // 10 + i * (span // 10) // 1800 for i in range(1800)]
    ids = [ObjectId(format(ts, "08x") + format(i, "016x")) for i, ts in enumerate(stamps)]
    (folder / "orders.bson").write_bytes(b"".join(encode({"_id": oid, "n": i}) for i, oid in enumerate(ids)))

    source = open_source(folder)
    stats = source.stats("orders")
    keys = [str(oid) for oid in ids]
    for parts in (2, 4):
        ranges = split_ids(stats.min_id, stats.max_id, parts, stats.sample)
        counts = [sum(1 for k in keys if in_range(k, lo, hi, stats.max_id)) for lo, hi in ranges]
        assert sum(counts) == len(keys)
        assert len(counts) == parts
        assert max(counts) <= 1.2 * len(keys) / parts, counts
    # without a sample, the even split of the id space puts 90% of the documents in the last range
    even = split_ids(stats.min_id, stats.max_id, 2)
    assert sum(1 for k in keys if in_range(k, *even[1], stats.max_id)) > 0.85 * len(keys)


def test_documents_beyond_the_bound_are_counted_even_when_the_file_grew_after_its_stats(small_dataset, tmp_path):
    import shutil

    import bson

    folder = tmp_path / "rps"
    shutil.copytree(small_dataset / "rps", folder)
    src = open_source(folder)
    stats = src.stats("orders")
    scans = []
    raw = src._raw
    src._raw = lambda *a: scans.append(a) or raw(*a)  # type: ignore[method-assign]

    assert src.count_beyond("orders", stats.max_id) == 0 and scans == []  # nothing past the largest id: no scan
    below = sorted(str(d["_id"]) for _, d in src.scan("orders"))[-3]
    scans.clear()
    assert src.count_beyond("orders", below) == 2 and len(scans) == 1

    with open(folder / "orders.bson", "ab") as fh:  # the dump grows after its stats were read
        fh.write(bson.encode({"_id": ObjectId(), "number": "late"}))
    assert src.count_beyond("orders", stats.max_id) == 1


def test_an_unreachable_mongodb_is_a_clear_error_without_its_credentials():
    import socket

    from typer.testing import CliRunner

    from rps_port.cli.main import app

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"mongodb://bob:s3cret@127.0.0.1:{port}/rps?serverSelectionTimeoutMS=300"
    with pytest.raises(SourceError) as caught:
        open_source(uri)
    message = str(caught.value)
    assert "cannot reach MongoDB" in message and f"127.0.0.1:{port}" in message
    assert "s3cret" not in message and "bob" not in message
    result = CliRunner().invoke(app, ["etl", "dry-run", "--source", uri])
    printed = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2 and "cannot reach MongoDB" in printed and "s3cret" not in printed

"""A 10,000-customer dataset: the manifest matches an independent recount of the files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rps_port.legacy import Manifest, legacy_decrypt
from rps_port.legacy.quirks import QUIRKS

from .conftest import DATASET_CUSTOMERS
from .recount import Recount

SECRET = "rps-legacy-test-secret"


def test_both_formats_hold_the_same_documents(legacy_dataset, legacy_recount):
    _, manifest = legacy_dataset
    _, compared = legacy_recount
    assert compared == manifest.total_documents


def test_every_planted_quirk_count_matches_the_recount(legacy_dataset, legacy_recount):
    _, manifest = legacy_dataset
    recount, _ = legacy_recount
    assert recount.problems == []
    expected = {key: recount.quirks.get(key, 0) for key in manifest.quirks}
    assert manifest.quirks == expected
    assert set(recount.quirks) <= set(manifest.quirks), "the recount found quirks the manifest does not name"


def test_every_quirk_in_the_table_is_present(legacy_dataset):
    _, manifest = legacy_dataset
    missing = [q.key for q in QUIRKS if manifest.quirks.get(q.key, 0) == 0]
    assert missing == []


def test_collection_totals_and_expected_etl_outcome(legacy_dataset, legacy_recount):
    _, manifest = legacy_dataset
    recount, _ = legacy_recount
    assert manifest.collections["customers"].total == DATASET_CUSTOMERS
    for name, stats in manifest.collections.items():
        assert stats.total == recount.totals[name]
        assert stats.soft_deleted == recount.soft_deleted[name]
        rejects = recount.rejects[name]
        assert stats.broken == len(rejects)
        by_reason = {reason: sum(1 for r in rejects.values() if r == reason) for reason in stats.expected.reject}
        assert stats.expected.reject == by_reason
        assert set(rejects.values()) <= set(stats.expected.reject)
        assert stats.expected.load == stats.total - len(rejects)
        for warning, count in stats.expected.load_warnings.items():
            assert count == recount.warnings[f"{name}.{warning}"], warning
    # About 4 orders and 6 transactions per customer.
    assert 3.5 < manifest.collections["orders"].total / DATASET_CUSTOMERS < 4.5
    assert 5.5 < manifest.collections["transactions"].total / DATASET_CUSTOMERS < 6.5


def test_manifest_ids_list_each_reject_and_dangling_reference(legacy_dataset, legacy_recount):
    out, manifest = legacy_dataset
    recount, _ = legacy_recount
    ids = json.loads((out / manifest.ids_file).read_text(encoding="utf-8"))
    for key, listed in ids["ids"].items():
        assert set(listed) == recount.ids[key], key
        assert len(listed) == manifest.quirks[key]
    for name, rejects in ids["rejects"].items():
        assert rejects == recount.rejects[name]


def test_rates_match_the_table_for_whole_collection_quirks(legacy_dataset):
    _, manifest = legacy_dataset
    checked = 0
    for q in QUIRKS:
        if not q.applies_to.startswith("all ") or q.rate >= 1.0:
            continue
        n = manifest.collections[q.collection].total
        observed = manifest.quirks[q.key]
        sigma = math.sqrt(n * q.rate * (1 - q.rate))
        # Forced shapes (e.g. order-number duplicates) shift a few rates a little: allow 1.5% of n too.
        assert abs(observed - q.rate * n) <= 5 * sigma + 0.015 * n, (q.key, observed, q.rate * n)
        checked += 1
    assert checked > 30


def test_invariants_of_the_legacy_data(legacy_dataset, legacy_recount):
    _, manifest = legacy_dataset
    recount: Recount = legacy_recount[0]
    # Order numbers are unique per org among live documents (documents without an org are rejected).
    assert max(n for (org, _), n in recount.live_numbers.items() if org) == 1
    # providerRef is unique per provider.
    assert max(recount.provider_refs.values()) == 1
    # Tenancy: every org/client/project triple is one the manifest declares, and nests correctly.
    projects = {
        (org["id"], client["id"], project)
        for org in manifest.orgs
        for client in org["clients"]
        for project in client["projects"]
    }
    clients = {(o, c) for o, c, _ in projects}
    orgs = {o for o, _, _ in projects}
    assert 3 <= len(orgs) <= 5
    for org, client, project in recount.tenancy:
        assert org is None or org in orgs
        if org and client:
            assert (org, client) in clients
        if org and client and project:
            assert (org, client, project) in projects


@pytest.mark.parametrize("collection,field", [("customers", "taxId"), ("transactions", "card.last4")])
def test_encrypted_fields_decrypt_with_the_test_secret(legacy_dataset, collection, field):
    import bson
    from bson.codec_options import CodecOptions

    out: Path = legacy_dataset[0]
    seen = 0
    with open(out / "rps" / f"{collection}.bson", "rb") as raw:
        for doc in bson.decode_file_iter(raw, codec_options=CodecOptions(tz_aware=True)):
            value = doc.get("taxId") if field == "taxId" else (doc.get("card") or {}).get("last4")
            if isinstance(value, str) and value.startswith("enc:v1:"):
                plain = legacy_decrypt(value, SECRET)
                assert plain.isdigit() and len(plain) == 4 if field == "card.last4" else plain[:2].isalpha()
                seen += 1
            if seen >= 300:
                break
    assert seen >= 300


def test_manifest_round_trips(legacy_dataset):
    out, manifest = legacy_dataset
    assert Manifest.load(out) == manifest
    data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert data["seed"] == manifest.seed and data["generator_version"]
    assert data["quirks"]["orders.total_cents_only"] > 0
    assert data["rates"]["orders.broken_totals"]["reject"] == "totals_mismatch"
    for files in data["files"].values():
        for rel in files.values():
            assert (out / rel).is_file()

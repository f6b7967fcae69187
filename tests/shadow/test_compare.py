"""Comparator, rules, noise model and statistics on canonical forms."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rps_port.shadow.canonical import Rows, canonical_from_new, canonical_from_rows
from rps_port.shadow.compare import diff
from rps_port.shadow.recorder import Observation, Recorder, RequestInfo
from rps_port.shadow.rules import ShadowRules, load_rules
from rps_port.shadow.stats import verdict, wilson

ORG = "65a1f0c2e4b0a1b2c3d4e5f6"
TX = "65a1f0c2e4b0a1b2c3d42001"


def tx_new(**over: object) -> dict:
    body = {"id": TX, "org_id": ORG, "client_id": None, "project_id": None,
            "created_at": "2024-01-02T03:04:05.678Z", "updated_at": "2024-01-02T03:04:05.678Z",
            "deleted_at": None, "order_id": None, "customer_id": None, "parent_id": None, "kind": "charge",
            "status": "succeeded", "amount": "24.9000", "currency": "EUR", "provider": "stripe",
            "provider_ref": "ch_1", "card": {"brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2030},
            "failure_code": None, "processed_at": None}
    body.update(over)
    return body


def tx_rows(**over: object) -> Rows:
    row = {"id": TX, "org_id": ORG, "created_at": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
           "updated_at": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "kind": "charge",
           "status": "succeeded", "amount": Decimal("24.90"), "currency": "EUR", "provider": "stripe",
           "provider_ref": "ch_1", "card_brand": "visa", "card_last4": "4242", "card_exp_month": 1,
           "card_exp_year": 2030, "extra": {"x": 1}, "src_updated_at": None}
    row.update(over)
    return Rows(row)


def test_rows_and_api_answers_meet_in_one_canonical_form() -> None:
    rules = ShadowRules()
    a = rules.apply(canonical_from_rows("transactions", tx_rows()))
    b = rules.apply(canonical_from_new("transactions", tx_new()))
    assert a == b  # 24.90 == 24.9000, ISO string == datetime, card columns == card object
    assert diff(a, b, rules) == []


def test_difference_kinds_and_paths() -> None:
    rules = ShadowRules()
    legacy = {"a": 1, "items": [{"p": Decimal("1.00")}, {"p": Decimal(2)}], "gone": 1, "t": "x"}
    new = {"a": 2, "items": [{"p": Decimal("1.0")}, {"p": Decimal(3)}], "more": 1, "t": 5}
    got = {(d.path, d.template, d.kind) for d in diff(legacy, new, rules)}
    assert got == {
        ("a", "a", "value_changed"),
        ("items[1].p", "items[*].p", "value_changed"),
        ("gone", "gone", "missing"),
        ("more", "more", "extra"),
        ("t", "t", "type_changed"),
    }
    # arrays of different lengths are aligned (DeepDiff): one element missing, not every one shifted
    got = diff({"tags": ["a", "b", "c"]}, {"tags": ["a", "c"]}, rules)
    assert [(d.template, d.kind, d.legacy) for d in got] == [("tags[*]", "missing", "b")]


def test_rules_ignore_tolerance_sets_truncation(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "ignore: ['updated_at', 'items[*].name']\n"
        "tolerance: {'items[*].p': '0.005'}\n"
        "set_arrays: {'tags': null, 'items': 'sku'}\n"
        "datetime_truncate: s\n"
    )
    rules = load_rules(path)
    t = datetime(2024, 1, 1, 0, 0, 1, 999000, tzinfo=UTC)
    legacy = {"updated_at": t, "at": t, "tags": ["b", "a"],
              "items": [{"sku": "A", "p": Decimal("1.001"), "name": "x"}, {"sku": "B", "p": Decimal(2)}]}
    new = {"updated_at": None, "at": t.replace(microsecond=0), "tags": ["a", "b"],
           "items": [{"sku": "B", "p": Decimal(2)}, {"sku": "A", "p": Decimal("1.004"), "name": "y"}]}
    assert diff(rules.apply(legacy), rules.apply(new), rules) == []
    new["items"][1]["p"] = Decimal("1.01")
    [d] = diff(rules.apply(legacy), rules.apply(new), rules)
    assert (d.path, d.template, d.kind) == ("items[A].p", "items[*].p", "value_changed")

    bad = tmp_path / "bad.yaml"
    bad.write_text("tolerance: {'x': '-1'}\n")
    with pytest.raises(ValueError, match="bad.yaml: tolerance"):
        load_rules(bad)


def test_free_form_json_is_compared_as_the_legacy_json_shows_it() -> None:
    rules = ShadowRules()
    stored = {"meta": {"at": {"$date": {"$numberLong": "1500517037394"}}, "ref": {"$oid": "5" * 24}}}
    served = {"meta": {"at": "2017-07-20T02:17:17.394Z", "ref": "5" * 24}}
    assert diff(rules.apply(stored), rules.apply(served), rules) == []


def test_wilson_bounds_and_verdicts() -> None:
    lo, hi = wilson(0, 10)
    assert lo < 1e-12 and 0.27 < hi < 0.29
    lo, hi = wilson(5, 100)
    assert 0.02 < lo < 0.022 and 0.11 < hi < 0.113
    assert verdict(0, 10, 0.01) == "inconclusive"  # too few samples to pass
    assert verdict(0, 1000, 0.01) == "pass"
    assert verdict(50, 1000, 0.01) == "fail"
    assert verdict(0, 0, 0.01) == "inconclusive"


def _obs(endpoint: str, diffs: list, noise: set[str] | None) -> Observation:
    from rps_port.shadow.compare import Difference

    return Observation(endpoint, RequestInfo("GET", "/api/x", "/x"), "compared",
                       diffs=[("r", Difference(p, p, "value_changed", 1, 2)) for p in diffs], noise=noise)


def test_noise_subtraction_learns_paths_that_differ_between_legacy_reads() -> None:
    rec = Recorder(ShadowRules(noise_margin=0.05), min_samples=5)
    # `updated_at` differs legacy-vs-new in 40% of requests, and legacy-vs-legacy in 40% too: noise.
    # `total` differs in 10% of requests and never between legacy reads: a real mismatch.
    for i in range(100):
        diffs = (["updated_at"] if i % 5 in (0, 1) and i % 10 else []) + (["total"] if i % 10 == 0 else [])
        noise = {"updated_at"} if i % 5 in (1, 2) else set()
        rec.add(_obs("GET /api/orders/:id", diffs, noise))
    report = rec.report()
    [e] = report.endpoints
    assert e.mismatches == 10 and e.compared == 100
    assert [f.path for f in report.fingerprints] == ["total"]
    assert any(n.path == "updated_at" and n.suppressed for n in report.noise)


def test_reports_never_carry_pii_in_clear() -> None:
    from rps_port.shadow.compare import Difference

    rec = Recorder(ShadowRules(), min_samples=1)
    legacy = {"id": "c" * 24, "name": "Ada", "email": "ada@example.com", "tax_id": "DE123", "phone": "+4930"}
    new = {**legacy, "tax_id": "DE124"}
    obs = Observation("GET /api/customers/:id", RequestInfo("GET", "/api/customers/x", "/customers/x"), "compared",
                      diffs=[("c" * 24, Difference("tax_id", "tax_id", "value_changed", "DE123", "DE124"))],
                      records={"c" * 24: (legacy, new)})
    rec.add(obs)
    text = rec.report().model_dump_json()
    for secret in ("DE123", "DE124", "ada@example.com", "+4930"):
        assert secret not in text
    [fp] = rec.report().fingerprints
    ex = fp.examples[0]
    assert ex.legacy != ex.new and ex.legacy.startswith("<redacted #")  # still shows that they differ
    assert ex.legacy_record["email"] == ex.new_record["email"]  # equal values, equal digests

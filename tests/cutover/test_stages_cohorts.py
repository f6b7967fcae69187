from __future__ import annotations

import pytest

from rps_port.cutover import stages as st
from rps_port.cutover.cohorts import CohortPolicy, Overrides, bucket, parse_steps
from rps_port.ids import new_object_id


def test_every_stage_says_who_reads_writes_and_is_authoritative():
    assert [s for s in st.STAGE_NAMES] == ["legacy", "shadow", "canary", "live", "complete"]
    assert st.stage("legacy").authoritative == st.Side.LEGACY
    assert st.stage("canary").reads == st.Side.COHORT and st.stage("canary").writes == st.Side.LEGACY
    assert st.stage("live").writes == st.Side.NEW and st.stage("live").authoritative == st.Side.NEW


def test_forward_moves_are_explicit():
    st.check_forward("legacy", "shadow")
    with pytest.raises(st.TransitionError, match="next stage is shadow"):
        st.check_forward("legacy", "live")
    with pytest.raises(st.TransitionError, match="last stage"):
        st.check_forward("complete", "legacy")
    with pytest.raises(st.TransitionError, match="unknown stage"):
        st.check_forward("legacy", "prod")


def test_rollback_one_back_or_to_legacy_never_from_complete():
    assert st.rollback_targets("live") == ["canary", "legacy"]
    assert st.rollback_targets("canary") == ["shadow", "legacy"]
    assert st.rollback_targets("shadow") == ["legacy"]
    assert st.rollback_targets("legacy") == []
    with pytest.raises(st.TransitionError, match="legacy is retired"):
        st.check_rollback("complete", "live")
    with pytest.raises(st.TransitionError, match="allowed: canary, legacy"):
        st.check_rollback("live", "shadow")


def test_bucket_is_sha256_of_the_id_and_stable():
    import hashlib

    oid = "5f0c2b9e8a1d4e3f2a1b0c9d"
    assert bucket(oid) == int.from_bytes(hashlib.sha256(oid.encode()).digest()[:8], "big") % 10_000
    assert bucket(oid) == bucket(oid)


def test_an_org_never_flips_back_as_the_percentage_rises():
    orgs = [new_object_id() for _ in range(2000)]
    previous: set[str] = set()
    for pct in parse_steps("1,5,25,50,100"):
        cohort = {o for o in orgs if CohortPolicy(pct).contains(o)}
        assert previous <= cohort, f"an org left the cohort at {pct}%"
        previous = cohort
    assert previous == set(orgs)
    share = sum(CohortPolicy(25).contains(o) for o in orgs) / len(orgs)
    assert 0.20 < share < 0.30


def test_allow_and_deny_lists_override_the_hash_and_deny_wins():
    org, other = new_object_id(), new_object_id()
    zero = CohortPolicy(0, overrides=Overrides(allow_orgs=frozenset({org})))
    assert zero.contains(org) and not zero.contains(other)
    full = CohortPolicy(100, overrides=Overrides(allow_orgs=frozenset({org}), deny_orgs=frozenset({org})))
    assert not full.contains(org) and full.contains(other)
    client = new_object_id()
    pol = CohortPolicy(100, overrides=Overrides(deny_clients=frozenset({client})))
    assert not pol.contains(other, client) and pol.contains(other, new_object_id())


def test_cohorts_by_client_bucket_org_and_client_together():
    org = new_object_id()
    clients = [new_object_id() for _ in range(400)]
    pol = CohortPolicy(50, by="client")
    decisions = {pol.contains(org, c) for c in clients}
    assert decisions == {True, False}  # clients of one org are split
    assert all(CohortPolicy(50, by="org").contains(org, c) == CohortPolicy(50).contains(org) for c in clients)


def test_ramp_steps_are_validated():
    assert parse_steps("1,5,25,50,100") == [1, 5, 25, 50, 100]
    assert parse_steps("10,50") == [10, 50, 100]
    for bad in ("5,1", "0,10", "abc", "10,120"):
        with pytest.raises(ValueError, match="RPS_CUTOVER_RAMP_STEPS"):
            parse_steps(bad)

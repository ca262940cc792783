"""The approval state of a run (pure): binding to an occurrence, counting, refusing, replaying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.approvals import Approval, approved, grant, new_approval, waiting_reason

T0 = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
OPENS = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(hours=2)


def state(**rule: object) -> dict:
    return new_approval(
        Approval(**rule), now=T0, opens_at=OPENS, closes_at=CLOSES, requested_by="slack:T/UREQ"
    )


def test_a_request_expires_when_its_occurrence_closes_or_after_expires():
    assert state()["expires_at"] == CLOSES.isoformat()
    assert state(expires="1h")["expires_at"] == (T0 + timedelta(hours=1)).isoformat()
    assert state()["occurrence"] == OPENS.isoformat()


def test_counting_to_min_approvals_and_the_refusals():
    s = state(min_approvals=2)
    assert waiting_reason(s, T0) == "awaiting approval (0 of 2)"
    g = grant(s, who="slack:T/UA", event_id="e1", now=T0, to_version="v2")
    assert g.code == "counted" and not approved(g.state)
    s = g.state
    assert grant(s, who="slack:T/UA", event_id="e2", now=T0, to_version="v2").code == "already"
    assert grant(s, who="slack:T/UREQ", event_id="e3", now=T0, to_version="v2").code == "self"
    replay = grant(s, who="slack:T/UA", event_id="e1", now=T0, to_version="v2")
    assert replay.replay and replay.code == "counted"
    g = grant(s, who="slack:T/UB", event_id="e4", now=T0, to_version="v2")
    assert g.code == "approved" and approved(g.state) and waiting_reason(g.state, T0) is None
    assert grant(g.state, who="slack:T/UC", event_id="e5", now=T0, to_version="v2").code == "already"


def test_a_button_counts_only_for_its_own_request():
    s = state()
    other = grant(s, who="u", event_id="e", now=T0, to_version="v2", binding_version="v1", bound=True)
    assert other.code == "superseded"
    stale = grant(
        s,
        who="u",
        event_id="e",
        now=T0,
        to_version="v2",
        binding_version="v2",
        bound=True,
        binding_occurrence="2026-06-09T00:00:00+00:00",
    )
    assert stale.code == "stale"
    ok = grant(
        s,
        who="u",
        event_id="e",
        now=T0,
        to_version="v2",
        binding_version="v2",
        bound=True,
        binding_occurrence=OPENS.isoformat(),
    )
    assert ok.code == "approved"


def test_an_expired_request_refuses_and_an_approved_one_lapses():
    s = state()
    assert grant(s, who="u", event_id="e", now=CLOSES, to_version="v2").code == "expired"
    g = grant(s, who="u", event_id="e", now=T0, to_version="v2")
    assert waiting_reason(g.state, CLOSES) is not None, "approved, but its occurrence closed"
    assert grant(
        state(prevent_self_approval=False), who="slack:T/UREQ", event_id="e", now=T0, to_version="v2"
    ).ok


def test_a_windowless_run_takes_a_late_approval_as_a_new_request():
    s = new_approval(Approval(expires="1h"), now=T0, opens_at=None, closes_at=None)
    late = T0 + timedelta(hours=2)
    assert waiting_reason(s, late) is not None
    g = grant(s, who="u", event_id="e", now=late, to_version="v2")
    assert g.code == "approved" and g.state["expires_at"] == (late + timedelta(hours=1)).isoformat()
    assert waiting_reason(g.state, late) is None

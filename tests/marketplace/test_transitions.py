"""The one transition table of a read request: every allowed move goes through and is written down (who,
from, to, why); every other move is a 409 naming the current state, and changes nothing."""

from __future__ import annotations

import itertools

import pytest

from accounts.models import AuditEvent
from core.errors import ApplicationError
from marketplace.models import TRANSITIONS, ReadRequest, ReadRequestStatusChange, Status
from marketplace.services.requests import read_request_transition
from tests.marketplace.helpers import actor, post

PAIRS = list(itertools.product(Status.values, Status.values))
ALLOWED = [(a, b) for a, b in PAIRS if b in TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in PAIRS if b not in TRANSITIONS[a]]


def _request_in(cast, study, state: str) -> ReadRequest:
    """A draft request put straight into ``state`` (test setup only: the table is what is under test)."""
    read_request = post(cast.technologist, study, publish=False)
    ReadRequest.objects.filter(pk=read_request.pk).update(status=state)
    read_request.refresh_from_db()
    return read_request


def test_the_table_covers_every_state_and_the_final_states_lead_nowhere():
    assert set(TRANSITIONS) == set(Status.values)
    assert len(ALLOWED) == 14
    for final in (Status.CLOSED, Status.CANCELLED, Status.EXPIRED):
        assert TRANSITIONS[final] == frozenset()


@pytest.mark.parametrize(("from_state", "to_state"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_an_allowed_move_changes_state_and_writes_who_from_to_and_why(cast, ct_study, from_state, to_state):
    read_request = _request_in(cast, ct_study, from_state)
    moved = read_request_transition(read_request=read_request, to=to_state, actor=actor(cast.center_admin),
                                    reason="because the test says so")
    assert moved.status == to_state
    assert read_request.status == to_state
    assert ReadRequest.objects.get(pk=read_request.pk).status == to_state
    change = ReadRequestStatusChange.objects.get(read_request=read_request)
    assert (change.actor, change.from_status, change.to_status, change.reason) == (
        cast.center_admin, from_state, to_state, "because the test says so")
    audit = AuditEvent.objects.filter(object_id=str(read_request.public_id)).first()
    assert (audit.action, audit.actor, audit.organization_id) == (f"read_request.{to_state}", cast.center_admin,
                                                                 cast.center.pk)
    assert audit.extra == {"from": from_state, "to": to_state}


@pytest.mark.parametrize(("from_state", "to_state"), REFUSED, ids=[f"{a}->{b}" for a, b in REFUSED])
def test_a_move_not_in_the_table_is_a_409_naming_the_current_state(cast, ct_study, from_state, to_state):
    read_request = _request_in(cast, ct_study, from_state)
    with pytest.raises(ApplicationError) as refused:
        read_request_transition(read_request=read_request, to=to_state, actor=actor(cast.center_admin))
    error = refused.value
    assert error.status_code == 409
    assert error.code == "invalid_transition"
    assert f"is {Status(from_state).label.lower()}:" in error.message
    assert error.fields == {"status": [f"{from_state} → {to_state} is not allowed"]}
    assert ReadRequest.objects.get(pk=read_request.pk).status == from_state
    assert not ReadRequestStatusChange.objects.filter(read_request=read_request).exists()


def test_the_clock_moves_with_no_actor_and_the_history_says_so(cast, ct_study):
    read_request = _request_in(cast, ct_study, Status.OPEN)
    read_request_transition(read_request=read_request, to=Status.EXPIRED, actor=None, reason="deadline passed")
    change = read_request.status_changes.get()
    assert change.actor is None
    assert change.reason == "deadline passed"


def test_fields_are_written_with_the_move_and_a_refused_move_writes_none(cast, ct_study, reader):
    read_request = _request_in(cast, ct_study, Status.OPEN)
    read_request_transition(read_request=read_request, to=Status.ASSIGNED, actor=None, fields={"assignee": reader})
    assert ReadRequest.objects.get(pk=read_request.pk).assignee == reader
    with pytest.raises(ApplicationError):
        read_request_transition(read_request=read_request, to=Status.CLOSED, actor=None, fields={"assignee": None})
    assert ReadRequest.objects.get(pk=read_request.pk).assignee == reader


def test_a_stale_object_is_judged_by_the_row_not_by_its_own_state(cast, ct_study):
    """The service locks and reads the row: an object loaded before another move cannot replay it."""
    read_request = _request_in(cast, ct_study, Status.OPEN)
    stale = ReadRequest.objects.get(pk=read_request.pk)
    read_request_transition(read_request=read_request, to=Status.CANCELLED, actor=None)
    with pytest.raises(ApplicationError, match="is cancelled"):
        read_request_transition(read_request=stale, to=Status.ASSIGNED, actor=None)

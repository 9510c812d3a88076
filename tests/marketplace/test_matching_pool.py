"""The hot path's pool snapshot (``marketplace.services.matching_pool``): kept per process while PostgreSQL's
pool version stands still, so a warm match costs the request's own queries only; and never stale, because
every committed write to a table the pool reads moves the version. These tests commit for real
(transactional), change each watched table in turn, and hold the warm hot path to the full match, which never
uses the snapshot."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.db import connection, transaction

from accounts.models import (
    License,
    MalpracticeInsurance,
    Membership,
    MqsaQualification,
    Organization,
    RadiologistProfile,
    User,
)
from marketplace.coverage_models import ExtraShift
from marketplace.models import ReaderQuality, ReadingHours, ReadRequest, TimeOff
from marketplace.services import matching_pool
from marketplace.services.matching import match
from tests.marketplace.helpers import (
    a_monday_ahead,
    ingest_study,
    make_radiologist,
    post,
    set_rate,
    signed_read,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]

AT = a_monday_ahead()
DAY = AT.date()


def _answer(result) -> tuple:
    """What a match says, candidates and left-out alike (the group's name aside: the hot path does not load it)."""
    return (
        [(c.radiologist_id, c.name, c.capacity, c.rank, tuple(c.rank_reasons), c.on_shift, c.available_from,
          c.preferred) for c in result.candidates],
        {c.radiologist_id: tuple(r.split(" (")[0] for r in c.reasons) for c in result.excluded},
    )


def _agrees(hot, full) -> bool:
    """The hot path's answer is the full match's: the same candidates in the same order with the same reasons,
    and the same reasons for everyone it left out (it never sees those without a license there)."""
    (hot_candidates, hot_excluded), (full_candidates, full_excluded) = _answer(hot), _answer(full)
    return hot_candidates == full_candidates and all(full_excluded[i] == r for i, r in hot_excluded.items())


def _hot(read_request: ReadRequest):
    return match(ReadRequest.objects.select_related("center").get(pk=read_request.pk), at=AT, eligible_only=True)


def _full(read_request: ReadRequest):
    return match(ReadRequest.objects.select_related("center").get(pk=read_request.pk), at=AT)


@pytest.fixture
def world(cast):
    """A mammogram overread (MQSA needed; the original reader and their group, Night Hawk, in conflict) and
    six readers: ``readers[0]`` in Night Hawk, ``readers[5]`` with no hours of their own."""
    make_radiologist(user=cast.radiologist, mqsa=True)
    study = ingest_study(cast.center, modality="MG", patient=3)
    original = signed_read(cast.technologist, study, cast.radiologist)
    readers = [make_radiologist(mqsa=True, group=cast.group if i == 0 else None,
                                hours="none" if i == 5 else "always") for i in range(6)]
    overread = post(cast.technologist, study, publish=False, kind="overread", original_request=original,
                    deadline=AT + timedelta(hours=6))
    return overread, readers, cast


def _user(profile: RadiologistProfile) -> User:
    return User.objects.get(pk=profile.user_id)


# Each committed change to a watched table, and the reader it concerns: all change that reader's answer.
CHANGES = {
    "license expired": lambda p, cast: License.objects.filter(radiologist=p).update(
        expires_on=DAY - timedelta(days=1)),
    "user deactivated": lambda p, cast: User.objects.filter(pk=p.user_id).update(is_active=False),
    "user renamed": lambda p, cast: User.objects.filter(pk=p.user_id).update(full_name="Dr Renamed"),
    "malpractice lapsed": lambda p, cast: MalpracticeInsurance.objects.filter(radiologist=p).update(
        expires_on=DAY - timedelta(days=1)),
    "MQSA pending": lambda p, cast: MqsaQualification.objects.filter(radiologist=p).update(status="pending"),
    "profile without MG": lambda p, cast: RadiologistProfile.objects.filter(pk=p.pk).update(modalities=["CT"]),
    "hours removed": lambda p, cast: ReadingHours.objects.filter(radiologist=p).delete(),
    "minimum rate above the quote": lambda p, cast: set_rate(p, "MG", "routine", 10**7),
    "quality recorded": lambda p, cast: ReaderQuality.objects.create(radiologist=p, reviews=40, concordant=10),
    "time off": lambda p, cast: TimeOff.objects.create(radiologist=p, starts_at=AT - timedelta(hours=1),
                                                      ends_at=AT + timedelta(days=9)),
    "membership ended": lambda p, cast: Membership.objects.filter(user_id=p.user_id,
                                                                  organization=cast.group).update(is_active=False),
    "group no longer a group": lambda p, cast: Organization.objects.filter(pk=cast.group.pk).update(
        kind=Organization.Kind.IMAGING_CENTER),
    "extra shift": lambda p, cast: ExtraShift.objects.create(radiologist=p, starts_at=AT - timedelta(hours=1),
                                                             ends_at=AT + timedelta(hours=8)),
}
WHO = {"membership ended": 0, "group no longer a group": 0, "extra shift": 5}


def test_a_warm_match_reuses_the_snapshot_and_equals_the_full_match(world, django_assert_max_num_queries):
    overread, readers, _ = world
    cold = _hot(overread)
    assert cold.candidates, "nobody eligible: the comparison would prove little"
    built = matching_pool._SNAPSHOTS.copy()
    with django_assert_max_num_queries(4):  # the version, the request's lists, privileges, caseload
        warm = _hot(overread)
    assert built == matching_pool._SNAPSHOTS  # nothing rebuilt
    assert _answer(warm) == _answer(cold)
    assert _agrees(warm, _full(overread))


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_committed_change_to_any_table_the_pool_reads_is_seen_at_once(world, change):
    overread, readers, cast = world
    before = _answer(_hot(overread))  # the snapshot stands now
    version = matching_pool._version()
    CHANGES[change](readers[WHO.get(change, 1)], cast)  # autocommit: committed on return
    assert matching_pool._version() == version + 1
    after = _hot(overread)
    assert _agrees(after, _full(overread))
    assert _answer(after) != before, "the change made no difference: the test would prove nothing"


def test_a_transaction_that_wrote_the_pool_reads_the_database_and_a_rollback_leaves_the_version(world):
    overread, readers, _ = world
    before = _answer(_hot(overread))
    version = matching_pool._version()
    with transaction.atomic():
        License.objects.filter(radiologist=readers[1]).update(expires_on=DAY - timedelta(days=1))
        assert matching_pool._version() is None  # dirty: this transaction's writes are not counted yet
        inside = _hot(overread)
        assert readers[1].pk not in {c.radiologist_id for c in inside.candidates}
        assert _agrees(inside, _full(overread))
        transaction.set_rollback(True)
    assert matching_pool._version() == version
    assert _answer(_hot(overread)) == before


def test_one_transaction_moves_the_version_once_and_unwatched_columns_not_at_all(world):
    _, readers, cast = world
    version = matching_pool._version()
    with transaction.atomic():
        for profile in readers:
            TimeOff.objects.create(radiologist=profile, starts_at=AT + timedelta(days=20),
                                   ends_at=AT + timedelta(days=21))
    assert matching_pool._version() == version + 1
    User.objects.filter(pk=readers[2].user_id).update(last_login=AT)
    Organization.objects.filter(pk=cast.center.pk).update(name="Lakeside Imaging North")
    assert matching_pool._version() == version + 1


def test_truncate_moves_the_version(world):
    version = matching_pool._version()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE marketplace_extrashift")
    assert matching_pool._version() == version + 1


def test_the_snapshot_is_per_day_so_a_license_ending_today_counts_today_only(world):
    overread, readers, _ = world
    License.objects.filter(radiologist=readers[1]).update(expires_on=DAY)  # the last day counts
    request = ReadRequest.objects.select_related("center").get(pk=overread.pk)
    today = match(request, at=AT, eligible_only=True)
    tomorrow = match(request, at=AT + timedelta(days=1), eligible_only=True)
    assert readers[1].pk in {c.radiologist_id for c in today.candidates}
    assert readers[1].pk not in {c.radiologist_id for c in tomorrow.candidates}
    assert _agrees(tomorrow, match(request, at=AT + timedelta(days=1)))
    assert _answer(match(request, at=AT, eligible_only=True)) == _answer(today)  # both days kept


def test_what_calls_keep_with_the_snapshot_is_kept_per_question(world):
    """The rule's reasons are kept by modalities and subspecialty: requests of one jurisdiction that differ in
    one of the two, asked in turn, each get their own answer, the full match's."""
    _, readers, cast = world
    RadiologistProfile.objects.filter(pk=readers[2].pk).update(subspecialties=["body"])
    RadiologistProfile.objects.filter(pk=readers[3].pk).update(modalities=["CT", "MG"])

    def request(modality: str, subspecialty: str = "") -> ReadRequest:
        return post(cast.technologist, ingest_study(cast.center, modality=modality, patient=8), publish=False,
                    subspecialty=subspecialty, deadline=AT + timedelta(hours=6))

    ct, ct_neuro, mr_neuro = request("CT"), request("CT", "neuro"), request("MR", "neuro")
    answers = {}
    for _ in range(2):
        for read_request in (ct, ct_neuro, mr_neuro):
            hot = _hot(read_request)
            assert _agrees(hot, _full(read_request))
            answers[read_request.pk] = {c.radiologist_id for c in hot.candidates}
    assert readers[2].pk in answers[ct.pk]
    assert readers[2].pk not in answers[ct_neuro.pk]
    assert readers[3].pk in answers[ct_neuro.pk]
    assert readers[3].pk not in answers[mr_neuro.pk]


def test_a_process_keeps_the_snapshots_used_last(world, monkeypatch):
    overread, _, _ = world
    monkeypatch.setattr(matching_pool, "KEPT", 2)
    matching_pool._SNAPSHOTS.clear()
    request = ReadRequest.objects.select_related("center").get(pk=overread.pk)
    days = [AT + timedelta(days=n) for n in range(3)]
    for at in (days[0], days[1], days[0], days[2]):  # the first day used again before the third comes
        match(request, at=at, eligible_only=True)
    kept = [day for _, _, day in matching_pool._SNAPSHOTS]
    assert kept == [days[0].astimezone(UTC).date(), days[2].astimezone(UTC).date()]


def test_a_direct_request_to_a_group_that_is_no_longer_one_goes_to_nobody(world):
    """The pool knows a reader's radiology groups only: a member of an organization that stopped being a group
    is not in it for a direct request to that organization, as the full match says."""
    _, readers, cast = world
    direct = post(cast.technologist, ingest_study(cast.center, modality="CT", patient=8), publish=False,
                  audience="direct", direct_group=cast.group, deadline=AT + timedelta(hours=6))
    assert readers[0].pk in {c.radiologist_id for c in _hot(direct).candidates}  # Night Hawk's members
    Organization.objects.filter(pk=cast.group.pk).update(kind=Organization.Kind.IMAGING_CENTER)
    hot, full = _hot(direct), _full(direct)
    assert _agrees(hot, full)
    assert hot.candidates == []

"""Reads of credentialing, always scoped to the actor (404 for what they may not see)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from accounts.credentials import policy
from accounts.credentials.eligibility import Eligibility, eligibility_bulk
from accounts.credentials.models import (
    ITEM_MODELS,
    CredentialDocument,
    CredentialItem,
    CredentialKind,
    CredentialStatusChange,
    FacilityPrivilege,
    RadiologistProfile,
    VerificationStatus,
)
from accounts.models import Membership, Organization, Role
from accounts.policy import Actor
from core.errors import NotFound

ITEM_RELATED = {
    CredentialKind.LICENSE: "licenses",
    CredentialKind.BOARD: "board_certifications",
    CredentialKind.INSURANCE: "malpractice_policies",
    CredentialKind.MQSA: "mqsa_qualifications",
}


def profile_own(*, actor: Actor) -> RadiologistProfile | None:
    """The actor's own profile with every item (or None before onboarding starts)."""
    if actor.user is None:
        return None
    return (RadiologistProfile.objects.filter(user=actor.user).select_related("user")
            .prefetch_related(*ITEM_RELATED.values(), "privileges__center").first())


def _attach_documents(items: list[CredentialItem]) -> None:
    """Give each item ``documents`` (a list), in one query for all items."""
    by_key: dict[tuple[str, int], list[CredentialDocument]] = {}
    if items:
        kinds = {i.KIND for i in items}
        ids = {i.pk for i in items}
        for doc in CredentialDocument.objects.filter(kind__in=kinds, item_id__in=ids):
            by_key.setdefault((doc.kind, doc.item_id), []).append(doc)
    for item in items:
        item.documents = by_key.get((item.KIND, item.pk), [])


@dataclass(frozen=True)
class CredentialSheet:
    """Everything of one profile, by kind, each item carrying its documents."""

    profile: RadiologistProfile
    items: dict[str, list[CredentialItem]]
    privileges: list[FacilityPrivilege] = field(default_factory=list)

    @property
    def all_items(self) -> list[CredentialItem]:
        return [i for items in self.items.values() for i in items]


def _sheet(profile: RadiologistProfile) -> CredentialSheet:
    items = {kind: list(getattr(profile, related).all()) for kind, related in ITEM_RELATED.items()}
    flat = [i for group in items.values() for i in group]
    _attach_documents(flat)
    return CredentialSheet(profile=profile, items=items, privileges=list(profile.privileges.all()))


def credential_sheet_own(*, actor: Actor) -> CredentialSheet | None:
    profile = profile_own(actor=actor)
    return _sheet(profile) if profile else None


def credential_get(*, actor: Actor, kind: str, public_id) -> CredentialItem:
    """One item, for its owner or platform staff; everyone else (and unknown ids) get 404."""
    model = ITEM_MODELS.get(kind)
    if model is None or actor.user is None:
        raise NotFound()
    item = model.objects.select_related("radiologist__user", "verified_by").filter(public_id=public_id).first()
    if item is None or not policy.can_view_credentials(actor, item.radiologist):
        raise NotFound()
    _attach_documents([item])
    return item


def credential_get_own(*, actor: Actor, kind: str, public_id) -> CredentialItem:
    """One of the actor's own items (to edit); another radiologist's item does not exist for them."""
    item = credential_get(actor=actor, kind=kind, public_id=public_id)
    if not policy.can_edit_credentials(actor, item.radiologist):
        raise NotFound()
    return item


def credential_history(*, actor: Actor, item: CredentialItem) -> QuerySet[CredentialStatusChange]:
    if not policy.can_view_credentials(actor, item.radiologist):
        raise NotFound()
    return CredentialStatusChange.objects.filter(kind=item.KIND, item_id=item.pk).select_related("actor")


def verification_queue(*, actor: Actor, kind: str | None = None) -> list[CredentialItem]:
    """Pending items of every radiologist, oldest first (platform staff only)."""
    if not policy.is_verifier(actor):
        raise NotFound()
    items: list[CredentialItem] = []
    for item_kind, model in ITEM_MODELS.items():
        if kind and kind != item_kind:
            continue
        items += list(model.objects.filter(status=VerificationStatus.PENDING).select_related("radiologist__user"))
    items.sort(key=lambda i: i.status_changed_at)
    _attach_documents(items)
    return items


def document_get(*, actor: Actor, public_id) -> CredentialDocument:
    document = CredentialDocument.objects.select_related("radiologist").filter(public_id=public_id).first()
    if document is None or not policy.can_view_credentials(actor, document.radiologist):
        raise NotFound()
    return document


def profile_photo_get(*, actor: Actor, public_id) -> RadiologistProfile:
    """A profile's photo is shown wherever the public profile is."""
    if not policy.can_view_public_profile(actor) and actor.user is None:
        raise NotFound()
    profile = RadiologistProfile.objects.filter(public_id=public_id).exclude(photo="").first()
    if profile is None or not (policy.can_view_public_profile(actor) or policy.owns(actor, profile)):
        raise NotFound()
    return profile


# --- group admins' grid -----------------------------------------------------------------------

@dataclass(frozen=True)
class GridCell:
    status: str  # verified / pending / rejected / expired / missing
    days_left: int | None
    count: int


@dataclass(frozen=True)
class GridRow:
    profile: RadiologistProfile | None
    membership: Membership
    cells: dict[str, GridCell]


def _cell(items: list, today: date) -> GridCell:
    if not items:
        return GridCell("missing", None, 0)
    order = {"verified": 0, "pending": 1, "rejected": 2, "expired": 3}

    def state(i) -> str:
        if i.status == VerificationStatus.VERIFIED and i.expires_on and i.expires_on < today:
            return "expired"  # by the clock, even before the daily task marks it
        return i.status

    best = min(items, key=lambda i: (order.get(state(i), 9), -(i.expires_on or date.max).toordinal()))
    days = (best.expires_on - today).days if best.expires_on else None
    return GridCell(state(best), days, len(items))


def group_credential_grid(*, actor: Actor, group: Organization, today: date | None = None) -> list[GridRow]:
    """Each radiologist member of the group × each credential kind, with the best item's state and days left."""
    if not policy.can_view_group_grid(actor, group):
        raise NotFound()
    today = today or timezone.now().date()
    members = [m for m in Membership.objects.filter(organization=group, is_active=True).select_related("user")
               .order_by("user__full_name", "user__email") if Role.RADIOLOGIST in m.roles]
    profiles = {p.user_id: p for p in RadiologistProfile.objects.filter(user_id__in=[m.user_id for m in members])
                .prefetch_related(*ITEM_RELATED.values())}
    rows = []
    for membership in members:
        profile = profiles.get(membership.user_id)
        cells = {kind: _cell(list(getattr(profile, related).all()) if profile else [], today)
                 for kind, related in ITEM_RELATED.items()}
        rows.append(GridRow(profile=profile, membership=membership, cells=cells))
    return rows


# --- directory --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DirectoryEntry:
    profile: RadiologistProfile
    licensed_in: list[str]
    eligibility: Eligibility | None = None


def directory_search(*, actor: Actor, state: str = "", subspecialty: str = "", modality: str = "",
                     language: str = "", can_read_now: bool = False, center: Organization | None = None,
                     at: datetime | None = None) -> list[DirectoryEntry]:
    """Radiologists by licensed state (verified, current), subspecialty, modality and language.

    ``can_read_now`` applies the eligibility rule for the center (its jurisdiction and privilege
    requirement) at ``at`` (now by default). Queries are fixed in number, whatever the result size.
    """
    if not policy.can_use_directory(actor):
        raise NotFound()
    at = at or timezone.now()
    today = at.date()
    verified_licenses = Prefetch("licenses", to_attr="directory_licenses",
                                 queryset=_current_verified("licenses", today))
    queryset = RadiologistProfile.objects.filter(user__is_active=True).select_related("user")
    if state:
        country, _, region = state.upper().partition("-")
        if not region:  # "TX" means a US state
            country, region = "US", country
        queryset = queryset.filter(licenses__country=country, licenses__region=region,
                                   licenses__status=VerificationStatus.VERIFIED,
                                   licenses__expires_on__gte=today).distinct()
    profiles = list(queryset.prefetch_related(verified_licenses).order_by("user__full_name"))
    # The vocabularies live in JSON lists (SQLite cannot search them): filter the candidates here.
    if subspecialty:
        profiles = [p for p in profiles if subspecialty in p.subspecialties]
    if modality:
        from accounts.credentials.vocab import modality_read_by

        profiles = [p for p in profiles if modality_read_by(modality.upper(), p.modalities)]
    if language:
        profiles = [p for p in profiles if language.lower() in p.languages]
    results = {}
    if can_read_now:
        if center is None:
            raise NotFound()
        results = eligibility_bulk([p.pk for p in profiles], jurisdiction=center.jurisdiction,
                                   modalities=[modality.upper()] if modality else [],
                                   subspecialty=subspecialty or None, center=center, at=at)
        profiles = [p for p in profiles if p.pk in results and results[p.pk].eligible]
    return [DirectoryEntry(profile=p, licensed_in=sorted(lic.jurisdiction for lic in p.directory_licenses),
                           eligibility=results.get(p.pk)) for p in profiles]


def _current_verified(related: str, today: date):
    model = ITEM_MODELS[{v: k for k, v in ITEM_RELATED.items()}[related]]
    return model.objects.filter(status=VerificationStatus.VERIFIED, expires_on__gte=today)


@dataclass(frozen=True)
class PublicProfile:
    """What centers see: verified, current items only; no documents, no license numbers."""

    profile: RadiologistProfile
    licensed_in: list[tuple[str, str]]  # (jurisdiction, type label)
    boards: list
    mqsa_qualified: bool
    insured: bool


def public_profile_get(*, actor: Actor, public_id, today: date | None = None) -> PublicProfile:
    if not policy.can_view_public_profile(actor):
        raise NotFound()
    today = today or timezone.now().date()
    profile = RadiologistProfile.objects.select_related("user").filter(public_id=public_id,
                                                                       user__is_active=True).first()
    if profile is None:
        raise NotFound()

    def current(related):
        model = ITEM_MODELS[{v: k for k, v in ITEM_RELATED.items()}[related]]
        items = model.objects.filter(radiologist=profile, status=VerificationStatus.VERIFIED)
        return [i for i in items if i.covers(today)]

    licenses = sorted(current("licenses"), key=lambda lic: lic.jurisdiction)
    return PublicProfile(
        profile=profile,
        licensed_in=[(lic.jurisdiction, lic.get_license_type_display()) for lic in licenses],
        boards=current("board_certifications"),
        mqsa_qualified=any(q.meets_continuing_experience for q in current("mqsa_qualifications")),
        insured=bool(current("malpractice_policies")),
    )


# --- centers' privileges ----------------------------------------------------------------------

def privilege_list(*, actor: Actor, center: Organization) -> QuerySet[FacilityPrivilege]:
    if not policy.can_manage_privileges(actor, center):
        raise NotFound()
    return (FacilityPrivilege.objects.filter(center=center).select_related("radiologist__user", "changed_by")
            .order_by("radiologist__user__full_name"))


def privilege_get(*, actor: Actor, center: Organization, public_id) -> FacilityPrivilege:
    privilege = privilege_list(actor=actor, center=center).filter(public_id=public_id).first()
    if privilege is None:
        raise NotFound()
    return privilege


def radiologist_get_for_center(*, actor: Actor, center: Organization, public_id) -> RadiologistProfile:
    """A radiologist a center admin may grant privileges to (any active radiologist on the platform)."""
    if not policy.can_manage_privileges(actor, center):
        raise NotFound()
    profile = RadiologistProfile.objects.select_related("user").filter(public_id=public_id,
                                                                       user__is_active=True).first()
    if profile is None:
        raise NotFound()
    return profile

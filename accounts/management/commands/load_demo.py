"""Build the demo world: centers, radiology groups, radiologists with licenses, patients, finance and ops.

Idempotent: rows are found by natural keys (organization slug, user email, (user, organization),
(radiologist, country, region)); a field is written only when it differs from the demo value, so a
second run changes nothing. Passwords and license expiry dates are set only when the row is created
(a user who changed a demo password keeps it; expiry dates stay anchored to the first run's day).
Seed data, so rows are written directly rather than through services (no actor exists yet).

Then each demo center gets its studies (studies.demo): generated with pydicom, stored through the
ingest service, with UIDs derived from a fixed seed so that a second run finds them and creates
nothing. ``--studies small`` (or ``DEMO_STUDIES=small``) makes tiny images (tests), ``none`` skips them.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.demo_credentials import seed_demo_credentials
from accounts.demo_hooks import demo_loader
from accounts.models import License, Membership, Organization, RadiologistProfile, Role, User

DEFAULT_DEMO_PASSWORD = "readroom-demo-2026"  # noqa: S105 - published demo password, refused in production

SUBSPECIALTIES = frozenset({
    "neuro", "musculoskeletal", "body", "chest", "breast", "pediatric", "cardiac", "nuclear", "interventional",
    "emergency", "head_and_neck", "general",
})

CENTER = Organization.Kind.IMAGING_CENTER
GROUP = Organization.Kind.RADIOLOGY_GROUP
PLATFORM = Organization.Kind.PLATFORM

# slug: (name, legal name, kind, country, region, time zone)
ORGANIZATIONS: dict[str, tuple[str, str, str, str, str, str]] = {
    "lakeside": ("Lakeside Imaging", "Lakeside Imaging, LLC", CENTER, "US", "TX", "America/Chicago"),
    "summit": ("Summit Open MRI", "Summit Open MRI, Inc.", CENTER, "US", "CO", "America/Denver"),
    "bayview": ("Bayview Diagnostic Imaging", "Bayview Diagnostic Imaging, P.A.", CENTER, "US", "FL",
                "America/New_York"),
    "mapleleaf": ("Maple Leaf Imaging", "Maple Leaf Imaging Inc.", CENTER, "CA", "ON", "America/Toronto"),
    "nighthawk": ("Night Hawk Radiology", "Night Hawk Radiology, PLLC", GROUP, "US", "CA", "America/Los_Angeles"),
    "atlantic": ("Atlantic Teleradiology Partners", "Atlantic Teleradiology Partners, LLC", GROUP, "US", "MA",
                 "America/New_York"),
    "readroom-ops": ("ReadRoom Operations", "ReadRoom, Inc.", PLATFORM, "US", "DE", "America/New_York"),
}

# email: (full name, organization slug, roles, is_staff)
STAFF: dict[str, tuple[str, str, list[str], bool]] = {
    "admin@lakeside.demo": ("Dana Whitaker", "lakeside", [Role.ADMIN], False),
    "tech@lakeside.demo": ("Luis Ortega", "lakeside", [Role.TECHNOLOGIST], False),
    "finance@lakeside.demo": ("Grace Liu", "lakeside", [Role.FINANCE], False),
    "admin@summit.demo": ("Tom Becker", "summit", [Role.ADMIN], False),
    "admin@bayview.demo": ("Renee Castillo", "bayview", [Role.ADMIN], False),
    "admin@mapleleaf.demo": ("Claire Tremblay", "mapleleaf", [Role.ADMIN], False),
    "admin@nighthawk.demo": ("Marcus Hale", "nighthawk", [Role.ADMIN], False),
    "admin@atlantic.demo": ("Fiona Gallagher", "atlantic", [Role.ADMIN], False),
    "ops@readroom.demo": ("Priya Raman", "readroom-ops", [Role.ADMIN], True),
    "finance@readroom.demo": ("Owen Fischer", "readroom-ops", [Role.FINANCE], False),
}

# A license: (country, region, days from the first run's day until it expires).
EXPIRES_SOON = 21  # within 30 days: the credentialing pages should flag it
EXPIRED = -45


@dataclass(frozen=True)
class DemoRadiologist:
    last_name: str
    full_name: str
    credentials_line: str
    home_time_zone: str
    subspecialties: list[str]
    group: str
    licenses: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"dr.{self.last_name}@radiologists.demo"


RADIOLOGISTS = [
    DemoRadiologist("okafor", "Chinwe Okafor", "MD, FACR", "America/New_York", ["neuro", "head_and_neck"],
                    "nighthawk", [("US", "TX", 610), ("US", "FL", 480), ("US", "NY", 720)]),
    DemoRadiologist("nakamura", "Kenji Nakamura", "MD", "Pacific/Honolulu", ["body", "chest"],
                    "nighthawk", [("US", "HI", 540), ("US", "CA", 400), ("US", "TX", 365)]),
    DemoRadiologist("alvarez", "Sofia Alvarez", "MD, MPH", "America/Los_Angeles", ["musculoskeletal", "emergency"],
                    "nighthawk", [("US", "CA", 700), ("US", "CO", 300)]),
    DemoRadiologist("brennan", "Liam Brennan", "MBBS, FRANZCR", "Australia/Sydney", ["emergency", "general"],
                    "nighthawk", [("US", "TX", 500), ("US", "FL", 500), ("US", "CO", 500), ("US", "NY", 500)]),
    DemoRadiologist("haddad", "Rania Haddad", "DO", "America/Chicago", ["breast", "body"],
                    "nighthawk", [("US", "TX", EXPIRES_SOON), ("US", "OK", 420)]),
    DemoRadiologist("patel", "Anjali Patel", "MD, FRCPC", "America/Toronto", ["body", "nuclear"],
                    "nighthawk", [("CA", "ON", 380), ("US", "NY", 650)]),
    DemoRadiologist("chen", "Wei Chen", "MD, PhD", "America/Denver", ["cardiac", "chest"],
                    "atlantic", [("US", "CO", 590), ("US", "UT", 450)]),
    DemoRadiologist("kowalski", "Marta Kowalski", "MD", "Europe/Zurich", ["neuro", "pediatric"],
                    "atlantic", [("US", "FL", 530), ("US", "MA", 610)]),
    DemoRadiologist("mensah", "Kwame Mensah", "MD", "America/New_York", ["interventional", "body"],
                    "atlantic", [("US", "FL", 330), ("US", "GA", 400), ("US", "MA", 800)]),
    DemoRadiologist("rossi", "Giulia Rossi", "MD", "America/Phoenix", ["musculoskeletal"],
                    "atlantic", [("US", "AZ", 460), ("US", "CO", EXPIRED)]),
    DemoRadiologist("whitfield", "James Whitfield", "MD, FACR", "America/Chicago", ["general", "emergency"],
                    "atlantic", [("US", "TX", 690), ("US", "IL", 250)]),
    DemoRadiologist("dubois", "Amelie Dubois", "MD, FRCPC", "America/Toronto", ["pediatric", "neuro"],
                    "atlantic", [("CA", "ON", 560), ("CA", "QC", 560), ("US", "FL", 365)]),
]

# email: (full name, time zone)
PATIENTS = {
    "patient1@readroom.demo": ("Maria Gonzalez", "America/Chicago"),
    "patient2@readroom.demo": ("David Kim", "America/Los_Angeles"),
    "patient3@readroom.demo": ("Aisha Rahman", "America/Toronto"),
}


def _check_demo_data() -> None:
    """Catch a typo in the tables above before anything is written."""
    valid_roles = set(Role.values)
    for email, (_, slug, roles, _) in STAFF.items():
        if slug not in ORGANIZATIONS or not set(roles) <= valid_roles:
            raise CommandError(f"demo staff {email}: unknown organization or role")
    for doctor in RADIOLOGISTS:
        unknown = set(doctor.subspecialties) - SUBSPECIALTIES
        if unknown or ORGANIZATIONS.get(doctor.group, ("",) * 6)[2] != GROUP or not 1 <= len(doctor.licenses) <= 4:
            raise CommandError(f"demo radiologist {doctor.email}: bad subspecialty, group or licenses")


class Command(BaseCommand):
    help = "Create (or bring up to date) the demo world and print every demo login. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--allow-production", action="store_true",
                            help="Load demo users with a published password even when DJANGO_ENV=production.")
        parser.add_argument("--studies", choices=["full", "small", "none"], default=None,
                            help="Demo studies: full (default; settings.DEMO_STUDIES), small (tiny images) or none.")

    def handle(self, *args, allow_production: bool = False, studies: str | None = None, **options):
        if getattr(settings, "PRODUCTION", False) and not allow_production:
            raise CommandError("Refusing to load demo users with a published password into production "
                               "(pass --allow-production to a staging deployment if you mean it).")
        _check_demo_data()
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
        self.counts: Counter[str] = Counter()
        self.today = timezone.localdate()
        self.password = password
        self.hashed_password: str | None = None

        steps = (len(ORGANIZATIONS) + len(STAFF) + len(RADIOLOGISTS) + len(PATIENTS))
        with transaction.atomic(), tqdm(total=steps, desc="Demo world", unit="item", file=sys.stderr,
                                        disable=options.get("verbosity", 1) == 0) as progress:
            orgs: dict[str, Organization] = {}
            for slug, (name, legal_name, kind, country, region, tz) in ORGANIZATIONS.items():
                orgs[slug] = self._sync(Organization, {"slug": slug}, {
                    "name": name, "legal_name": legal_name, "kind": kind, "country": country, "region": region,
                    "time_zone": tz})
                progress.update()
            for email, (full_name, slug, roles, is_staff) in STAFF.items():
                user = self._user(email, full_name=full_name, kind=User.Kind.PROFESSIONAL,
                                  time_zone=orgs[slug].time_zone, is_staff=is_staff)
                self._membership(user, orgs[slug], roles)
                progress.update()
            for doctor in RADIOLOGISTS:
                self._radiologist(doctor, orgs[doctor.group])
                progress.update()
            for email, (full_name, tz) in PATIENTS.items():
                self._user(email, full_name=full_name, kind=User.Kind.PATIENT, time_zone=tz, is_staff=False)
                progress.update()

        # Licenses, certifications, insurance, MQSA and privileges with their verification states.
        seed_demo_credentials(self.stdout if options.get("verbosity", 1) > 1 else None)
        # Outside the transaction above: each instance is stored (file and row) in its own transaction.
        profile = studies or getattr(settings, "DEMO_STUDIES", "full")
        reports = self._studies(orgs, profile, quiet=options.get("verbosity", 1) == 0)
        marketplace = self._marketplace(orgs, profile)
        self._print_logins(orgs)
        self._print_studies(reports)
        self._print_marketplace(marketplace)

    # --- writing ------------------------------------------------------------------------------

    def _sync(self, model: type[models.Model], lookup: dict, values: dict, *, on_create: dict | None = None):
        """Find a row by its natural key; create it, or write only the fields that differ."""
        obj = model.objects.filter(**lookup).first()
        if obj is None:
            obj = model.objects.create(**lookup, **values, **(on_create or {}))
            self.counts["created"] += 1
            return obj
        changed = [name for name, value in values.items() if getattr(obj, name) != value]
        if changed:
            for name in changed:
                setattr(obj, name, values[name])
            if any(f.name == "updated_at" for f in model._meta.concrete_fields):
                changed.append("updated_at")
            obj.save(update_fields=changed)
            self.counts["updated"] += 1
        else:
            self.counts["unchanged"] += 1
        return obj

    def _user(self, email: str, *, full_name: str, kind: str, time_zone: str, is_staff: bool) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email, None, full_name=full_name, kind=kind, time_zone=time_zone,
                                            is_staff=is_staff)
            user.password = self._password_hash()
            user.save(update_fields=["password"])
            self.counts["created"] += 1
        else:
            user = self._sync(User, {"email": email}, {"full_name": full_name, "kind": kind, "time_zone": time_zone,
                                                       "is_staff": is_staff, "is_active": True})
        # allauth requires a verified address before it lets the user in.
        self._sync(EmailAddress, {"user": user, "email": email}, {"verified": True, "primary": True})
        return user

    def _password_hash(self) -> str:
        """Hash the published demo password once: a full-strength hash per demo user costs seconds for nothing."""
        if self.hashed_password is None:
            self.hashed_password = make_password(self.password)
        return self.hashed_password

    def _membership(self, user: User, organization: Organization, roles: list[str]) -> Membership:
        return self._sync(Membership, {"user": user, "organization": organization},
                          {"roles": [str(role) for role in roles], "is_active": True})

    def _radiologist(self, doctor: DemoRadiologist, group: Organization) -> None:
        user = self._user(doctor.email, full_name=doctor.full_name, kind=User.Kind.PROFESSIONAL,
                          time_zone=doctor.home_time_zone, is_staff=False)
        self._membership(user, group, [Role.RADIOLOGIST])
        profile = self._sync(RadiologistProfile, {"user": user}, {
            "credentials_line": doctor.credentials_line, "home_time_zone": doctor.home_time_zone,
            "subspecialties": list(doctor.subspecialties)})
        for country, region, days in doctor.licenses:
            number = f"{region}-{hash_digits(doctor.last_name + region):06d}"
            self._sync(License, {"radiologist": profile, "country": country, "region": region},
                       {"number": number}, on_create={"expires_on": self.today + timedelta(days=days)})

    def _studies(self, orgs: dict[str, Organization], profile: str, *, quiet: bool):
        load_demo_studies = demo_loader("studies")  # registered by studies at start-up (accounts.demo_hooks)
        if load_demo_studies is None or profile == "none":
            return []
        bars: list[tqdm] = []

        def plan(total: int) -> None:  # a progress bar only when there is something to generate
            if total:
                bars.append(tqdm(total=total, desc="Demo studies", unit="image", file=sys.stderr, disable=quiet))

        try:
            reports = load_demo_studies(orgs, profile=profile, today=self.today, plan=plan,
                                        progress=lambda n: [bar.update(n) for bar in bars])
        finally:
            for bar in bars:
                bar.close()
        for report in reports:
            self.counts["created"] += len(report.created)
            self.counts["unchanged"] += report.present
        return reports

    def _marketplace(self, orgs: dict[str, Organization], profile: str):
        """Reading hours, rates, center settings and the demo read requests (registered by marketplace)."""
        load_demo_marketplace = demo_loader("marketplace")
        if load_demo_marketplace is None:
            return None
        report = load_demo_marketplace(orgs, today=self.today, profile=profile)
        if (load_demo_reporting := demo_loader("reporting")) is not None:  # macros and reports on demo reads
            load_demo_reporting(orgs, report=report, profile=profile)
        if (load_demo_billing := demo_loader("billing")) is not None:  # contracts and invoices of the signed reads
            money = load_demo_billing(orgs, profile=profile)
            for outcome in ("created", "updated", "unchanged"):
                self.counts[outcome] += getattr(money, outcome)
        for outcome in ("created", "updated", "unchanged"):
            self.counts[outcome] += getattr(report, outcome)
        return report

    # --- output -------------------------------------------------------------------------------

    def _print_logins(self, orgs: dict[str, Organization]) -> None:
        rows: list[tuple[str, str, str]] = []
        for email, (_, slug, roles, _is_staff) in STAFF.items():
            role = ", ".join(str(r) for r in roles)
            if orgs[slug].kind == PLATFORM:
                role += " (platform staff)"
            rows.append((email, role, orgs[slug].name))
        rows += [(doctor.email, "radiologist", orgs[doctor.group].name) for doctor in RADIOLOGISTS]
        rows += [(email, "patient", "-") for email in PATIENTS]
        width = max(len(email) for email, _, _ in rows)
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(
            f"Demo world ready: {self.counts['created']} created, {self.counts['updated']} updated, "
            f"{self.counts['unchanged']} unchanged."))
        out.write(f"Demo logins (password for all: {self.password}):")
        out.write(f"  {'email':<{width}}  {'role':<28}  organization")
        for email, role, org in rows:
            out.write(f"  {email:<{width}}  {role:<28}  {org}")
        out.write("Admins, technologists, radiologists and platform staff set up an authenticator app (TOTP) "
                  "at first sign-in.")

    def _print_studies(self, reports) -> None:
        if not reports:
            return
        self.stdout.write("Demo studies (fictional patients, generated with pydicom):")
        for report in reports:
            org = report.organization
            created = "; ".join(report.created) if report.created else "none"
            self.stdout.write(f"  {org.name} ({org.jurisdiction}): {len(report.created)} created ({created}), "
                              f"{report.present} already present")
            for problem in report.problems:
                self.stdout.write(self.style.WARNING(f"    {problem}"))
            for note in report.notes:
                self.stdout.write(f"    {note}")

    def _print_marketplace(self, report) -> None:
        if report is None or not (report.notes or report.problems):
            return
        self.stdout.write("Demo read requests (posted, offered and claimed through the marketplace's services):")
        for note in report.notes:
            self.stdout.write(f"  {note}")
        for problem in report.problems:
            self.stdout.write(self.style.WARNING(f"  {problem}"))


def hash_digits(text: str) -> int:
    """A stable six-digit number for a demo license (Python's hash() changes between runs)."""
    value = 0
    for char in text:
        value = (value * 131 + ord(char)) % 1_000_000
    return value


"""Controlled vocabularies of credentialing: subspecialties, modalities, priorities, jurisdictions."""

from __future__ import annotations

import re

from django.db import models

from core.errors import ApplicationError


class Subspecialty(models.TextChoices):
    NEURO = "neuro", "Neuroradiology"
    MUSCULOSKELETAL = "musculoskeletal", "Musculoskeletal"
    BODY = "body", "Body / abdominal"
    CHEST = "chest", "Chest / thoracic"
    BREAST = "breast", "Breast"
    PEDIATRIC = "pediatric", "Pediatric"
    CARDIAC = "cardiac", "Cardiac"
    NUCLEAR = "nuclear", "Nuclear medicine / PET"
    INTERVENTIONAL = "interventional", "Interventional"
    EMERGENCY = "emergency", "Emergency"
    HEAD_AND_NECK = "head_and_neck", "Head and neck"
    GENERAL = "general", "General"


class Modality(models.TextChoices):
    """DICOM modality codes (PS3.3 C.7.3.1.1.1) that a radiologist may read."""

    CR = "CR", "CR – computed radiography"
    DX = "DX", "DX – digital radiography"
    CT = "CT", "CT – computed tomography"
    MR = "MR", "MR – magnetic resonance"
    US = "US", "US – ultrasound"
    MG = "MG", "MG – mammography"
    NM = "NM", "NM – nuclear medicine"
    PT = "PT", "PT – PET"
    XA = "XA", "XA – X-ray angiography"
    RF = "RF", "RF – fluoroscopy"
    BMD = "BMD", "BMD – bone densitometry"
    IO = "IO", "IO – intra-oral radiography"
    OT = "OT", "OT – other"


# Codes that name the same reading skill: a reader of one reads the other.
MODALITY_EQUIVALENTS: dict[str, frozenset[str]] = {
    "CR": frozenset({"CR", "DX"}), "DX": frozenset({"CR", "DX"}),
    "NM": frozenset({"NM", "PT"}), "PT": frozenset({"NM", "PT"}),
}


def modality_read_by(modality: str, read: set[str] | frozenset[str] | list[str]) -> bool:
    return bool(MODALITY_EQUIVALENTS.get(modality, frozenset({modality})) & set(read))


class Priority(models.TextChoices):
    STAT = "stat", "STAT"
    URGENT = "urgent", "Urgent"
    ROUTINE = "routine", "Routine"


# Where licenses are issued per state / province, the region must be one of these codes.
REGIONS: dict[str, frozenset[str]] = {
    "US": frozenset([
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
        "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH",
        "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR", "GU", "VI",
        "AS", "MP",
    ]),
    "CA": frozenset(["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]),
    "AU": frozenset(["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]),
}

# ISO 639-1 codes offered for "languages spoken"; any two-letter lowercase code is accepted.
COMMON_LANGUAGES = [
    ("en", "English"), ("es", "Spanish"), ("fr", "French"), ("de", "German"), ("it", "Italian"),
    ("pt", "Portuguese"), ("zh", "Chinese"), ("ja", "Japanese"), ("ko", "Korean"), ("hi", "Hindi"),
    ("ar", "Arabic"), ("pl", "Polish"), ("ru", "Russian"), ("yo", "Yoruba"), ("ig", "Igbo"), ("tw", "Twi"),
]


# Countries that license physicians per state or province: a jurisdiction there needs the region.
REGION_REQUIRED = frozenset({"US", "CA", "AU"})


_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_REGION_RE = re.compile(r"^[A-Z0-9]{1,3}$")


def clean_jurisdiction(country: str, region: str) -> tuple[str, str]:
    """Country (ISO 3166-1 alpha-2) and state/province code, upper-cased; the region is required where
    licenses are issued per state or province. Errors name the field."""
    country = (country or "").strip().upper()
    region = (region or "").strip().upper()
    if not _COUNTRY_RE.match(country):
        raise ApplicationError.for_field("country", "Enter the two-letter country code, e.g. US.")
    if region and not _REGION_RE.match(region):
        raise ApplicationError.for_field("region", "Enter the state or province code, e.g. TX (1–3 letters or "
                                                   "digits).")
    if not region and country in REGION_REQUIRED:
        raise ApplicationError.for_field("region", f"Licenses in {country} are issued per state or province: "
                                                   "enter its code, e.g. TX.")
    return country, region


def parse_jurisdiction(value: str) -> tuple[str, str]:
    """``"US-TX"`` → ``("US", "TX")``; ``"DE"`` → ``("DE", "")``. Upper-cased, not validated."""
    country, _, region = (value or "").strip().upper().partition("-")
    return country, region


def jurisdiction_code(country: str, region: str) -> str:
    return f"{country}-{region}" if region else country

"""The data contract and the checks every builder applies before delivering."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from core.errors import ApplicationError
from reporting.delivery import check_document, display_name, name_parts
from reporting.document import Section
from tests.reporting import documents


def test_impression_is_the_impression_section_text():
    assert documents.final().impression == "1. Right upper lobe mass, suspicious.\n2. No effusion."
    assert documents.final(sections=(Section("findings", "Findings", "x"),)).impression == ""


def test_documents_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        documents.final().status = "preliminary"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "draft"}, "status"),
        ({"signed_at": None}, "signed_at"),
        ({"status": "amended"}, "addenda"),
        ({"signed_at": datetime(2024, 1, 1)}, "signed_at"),  # noqa: DTZ001
    ],
)
def test_bad_documents_are_refused_naming_the_field(changes, field):
    with pytest.raises(ApplicationError) as caught:
        check_document(documents.final(**changes))
    assert field in caught.value.fields


def test_naive_addendum_time_names_the_addendum():
    doc = documents.amended()
    addenda = (doc.addenda[0], dataclasses.replace(doc.addenda[1], signed_at=datetime(2024, 1, 1)))  # noqa: DTZ001
    with pytest.raises(ApplicationError) as caught:
        check_document(dataclasses.replace(doc, addenda=addenda))
    assert "addenda[1].signed_at" in caught.value.fields


def test_dicom_person_names_split_into_their_components():
    assert name_parts("Doe^Jane^Q^Dr^Jr") == ["Doe", "Jane", "Q", "Dr", "Jr"]
    assert name_parts("=山田^太郎") == ["山田", "太郎", "", "", ""]
    assert display_name("Doe^Jane^^Dr^") == "Dr Jane Doe"

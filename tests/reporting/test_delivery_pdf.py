"""The PDF builder, read back with pypdf."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest

from core.errors import ApplicationError
from core.pdf import DEJAVU, fonts
from reporting.delivery.pdf import render_pdf
from tests.conftest import require_or_skip
from tests.reporting import documents


def pages(doc) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render_pdf(doc))).pages]


@pytest.fixture(scope="module")
def dejavu():
    require_or_skip((Path(DEJAVU) / "DejaVuSans.ttf").exists(), "DejaVu Sans (Debian package fonts-dejavu-core)")
    assert fonts() == ("DejaVuSans", "DejaVuSans-Bold")


def test_final_report_text_comes_back_in_order(dejavu):
    doc = documents.final()
    text = "\n".join(pages(doc))
    positions = [text.index(section.title) for section in doc.sections]
    assert positions == sorted(positions)
    for line in ("Lungs: " + documents.HOSTILE, "Pleura: no effusion.", "1. Right upper lobe mass, suspicious."):
        assert line in text
    assert "Clínica Imagen del Sur" in text
    assert "12 Rue de l'Église, Lyon" in text
    assert "Ana María Núñez, MD, FACR" in text
    assert "Dr. Émile Zola" in text
    assert "Lung-RADS category" in text
    assert "23 mm" in text
    # Times in the center's zone (America/Chicago) with its abbreviation.
    assert "Electronically signed by Ana María Núñez, MD, FACR on 2024-11-05 16:15 CST" in text
    assert documents.final().content_hash in text
    assert "PRELIMINARY" not in text


def test_script_and_markup_print_literally(dejavu):
    text = "\n".join(pages(documents.final()))
    assert '<script>alert("x")</script>' in text
    assert "<b>not bold</b>" in text
    assert "|^~\\&" in text


def test_preliminary_is_marked_and_unsigned(dejavu):
    text = "\n".join(pages(documents.preliminary()))
    assert "PRELIMINARY REPORT — NOT SIGNED" in text
    assert "Electronically signed" not in text
    assert "Page 1 of 1" in text


def test_amended_report_has_critical_block_and_numbered_addenda(dejavu):
    doc = documents.amended()
    all_pages = pages(doc)
    text = "\n".join(all_pages)
    assert "CRITICAL RESULT — category 1 (immediate)" in text
    assert "Communicated to Nurse Chloé Dubois by phone at 2024-11-05 16:20 CST. Read back: yes." in text
    first, second = text.index("Addendum 1"), text.index("Addendum 2")
    assert text.index("Electronically signed by Ana María Núñez, MD, FACR on 2024-11-05") < first < second
    assert "Correction: the mass measures 25 mm." in text
    assert "Electronically signed by Jürgen Groß, MD on 2024-11-06 02:00 CST" in text
    total = len(all_pages)
    for number, page in enumerate(all_pages, start=1):
        assert f"Page {number} of {total}" in page


def test_long_report_paginates_with_page_numbers_on_every_page(dejavu):
    doc = documents.huge()
    all_pages = pages(doc)
    total = len(all_pages)
    assert total > 100
    for number, page in enumerate(all_pages, start=1):
        assert f"Page {number} of {total}" in page
    text = "\n".join(all_pages)
    assert "00000 Findings line" in text
    assert "12499 Findings line" in text
    assert "Electronically signed" in all_pages[-1]


def test_a_single_enormous_line_is_not_lost(dejavu):
    words = " ".join(f"w{n:06d}" for n in range(40_000))
    doc = documents.final(sections=(documents.Section("findings", "Findings", words),))
    text = "".join(pages(doc))
    found = re.findall(r"w\d{6}", text)
    assert len(found) == 40_000


def test_cjk_and_other_scripts_come_out_intact(dejavu):
    patient = documents.Patient(name="Yamada^Tarou=山田^太郎", patient_id="JP-1")
    radiologist = documents.Person(name="Ивана Петрова 김민준", credentials="MD")
    doc = documents.final(patient=patient, radiologist=radiologist, template_name="胸部CT 検査")
    text = "\n".join(pages(doc))
    assert "Ивана Петрова 김민준, MD" in text
    assert "胸部CT 検査" in text
    assert "Tarou Yamada" in text


def test_same_document_same_bytes():
    assert render_pdf(documents.amended()) == render_pdf(documents.amended())


def test_an_unknown_status_is_refused_naming_the_field():
    with pytest.raises(ApplicationError) as caught:
        render_pdf(documents.final(status="signed"))
    assert "status" in caught.value.fields

"""The ORU^R01 builder, read back by the independent ``hl7`` parser and validated by hl7apy (strict)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from core.errors import ApplicationError
from reporting.delivery.hl7 import oru_r01
from tests.reporting import documents

NOW = datetime(2024, 11, 7, 10, 0, tzinfo=UTC)


def build(doc, **kwargs) -> str:
    return oru_r01(doc, control_id="MSG-1", now=NOW, **kwargs)


def obx_texts(message, code: str, sub_id: str | None = None) -> list[str]:
    """The lines (OBX-5 repetitions) of the OBX with OBX-3.1 ``code`` (and OBX-4 ``sub_id``), unescaped."""
    return [
        message.unescape(str(repetition))
        for obx in message.segments("OBX")
        if str(obx[3][0][0]) == code and (sub_id is None or str(obx[4]) == sub_id)
        for repetition in obx[5]
    ]


def test_final_report_parses_with_the_expected_segments_and_identifiers():
    er7 = build(documents.final(), receiving_application="RIS")
    assert "\n" not in er7
    message = hl7.parse(er7)

    assert [str(segment[0]) for segment in message][:5] == ["MSH", "PID", "PV1", "ORC", "OBR"]
    assert {str(segment[0]) for segment in message[5:]} == {"OBX"}
    msh = message.segment("MSH")
    assert str(msh[9]) == "ORU^R01^ORU_R01"
    assert str(msh[10]) == "MSG-1"
    assert str(msh[12]) == "2.5.1"
    assert str(msh[18]) == "UNICODE UTF-8"
    assert str(msh[5]) == "RIS"
    assert str(msh[6]) == "SURIMG"
    assert str(msh[7]) == "20241107100000+0000"

    obr = message.segment("OBR")
    assert str(obr[2]) == documents.final().request_id
    assert str(obr[3]) == "ACC-2024-0001"
    assert str(obr[18]) == "ACC-2024-0001"
    assert str(obr[4][0][0]) == "18748-4"
    assert str(obr[25]) == "F"
    assert str(obr[22]) == "20241105221530+0000"
    assert str(message.segment("ORC")[1]) == "RE"
    assert obx_texts(message, "113014") == [documents.STUDY.study_instance_uid]
    assert {str(obx[11]) for obx in message.segments("OBX")} == {"F"}


def test_every_section_round_trips_line_by_line_with_hostile_text_escaped():
    doc = documents.final()
    er7 = build(doc)
    # The raw message carries the separators only as escape sequences.
    findings_line = next(line for line in er7.split("\r") if "Lungs:" in line)
    assert findings_line.count("|") == 16
    assert "\\F\\\\S\\\\R\\\\E\\\\T\\" in findings_line

    message = hl7.parse(er7)
    for number, section in enumerate(doc.sections, start=1):
        lines = obx_texts(message, message_code(section.code), str(number))
        assert "\n".join(lines) == section.text
    findings = "\n".join(obx_texts(message, "59776-5"))
    assert documents.HOSTILE in findings
    assert obx_texts(message, "lung_rads") == ["4B"]
    size = next(obx for obx in message.segments("OBX") if str(obx[3][0][0]) == "nodule_size")
    assert str(size[6]) == "mm"


def message_code(section_code: str) -> str:
    from reporting.delivery import SECTION_LOINC

    return SECTION_LOINC[section_code][0]


def test_unicode_names_are_intact():
    message = hl7.parse(build(documents.final()))
    pid = message.segment("PID")
    assert str(pid[5]) == "Zoë^Ångström^Łucja"
    assert str(pid[3]) == "MRN-0042^^^SURIMG"
    assert str(pid[7]) == "19610203"
    obr = message.segment("OBR")
    assert message.unescape(str(obr[32][0][0][1])) == "Ana María Núñez"
    assert str(obr[32][0][0][0]) == "1234567893"
    assert message.unescape(str(obr[16])).endswith("Dr. Émile Zola")


def test_preliminary_report_is_status_p_without_signature_times():
    message = hl7.parse(build(documents.preliminary()))
    assert str(message.segment("OBR")[25]) == "P"
    assert str(message.segment("ORC")[5]) == "IP"
    assert {str(obx[11]) for obx in message.segments("OBX")} == {"P"}
    assert all(len(obx) <= 14 or str(obx[14]) == "" for obx in message.segments("OBX"))
    # The status-change time falls back to the message time for an unsigned preliminary.
    assert str(message.segment("OBR")[22]) == "20241107100000+0000"


def test_amended_report_carries_addenda_critical_result_and_status_c():
    doc = documents.amended()
    message = hl7.parse(build(doc))
    assert str(message.segment("OBR")[25]) == "C"
    assert {str(obx[11]) for obx in message.segments("OBX")} == {"C"}
    addenda = [obx for obx in message.segments("OBX") if str(obx[3][0][0]) == "55107-7"]
    assert [message.unescape(str(obx[5])) for obx in addenda] == [a.text for a in doc.addenda]
    assert [str(obx[3][0][1]) for obx in addenda] == ["Addendum 1", "Addendum 2"]
    assert message.unescape(str(addenda[0][16])).startswith("1245319599^Jürgen Groß")
    assert str(addenda[0][14]) == "20241106080000+0000"
    assert str(message.segment("OBR")[22]) == "20241107093000+0000"
    critical = obx_texts(message, "CRITICAL")
    assert critical[0] == "Critical result, category 1."
    assert "Nurse Chloé Dubois by phone" in critical[1]
    assert "read back: yes" in critical[1]


@pytest.mark.parametrize("factory", [documents.preliminary, documents.final, documents.amended])
def test_hl7apy_strict_validation_accepts_the_message(factory):
    message = parse_message(build(factory()), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate() is True
    assert message.name == "ORU_R01"


def test_one_megabyte_body_is_one_obx_with_one_repetition_per_line():
    doc = documents.huge()
    started = time.perf_counter()
    er7 = build(doc)
    assert time.perf_counter() - started < 20  # about 1.5 s here; one OBX per line took 95 s
    message = hl7.parse(er7)
    findings = [obx for obx in message.segments("OBX") if str(obx[3][0][0]) == "59776-5"]
    assert len(findings) == 1
    lines = obx_texts(message, "59776-5")
    assert len(lines) == 12_500
    assert "\n".join(lines) == doc.sections[3].text


def test_blank_lines_survive_as_empty_repetitions():
    text = "First.\n\nThird, after a blank line.\n"
    doc = documents.final(sections=(documents.Section("findings", "Findings", text),))
    message = hl7.parse(build(doc))
    assert obx_texts(message, "59776-5") == ["First.", "", "Third, after a blank line."]


def test_a_single_line_longer_than_tx_allows_is_wrapped_not_lost():
    body = "x" * 70_000
    doc = documents.final(sections=(documents.Section("findings", "Findings", body),))
    er7 = build(doc)
    chunks = obx_texts(hl7.parse(er7), "59776-5")
    assert len(chunks) == 3
    assert "".join(chunks) == body
    # Not re-parsed strictly: hl7apy's parser reads OBX-5 as ST (199 characters) whatever OBX-2 says.


def test_same_document_same_message():
    assert build(documents.amended()) == build(documents.amended())


def test_naive_signing_time_is_refused_naming_the_field():
    doc = documents.final(signed_at=datetime(2024, 11, 5, 22, 15))  # noqa: DTZ001
    with pytest.raises(ApplicationError) as caught:
        build(doc)
    assert caught.value.fields == {"signed_at": ["signed_at must be timezone-aware"]}


def test_missing_control_id_is_refused():
    with pytest.raises(ApplicationError) as caught:
        oru_r01(documents.final(), control_id="", now=NOW)
    assert "control_id" in caught.value.fields

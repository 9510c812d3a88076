"""One follow-up question (issue 17): the patient asks once within 7 days of signing, the reader sees it in
the workspace and answers once, the patient reads the answer; the reader has no other way to reach the
patient (the request's message thread is closed on a second opinion)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Notification
from core.errors import ApplicationError, NotFound
from reporting import patient
from reporting.models import Message, PatientQuestion
from tests.marketplace.helpers import actor, make_radiologist
from tests.reporting.patient_helpers import claimed_order, new_patient, signed_order

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
QUESTION = "Does the old infarct mean I should stop driving?"


def _ask(client, order, text=QUESTION, **extra):
    return client.post(reverse("patient_question_ask", args=[order.public_id]), {"question": text}, **extra)


def _answer(client, order, text="No: it does not affect driving. Ask your doctor about a follow-up scan."):
    return client.post(reverse("patient_question_answer", args=[order.read_request.public_id]), {"answer": text})


def test_the_patient_asks_once_and_the_reader_is_told_without_the_text(cast, login):
    order = signed_order(cast)
    response = _ask(login(cast.patient), order)
    assert response.status_code == 302
    assert response["Location"] == reverse("opinion_order_detail", args=[order.public_id])
    question = PatientQuestion.objects.get(report=order.read_request.report)
    assert question.question == QUESTION
    assert question.asked_by == cast.patient
    assert question.answered_at is None
    notice = Notification.objects.get(user=cast.radiologist, title__contains="follow-up question")
    assert QUESTION not in notice.body
    assert notice.url == reverse("report_workspace", args=[order.read_request.public_id])


def test_a_second_question_is_refused_with_a_clear_message(cast, login):
    order = signed_order(cast)
    client = login(cast.patient)
    assert _ask(client, order).status_code == 302
    again = _ask(client, order, "And one more thing?")
    assert again.status_code == 400
    assert "You have asked your one follow-up question about this report." in again.content.decode()
    in_panel = _ask(client, order, "And one more thing?", **HTMX)
    assert in_panel.status_code == 200  # htmx swaps the panel with its refusal
    assert "You have asked your one follow-up question" in in_panel.content.decode()
    assert PatientQuestion.objects.get().question == QUESTION


def test_after_seven_days_the_question_is_refused(cast):
    order = signed_order(cast)
    signed_at = order.read_request.report.signed_at
    with pytest.raises(ApplicationError) as refused:
        patient.patient_question_ask(actor=actor(cast.patient), order=order, text=QUESTION,
                                     now=signed_at + timedelta(days=7, minutes=1))
    assert "The 7 days for a follow-up question ended on" in refused.value.message
    assert refused.value.code == "follow_up_closed"
    assert not PatientQuestion.objects.exists()
    asked = patient.patient_question_ask(actor=actor(cast.patient), order=order, text=QUESTION,
                                         now=signed_at + timedelta(days=6, hours=23))
    assert asked.pk


def test_a_question_before_the_report_is_signed_is_refused(cast):
    order = claimed_order(cast)
    with pytest.raises(ApplicationError) as refused:
        patient.patient_question_ask(actor=actor(cast.patient), order=order, text=QUESTION)
    assert refused.value.code == "report_not_ready"


@pytest.mark.parametrize(("text", "problem"), [("x" * 1001, "at most 1,000 characters"), ("   ", "Write your question"),
                                               ("a\x00b", "NUL")])
def test_a_bad_question_is_refused_naming_the_field(cast, text, problem):
    order = signed_order(cast)
    with pytest.raises(ApplicationError) as refused:
        patient.patient_question_ask(actor=actor(cast.patient), order=order, text=text)
    assert problem in refused.value.fields["question"][0]
    assert not PatientQuestion.objects.exists()


def test_a_question_of_exactly_1000_characters_is_taken(cast):
    order = signed_order(cast)
    assert len(patient.patient_question_ask(actor=actor(cast.patient), order=order, text="y" * 1000).question) == 1000


def test_the_reader_sees_the_question_in_the_workspace_and_answers_once(cast, login):
    order = signed_order(cast)
    _ask(login(cast.patient), order)
    reader = login(cast.radiologist)
    workspace = reader.get(reverse("report_workspace", args=[order.read_request.public_id])).content.decode()
    assert 'id="patient-question"' in workspace
    assert QUESTION in workspace
    assert 'id="patient-answer-form"' in workspace
    assert [q.question for q in patient.questions_awaiting_answer(actor=actor(cast.radiologist))] == [QUESTION]
    mail.outbox.clear()
    assert _answer(reader, order).status_code == 302
    question = PatientQuestion.objects.get()
    assert question.answer.startswith("No: it does not affect driving.")
    assert question.answered_by == cast.radiologist
    assert list(patient.questions_awaiting_answer(actor=actor(cast.radiologist))) == []
    told = Notification.objects.get(user=cast.patient, title__contains="answered your follow-up question")
    assert told.url == reverse("opinion_order_detail", args=[order.public_id])
    # A second answer is refused; the first stays.
    again = reader.post(reverse("patient_question_answer", args=[order.read_request.public_id]),
                        {"answer": "Actually, something else."}, follow=True)
    assert "You have answered this question already" in again.content.decode()
    question.refresh_from_db()
    assert question.answer.startswith("No: it does not affect driving.")
    # The patient reads the answer under their report; they cannot ask again.
    page = login(cast.patient).get(reverse("patient_report", args=[order.public_id]), **HTMX).content.decode()
    assert 'id="patient-answer"' in page
    assert "does not affect driving" in page
    assert 'id="patient-question-form"' not in page


def test_an_answer_with_no_question_or_by_another_reader_is_not_found(cast, login):
    order = signed_order(cast)
    with pytest.raises(NotFound):
        patient.patient_question_answer(actor=actor(cast.radiologist), read_request=order.read_request, text="Hi")
    _ask(login(cast.patient), order)
    other = make_radiologist(name="Other Reader").user
    assert _answer(login(other), order).status_code == 404
    assert _answer(login(cast.center_admin), order).status_code == 404
    with pytest.raises(NotFound):
        patient.patient_question_answer(actor=actor(other), read_request=order.read_request, text="Hi")
    assert PatientQuestion.objects.get().answered_at is None


def test_only_the_ordering_patient_asks(cast, login):
    order = signed_order(cast)
    for user in (new_patient("nosy@example.test"), cast.radiologist, cast.center_admin):
        assert _ask(login(user), order).status_code == 404
    assert not PatientQuestion.objects.exists()


def test_the_reader_cannot_reach_the_patient_through_the_message_thread(cast, login):
    order = signed_order(cast)
    thread = reverse("read_request_messages", args=[order.read_request.public_id])
    reader = login(cast.radiologist)
    shown = reader.get(thread).content.decode()
    assert 'id="thread-closed"' in shown
    assert 'name="body"' not in shown
    mail.outbox.clear()
    response = reader.post(thread, {"body": "Please call me about your scan: 555-0100."})
    assert response.status_code == 400
    assert "has no message thread" in response.content.decode()
    assert not Message.objects.exists()
    assert not Notification.objects.filter(user=cast.patient, title__contains="radiologist").exists()
    assert all(cast.patient.email not in m.to for m in mail.outbox)
    # Nor does the patient see any thread of the request.
    assert login(cast.patient).get(thread).status_code == 404


def test_the_worklist_lists_the_questions_waiting_for_an_answer(cast, login):
    order = signed_order(cast)
    reader = login(cast.radiologist)
    waiting = reverse("patient_questions_waiting")
    assert waiting in reader.get(reverse("radiologist_worklist")).content.decode()
    assert 'id="patient-questions-waiting"' not in reader.get(waiting).content.decode()
    _ask(login(cast.patient), order)
    listed = reader.get(waiting).content.decode()
    assert 'id="patient-questions-waiting"' in listed
    assert reverse("report_workspace", args=[order.read_request.public_id]) in listed
    assert QUESTION not in listed  # the text is read in the workspace
    _answer(reader, order)
    assert 'id="patient-questions-waiting"' not in reader.get(waiting).content.decode()
    assert login(cast.center_admin).get(waiting).status_code == 404
    assert login(cast.patient).get(waiting).status_code == 404

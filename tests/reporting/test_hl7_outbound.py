"""Reports out to the center's RIS (issue 23, item 4): every signed report and addendum goes as ORU^R01 over MLLP
to a test MLLP server (a thread with a socket) that parses it with python-hl7 and answers an ACK; refusals are
kept and shown to the center's admins; a refused connection is retried."""

from __future__ import annotations

import socket
import threading

import hl7
import pytest
from django.urls import reverse

from marketplace.ris_models import Hl7Message, RisOrder, RisOrderStatus
from marketplace.tasks import send_hl7_message
from tests.marketplace.ris_helpers import interface_for
from tests.reporting.delivery_helpers import add_addendum, delivery_template, open_report, sign, signed_report, write

pytestmark = pytest.mark.django_db
START, END = b"\x0b", b"\x1c\x0d"


class MllpServer:
    """A RIS on loopback: reads framed messages, parses them with python-hl7 and answers ``ack_code``;
    ``drop_first`` connections are closed without an answer."""

    def __init__(self, ack_code: str = "AA", drop_first: int = 0, port: int = 0) -> None:
        self.ack_code, self.drop_first = ack_code, drop_first
        self.received: list[hl7.Message] = []
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while END not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if self.drop_first > 0:
                    self.drop_first -= 1
                    continue
                message = hl7.parse(data[data.index(START) + 1:data.index(END)].decode("utf-8"))
                self.received.append(message)
                ack = message.create_ack(self.ack_code, application="RIS", facility="LAKESIDE")
                if self.ack_code != "AA":
                    ack.segment("MSA").assign_field("Unknown patient", 3)
                conn.sendall(START + str(ack).encode("utf-8") + END)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def ris_server():
    servers = []

    def start(**kwargs) -> MllpServer:
        servers.append(MllpServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_a_signed_report_and_its_addendum_reach_the_ris_as_oru_r01(cast, ris_server,
                                                                  django_capture_on_commit_callbacks):
    server = ris_server()
    interface_for(cast.center, outbound_host="127.0.0.1", outbound_port=server.port)
    delivery_template()
    report = signed_report(cast, django_capture_on_commit_callbacks)
    assert len(server.received) == 1
    oru = server.received[0]
    assert str(oru.segment("MSH")(9)).startswith("ORU^R01")
    study = report.read_request.study
    assert str(oru.segment("OBR")(18)) == study.accession_number
    assert str(oru.segment("PID")(3)).split("^")[0] == study.patient_id
    assert str(oru.segment("OBR")(25)) == "F"
    # Not from a RIS order: the placer order number is ReadRoom's id of the read.
    assert str(oru.segment("ORC")(2)) == str(oru.segment("OBR")(2)) == str(report.read_request.public_id)
    sent = Hl7Message.objects.get(direction="out")
    assert (sent.ack_code, sent.attempts, sent.read_request_id) == ("AA", 1, report.read_request_id)
    assert sent.control_id == str(oru.segment("MSH")(10))
    assert b"MSA|AA" in bytes(sent.ack)
    add_addendum(cast, report, "Correction: right, not left.", django_capture_on_commit_callbacks)
    assert len(server.received) == 2
    assert str(server.received[1].segment("OBR")(25)) == "C"
    assert Hl7Message.objects.filter(direction="out", ack_code="AA").count() == 2


def test_a_read_ordered_by_the_ris_is_answered_under_the_ris_own_order_number(cast, ris_server,
                                                                             django_capture_on_commit_callbacks):
    """The RIS finds its order by ORC-2 / OBR-2: the placer order number it sent comes back, and the ordering
    physician it named when the images did not."""
    server = ris_server()
    interface_for(cast.center, outbound_host="127.0.0.1", outbound_port=server.port)
    delivery_template()
    report = open_report(cast)
    study = report.read_request.study
    study.referring_physician_name = ""
    study.save(update_fields=["referring_physician_name"])
    RisOrder.objects.create(center=cast.center, source=RisOrder.Source.HL7, placer_order_number="RIS-ORD-77",
                            accession_number=study.accession_number, patient_id=study.patient_id,
                            ordering_physician="Ada Lovelace", status=RisOrderStatus.POSTED, study=study,
                            read_request=report.read_request)
    sign(cast, write(cast, report, fields={"severity": "2", "shift": "3"}, findings="No bleed.",
                     impression="Normal."), django_capture_on_commit_callbacks)
    oru = server.received[0]
    assert str(oru.segment("ORC")(2)) == str(oru.segment("OBR")(2)) == "RIS-ORD-77"
    assert "Ada Lovelace" in str(oru.segment("OBR")(16))
    assert str(oru.segment("OBR")(18)) == study.accession_number


def test_a_center_without_an_outbound_endpoint_gets_nothing_sent(cast, django_capture_on_commit_callbacks):
    interface_for(cast.center)
    delivery_template()
    signed_report(cast, django_capture_on_commit_callbacks)
    assert not Hl7Message.objects.filter(direction="out").exists()


def test_an_error_ack_is_kept_not_retried_and_shown_to_the_admins(cast, ris_server, login,
                                                                 django_capture_on_commit_callbacks):
    server = ris_server(ack_code="AE")
    interface_for(cast.center, outbound_host="127.0.0.1", outbound_port=server.port)
    delivery_template()
    signed_report(cast, django_capture_on_commit_callbacks)
    sent = Hl7Message.objects.get(direction="out")
    assert (sent.ack_code, sent.attempts, sent.error) == ("AE", 1, "Unknown patient")
    assert len(server.received) == 1
    page = login(cast.center_admin).get(reverse("ris_interfaces"))
    assert page.status_code == 200
    assert b"Unknown patient" in page.content
    assert b"ack-problems" in page.content
    log = login(cast.center_admin).get(reverse("ris_message_list"))
    assert b"ORU^R01" in log.content
    assert b"MSA|AE" in log.content


def test_a_refused_connection_is_retried_five_times_then_sent_when_the_ris_is_back(cast, ris_server,
                                                                                    django_capture_on_commit_callbacks):
    port = free_port()  # nothing listens there: every connection is refused
    interface_for(cast.center, outbound_host="127.0.0.1", outbound_port=port)
    delivery_template()
    signed_report(cast, django_capture_on_commit_callbacks)
    sent = Hl7Message.objects.get(direction="out")
    assert (sent.attempts, sent.ack_code) == (6, "")  # the first try and 5 retries (eager: no waiting)
    assert "ConnectionRefused" in sent.error
    server = ris_server(port=port)
    assert send_hl7_message.apply(args=[sent.pk]).get() == "done"
    sent.refresh_from_db()
    assert (sent.attempts, sent.ack_code, sent.error) == (7, "AA", "")
    assert len(server.received) == 1


def test_a_dropped_connection_is_retried_and_the_second_try_is_acknowledged(cast, ris_server,
                                                                           django_capture_on_commit_callbacks):
    server = ris_server(drop_first=1)
    interface_for(cast.center, outbound_host="127.0.0.1", outbound_port=server.port)
    delivery_template()
    signed_report(cast, django_capture_on_commit_callbacks)
    sent = Hl7Message.objects.get(direction="out")
    assert (sent.attempts, sent.ack_code) == (2, "AA")
    assert len(server.received) == 1


def test_with_a_broker_a_failed_send_is_rescheduled_with_backoff_and_given_up_after_five(cast, monkeypatch):
    """The worker's path (not eager): Celery's retry with a growing countdown, then the row keeps the error. The
    broker is the one thing replaced: ``apply_async`` records what would be published."""
    from celery.exceptions import Retry

    from marketplace.ris.outbound import hl7_out_queue

    interface_for(cast.center, outbound_host="127.0.0.1", outbound_port=free_port())
    message = hl7_out_queue(center_id=cast.center.pk, raw=b"MSH|^~\\&|READROOM|READROOM|||20261201||ORU^R01|C1|P|2.5.1")
    published = []
    monkeypatch.setattr(send_hl7_message._get_current_object(), "apply_async",
                        lambda *args, **options: published.append(options.get("countdown")))
    for retries in range(6):
        send_hl7_message.push_request(is_eager=False, retries=retries, id=f"t{retries}", called_directly=False,
                                      args=[message.pk], kwargs={})
        try:
            if retries < 5:
                with pytest.raises(Retry):
                    send_hl7_message.run(message.pk)
            else:
                assert send_hl7_message.run(message.pk) == "retry"
        finally:
            send_hl7_message.pop_request()
    assert published == [30, 60, 120, 240, 480]
    message.refresh_from_db()
    assert (message.attempts, message.ack_code) == (6, "")
    assert "ConnectionRefused" in message.error

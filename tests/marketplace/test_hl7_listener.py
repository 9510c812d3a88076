"""The HL7 v2 MLLP listener, driven on a free port by a raw socket and by python-hl7's own MLLP client, with
ORM^O01 orders built by hl7apy (another library than python-hl7, which parses them on arrival).

The listener runs in a thread of the test process against the test database, so these tests need a
transactional database (its workers have their own connections).
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
import tracemalloc

import hl7
import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from accounts.models import AuditEvent, Organization
from core.sql import in_round_trip
from marketplace.ris.hl7_in import handle_message, host_allowed, peer_host
from marketplace.ris.hl7_send import Order, omi_o23, orm_o01, send
from marketplace.ris.interfaces import INTERFACE_RECHECK_SECONDS, InterfaceCache
from marketplace.ris.listener import Hl7Listener, frame
from marketplace.ris_models import Hl7Interface, Hl7Message, RisOrder, RisOrderStatus
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

READ_TIMEOUT = 1.0


@pytest.fixture
def center():
    return OrganizationFactory(name="Lakeside Imaging", slug="lakeside")


@pytest.fixture
def interface(center):
    return Hl7Interface.objects.create(center=center, sending_application="RIS", sending_facility="LAKESIDE_RIS",
                                       allowed_hosts=["127.0.0.1", "::1"])


@pytest.fixture
def listener(interface):
    running = Hl7Listener(host="127.0.0.1", port=0, read_timeout=READ_TIMEOUT, max_connections=4, workers=2).start()
    yield running
    running.shutdown()


class Connection:
    """A RIS's side of one MLLP connection, on a raw socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, message: str | bytes) -> None:
        self.sock.sendall(frame(message.encode() if isinstance(message, str) else message))

    def ack(self) -> hl7.Message:
        return hl7.parse(self.ack_bytes().decode())

    def ack_bytes(self) -> bytes:
        while b"\x1c\r" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the ACK")
            self.buffer += chunk
        block, self.buffer = self.buffer.split(b"\x1c\r", 1)
        assert block.startswith(b"\x0b")
        return block[1:]

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def exchange(port: int, message: str | bytes) -> hl7.Message:
    connection = Connection(port)
    try:
        connection.send(message)
        return connection.ack()
    finally:
        connection.close()


def msa(ack: hl7.Message) -> tuple[str, str]:
    return str(ack.segment("MSA")(1)), str(ack.segment("MSA")(2))


def err(ack: hl7.Message) -> tuple[str, str, str]:
    """ERR-2 (location), ERR-3.1 (HL7 error code), ERR-8 (text, unescaped)."""
    segment = ack.segment("ERR")
    return str(segment(2)), str(segment(3)(1)(1)), ack.unescape(str(segment(8)))


# --- refusals ------------------------------------------------------------------------------------------
def test_a_message_that_is_not_hl7_is_rejected_and_kept(listener):
    ack = exchange(listener.port, b"GET / HTTP/1.1\r\nHost: readroom\r\n\r\n")

    assert msa(ack) == ("AR", "")
    assert "not an HL7 v2 message" in err(ack)[2]
    row = Hl7Message.objects.get()
    assert (row.interface, row.ack_code, bytes(row.raw)) == (None, "AR", b"GET / HTTP/1.1\r\nHost: readroom\r\n\r\n")
    assert AuditEvent.objects.filter(action="hl7.message_received", outcome=AuditEvent.Outcome.DENIED).count() == 1


def test_a_message_with_nul_bytes_is_rejected_before_it_reaches_the_database_text(listener):
    message = orm_o01(Order(control_id="NUL-1", patient_id="P\x00-1")).encode()
    ack = exchange(listener.port, message)

    assert msa(ack)[0] == "AR"
    assert "NUL" in err(ack)[2]
    assert bytes(Hl7Message.objects.get().raw) == message


def test_a_wrong_version_is_rejected_naming_msh_12(listener, interface):
    ack = exchange(listener.port, orm_o01(Order(control_id="V-1", version="2.9")))

    assert msa(ack) == ("AR", "V-1")
    location, code, text = err(ack)
    assert (location, code) == ("MSH^1^12", "203")
    assert "2.9" in text
    row = Hl7Message.objects.get()
    assert (row.interface, row.control_id, row.ack_code) == (interface, "V-1", "AR")
    assert not RisOrder.objects.exists()


def test_a_missing_patient_id_is_answered_ae_naming_pid_3(listener, interface, center):
    connection = Connection(listener.port)
    connection.send(orm_o01(Order(control_id="NOPID-1", patient_id="")))
    raw_ack = connection.ack_bytes()
    connection.close()
    ack = hl7.parse(raw_ack.decode())

    assert msa(ack) == ("AE", "NOPID-1")
    location, code, text = err(ack)
    assert (location, code) == ("PID^1^3", "101")
    assert "PID-3" in text
    row = Hl7Message.objects.get()
    assert (row.interface, row.ack_code, bytes(row.ack)) == (interface, "AE", raw_ack)
    assert "PID-3" in row.error
    event = AuditEvent.objects.get(action="hl7.message_received")
    assert (event.organization_id, event.outcome) == (center.pk, AuditEvent.Outcome.FAILURE)
    assert event.object_id == str(row.pk)


def test_an_unregistered_facility_is_rejected_naming_msh_4(listener):
    ack = exchange(listener.port, orm_o01(Order(control_id="U-1", facility="ELSEWHERE|RIS")))

    assert msa(ack) == ("AR", "U-1")
    location, code, text = err(ack)
    assert (location, code) == ("MSH^1^4", "204")
    assert "'ELSEWHERE|RIS'" in text  # the sender's value, escaped in the ACK and read back intact
    assert Hl7Message.objects.get().interface is None


def test_a_sender_outside_its_allowed_hosts_is_rejected_and_audited_for_its_center(listener, interface, center):
    interface.allowed_hosts = ["10.20.0.0/16"]
    interface.save()

    ack = exchange(listener.port, orm_o01(Order(control_id="H-1")))

    assert msa(ack) == ("AR", "H-1")
    assert err(ack)[0] == "MSH^1^4"
    assert "may not send from 127.0.0.1" in err(ack)[2]
    # Stored without the interface: an outsider cannot use up the sender's control ids.
    assert Hl7Message.objects.get().interface is None
    event = AuditEvent.objects.get(action="hl7.message_received")
    assert (event.organization_id, event.outcome) == (center.pk, AuditEvent.Outcome.DENIED)


def test_a_repeated_control_id_answers_the_same_ack_and_is_kept_once(listener):
    message = orm_o01(Order(control_id="DUP-1", patient_id=""))
    connection = Connection(listener.port)
    connection.send(message)
    first = connection.ack_bytes()
    connection.send(message)
    second = connection.ack_bytes()
    connection.close()

    assert first == second
    assert Hl7Message.objects.count() == 1
    assert AuditEvent.objects.filter(action="hl7.message_received").count() == 1


def test_a_message_whose_first_try_failed_on_our_side_is_applied_when_sent_again(listener, interface):
    from marketplace.ris.hl7_in import RETRY_TEXT

    # What a first try that failed inside ReadRoom left: the message kept with an AE asking for a resend.
    message = orm_o01(Order(control_id="RETRY-1", placer="PL-R1", accession="ACC-R1"))
    Hl7Message.objects.create(interface=interface, direction=Hl7Message.Direction.IN, control_id="RETRY-1",
                              message_type="ORM^O01", raw=message.encode(), ack=b"MSH|...", ack_code="AE",
                              error=RETRY_TEXT)

    ack = exchange(listener.port, message)

    assert msa(ack) == ("AA", "RETRY-1")
    row = Hl7Message.objects.get()  # the same row, now with the order and its AA
    assert (row.ack_code, row.error, row.order) == ("AA", "", RisOrder.objects.get(placer_order_number="PL-R1"))
    assert msa(exchange(listener.port, message)) == ("AA", "RETRY-1")  # and a resend of it answers the same
    assert RisOrder.objects.count() == 1


def test_the_ack_is_a_valid_v2_5_message_for_hl7apy(listener):
    ack = Connection(listener.port)
    ack.send(orm_o01(Order(control_id="VALID-1", patient_id="")))
    text = ack.ack_bytes().decode()
    ack.close()

    parsed = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=False)
    assert parsed.msh.msh_9.to_er7() == "ACK^O01^ACK"
    assert parsed.msa.msa_1.to_er7() == "AE"
    assert parsed.err.err_2.to_er7() == "PID^1^3"


# --- framing and limits ---------------------------------------------------------------------------------
def test_half_a_frame_then_silence_is_closed_after_the_timeout_and_the_next_client_is_answered(listener):
    stalled = Connection(listener.port)
    stalled.sock.sendall(b"\x0bMSH|^~\\&|RIS|LAKESIDE_RIS|")
    started = time.monotonic()

    assert stalled.closed_by_server()
    assert READ_TIMEOUT <= time.monotonic() - started < READ_TIMEOUT + 3
    stalled.close()
    assert msa(exchange(listener.port, orm_o01(Order(control_id="NEXT-1", patient_id="")))) == ("AE", "NEXT-1")


def test_a_ten_megabyte_message_is_refused_from_its_first_bytes_with_bounded_memory(interface):
    # A limit of 256 KiB here (1 MiB by default) makes "bounded" plain: the listener holds a few times the
    # limit at most (the stream buffer, one socket read), nothing near the message's 10 MB.
    listener = Hl7Listener(host="127.0.0.1", port=0, max_message_bytes=256 * 1024).start()
    huge = frame(orm_o01(Order(control_id="BIG-1")).encode() + b"\rNTE|1||" + b"x" * (10 * 1024 * 1024))
    connection = Connection(listener.port)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        sender = threading.Thread(target=_send_ignoring_reset, args=(connection.sock, huge))
        sender.start()
        ack = connection.ack()
        sender.join(timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert msa(ack) == ("AR", "BIG-1")
    assert "message too large" in err(ack)[2]
    assert connection.closed_by_server()
    assert peak < 2 * 1024 * 1024, f"the listener held {peak} bytes for a 10 MB message"
    row = Hl7Message.objects.get()
    assert row.ack_code == "AR"
    assert len(bytes(row.raw)) <= 8192
    connection.close()
    listener.shutdown()


def test_several_messages_on_one_connection_are_answered_in_turn(listener):
    connection = Connection(listener.port)
    ids = [f"SEQ-{n}" for n in range(5)]
    for control_id in ids:
        connection.send(orm_o01(Order(control_id=control_id, patient_id="")))
        assert msa(connection.ack()) == ("AE", control_id)
    connection.close()

    assert sorted(Hl7Message.objects.values_list("control_id", flat=True)) == ids


def test_bytes_before_the_start_block_are_ignored(listener):
    connection = Connection(listener.port)
    connection.sock.sendall(b"\r\n" + frame(orm_o01(Order(control_id="NOISE-1", patient_id="")).encode()))
    assert msa(connection.ack()) == ("AE", "NOISE-1")
    connection.close()


def test_connections_beyond_the_limit_are_closed_at_once(listener):
    held = [Connection(listener.port) for _ in range(listener.max_connections)]
    for connection in held:  # each is being served: it gets an answer
        connection.send(orm_o01(Order(control_id=f"HOLD-{id(connection)}", patient_id="")))
        connection.ack()
    extra = Connection(listener.port)

    assert extra.closed_by_server()
    for connection in held:
        connection.close()
    extra.close()
    time.sleep(0.2)  # the listener sees the closes
    assert msa(exchange(listener.port, orm_o01(Order(control_id="AFTER-1", patient_id=""))))[0] == "AE"


def test_allowed_hosts_take_addresses_networks_and_ipv4_mapped_peers():
    assert host_allowed("10.1.2.3", [])
    assert host_allowed("10.1.2.3", ["10.1.0.0/16"])
    assert host_allowed("::ffff:10.1.2.3", ["10.1.2.3"])
    assert not host_allowed("10.2.0.1", ["10.1.0.0/16", "not an address"])
    assert not host_allowed("", ["10.1.0.0/16"])
    assert peer_host("[::1]:2575") == "::1"
    assert peer_host("127.0.0.1:40000") == "127.0.0.1"


# --- orders accepted (through orders.order_apply) -------------------------------------------------------
def test_a_new_order_is_accepted_and_becomes_an_order_waiting_for_its_images(listener, center, interface):
    order = Order(control_id="NW-1", placer="PL-77", accession="ACC-77", patient_id="P-77", priority="S",
                  history="Headache | worse", note="Fell from a bike")
    ack = send(orm_o01(order), port=listener.port)  # python-hl7's own MLLP client

    assert msa(hl7.parse(ack)) == ("AA", "NW-1")
    saved = RisOrder.objects.get()
    assert (saved.center, saved.placer_order_number, saved.accession_number, saved.patient_id) == (
        center, "PL-77", "ACC-77", "P-77")
    assert (saved.priority, saved.modality, saved.procedure_code) == ("stat", "CT", "CTHEAD")
    assert saved.clinical_history == "Headache | worse\nFell from a bike"
    assert saved.ordering_physician == "Gregory House"
    row = Hl7Message.objects.get()
    assert (row.ack_code, row.order, row.interface) == ("AA", saved, interface)
    # One audit event for the message, naming the order it created (one append to the chain per message).
    event = AuditEvent.objects.get()
    assert (event.action, event.object_id, event.organization_id) == ("hl7.message_received", str(row.pk), center.pk)
    assert event.extra["orders"] == [str(saved.public_id)]


def test_a_repeated_new_order_is_applied_once(listener):
    message = orm_o01(Order(control_id="NW-DUP", placer="PL-88", accession="ACC-88"))
    first = exchange(listener.port, message)
    second = exchange(listener.port, message)

    assert str(first) == str(second)
    assert msa(first) == ("AA", "NW-DUP")
    assert RisOrder.objects.count() == 1
    assert Hl7Message.objects.count() == 1


def test_an_omi_o23_order_takes_its_accession_and_modality_from_ipc(listener, center):
    ack = exchange(listener.port, omi_o23(Order(control_id="OMI-1", placer="PL-90", accession="ACC-90",
                                                modality="MR", priority="A")))

    assert msa(ack) == ("AA", "OMI-1")
    saved = RisOrder.objects.get()
    assert (saved.accession_number, saved.modality, saved.priority) == ("ACC-90", "MR", "urgent")


def test_a_latin_1_message_is_read_in_the_character_set_msh_18_declares(listener):
    er7 = orm_o01(Order(control_id="L1-1", patient_family="Müller", patient_given="Zoë", placer="PL-L1"))
    msh, rest = er7.split("\r", 1)
    latin_1 = (msh + "||||||8859/1\r" + rest).encode("latin-1")  # MSH-13..17 empty, MSH-18 the character set

    connection = Connection(listener.port)
    connection.send(latin_1)
    raw_ack = connection.ack_bytes()
    connection.close()

    ack = hl7.parse(raw_ack.decode("latin-1"))
    assert msa(ack) == ("AA", "L1-1")
    assert str(ack.segment("MSH")(18)) == "8859/1"
    assert RisOrder.objects.get().patient_name == "Müller^Zoë"
    assert bytes(Hl7Message.objects.get().raw) == latin_1


def test_a_cancel_after_the_order_cancels_it(listener):
    connection = Connection(listener.port)
    connection.send(orm_o01(Order(control_id="NW-5", placer="PL-5", accession="ACC-5")))
    assert msa(connection.ack()) == ("AA", "NW-5")
    connection.send(orm_o01(Order(control_id="CA-5", control="CA", placer="PL-5", accession="ACC-5")))
    assert msa(connection.ack()) == ("AA", "CA-5")
    connection.close()

    assert RisOrder.objects.get().status == RisOrderStatus.CANCELLED
    assert list(Hl7Message.objects.order_by("id").values_list("control_id", "ack_code")) == [
        ("NW-5", "AA"), ("CA-5", "AA")]


def test_cancelling_an_unknown_order_is_answered_ae_naming_orc_2(listener):
    ack = exchange(listener.port, orm_o01(Order(control_id="CA-1", control="CA", placer="NEVER-SENT")))

    assert msa(ack) == ("AE", "CA-1")
    location, code, text = err(ack)
    assert (location, code) == ("ORC^1^2", "204")
    assert "NEVER-SENT" in text
    assert str(ack.segment("ERR")(5)) == "unknown_order"
    assert Hl7Message.objects.get().ack_code == "AE"
    assert not RisOrder.objects.exists()


def test_a_message_with_one_bad_order_applies_none_of_its_orders(listener):
    first = orm_o01(Order(control_id="TWO-1", placer="PL-A", accession="ACC-A"))
    second = orm_o01(Order(control_id="X", control="CA", placer="PL-UNKNOWN"))
    # The second message's ORC/OBR appended to the first: one message carrying two orders.
    two_orders = first + "\r" + "\r".join(second.split("\r")[2:])

    ack = exchange(listener.port, two_orders)

    assert msa(ack)[0] == "AE"
    assert err(ack)[0] == "ORC^2^2"
    assert not RisOrder.objects.exists()


def test_the_send_order_command_prints_the_ack(listener):
    out = io.StringIO()
    call_command("hl7_send_order", "--accession", "ACC-CMD", "--patient-id", "P-CMD", "--port", str(listener.port),
                 stdout=out)

    assert "MSA|AA|" in out.getvalue()
    assert RisOrder.objects.get().accession_number == "ACC-CMD"


def test_an_interface_of_an_organization_that_is_not_a_center_is_answered_ae(listener, interface):
    interface.center.kind = Organization.Kind.RADIOLOGY_GROUP
    interface.center.save()

    ack = exchange(listener.port, orm_o01(Order(control_id="GRP-1")))

    assert msa(ack) == ("AE", "GRP-1")
    assert str(ack.segment("ERR")(5)) == "not_a_center"
    assert not RisOrder.objects.exists()


# --- the connection's interface, and what a message costs ------------------------------------------------
class Clock:
    """A monotonic clock the test moves on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_order(control_id: str) -> bytes:
    return orm_o01(Order(control_id=control_id, placer=f"PL-{control_id}", accession=f"A-{control_id}")).encode()


def handled(message: bytes, interfaces: InterfaceCache) -> hl7.Message:
    """One message through the listener's per-message work, on a connection whose senders are ``interfaces``."""
    return hl7.parse(handle_message(message, "127.0.0.1:40000", interfaces).decode())


def _disable(interface):
    interface.active = False


def _move_to_another_network(interface):
    interface.allowed_hosts = ["10.20.0.0/16"]


@pytest.mark.parametrize("change", [_disable, _move_to_another_network])
def test_a_changed_interface_takes_effect_on_an_open_connection_once_the_recheck_time_has_passed(interface, change):
    clock = Clock()
    interfaces = InterfaceCache(clock=clock)
    assert msa(handled(new_order("C-1"), interfaces)) == ("AA", "C-1")

    change(interface)
    interface.save()
    clock.now += INTERFACE_RECHECK_SECONDS - 0.1
    assert msa(handled(new_order("C-2"), interfaces)) == ("AA", "C-2")  # the interface it found is still trusted
    clock.now += 0.2
    ack = handled(new_order("C-3"), interfaces)

    assert msa(ack) == ("AR", "C-3")
    assert err(ack)[0] == "MSH^1^4"
    assert list(RisOrder.objects.order_by("id").values_list("placer_order_number", flat=True)) == ["PL-C-1", "PL-C-2"]


def test_an_open_connection_reuses_its_interface_and_a_new_connection_sees_a_change_at_once(listener, interface):
    connection = Connection(listener.port)
    connection.send(new_order("K-1"))
    assert msa(connection.ack()) == ("AA", "K-1")
    interface.active = False
    interface.save()

    connection.send(new_order("K-2"))  # well within INTERFACE_RECHECK_SECONDS of the look-up for K-1
    assert msa(connection.ack()) == ("AA", "K-2")
    connection.close()
    assert msa(exchange(listener.port, new_order("K-3"))) == ("AR", "K-3")


def test_a_new_order_costs_eight_statements_in_four_round_trips_once_the_connection_knows_its_sender(interface):
    # BEGIN, the study with its accession number and the order (ON CONFLICT DO NOTHING: a repeated NW is answered,
    # not failed) in one round trip; the message; the audit append in its savepoint, in one; COMMIT.
    interfaces = InterfaceCache()
    with CaptureQueriesContext(db_connection) as first:
        assert msa(handled(new_order("Q-1"), interfaces))[0] == "AA"
    sent: list[tuple[str, bool]] = []

    def record(execute, sql, params, many, context):
        sent.append((sql.split(" ", 1)[0], in_round_trip()))  # whether it waits for its result alone
        return execute(sql, params, many, context)

    with CaptureQueriesContext(db_connection) as next_one, db_connection.execute_wrapper(record):
        assert msa(handled(new_order("Q-2"), interfaces))[0] == "AA"

    listed = "\n".join(query["sql"][:100] for query in next_one.captured_queries)
    assert len(next_one) == 8, listed
    assert len(first) == 9
    # BEGIN goes out with the first statement of its pipeline, COMMIT on its own.
    assert sent == [("SELECT", True), ("INSERT", True), ("INSERT", False),
                    ("SAVEPOINT", True), ("SELECT", True), ("RELEASE", True)], listed
    assert RisOrder.objects.count() == Hl7Message.objects.count() == 2


def test_a_new_order_repeated_under_another_control_id_is_answered_aa_and_applied_once(listener, interface):
    first = exchange(listener.port, orm_o01(Order(control_id="RE-1", placer="PL-RE", accession="ACC-RE")))
    again = exchange(listener.port, orm_o01(Order(control_id="RE-2", placer="PL-RE", accession="ACC-RE")))

    assert (msa(first), msa(again)) == (("AA", "RE-1"), ("AA", "RE-2"))
    order = RisOrder.objects.get()
    kept = Hl7Message.objects.order_by("id")
    assert [(m.control_id, m.order_id, m.ack_code) for m in kept] == [("RE-1", order.pk, "AA"),
                                                                       ("RE-2", order.pk, "AA")]
    assert AuditEvent.objects.filter(action="hl7.message_received").count() == 2


def _send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the listener closed the connection once it had refused the message
        sock.sendall(data)

"""The DICOM C-STORE gateway: modalities send studies to an organization's AE title.

A pynetdicom storage SCP (plus C-ECHO). Who may talk to it is decided per association from the
database: the *called* AE title must be an active ``DicomAeTitle`` (it names the organization the
images belong to) and the *calling* AE title and the peer's IP address must match one of that AE
title's ``DicomPeer`` rows. Anything else is answered with an A-ASSOCIATE-RJ naming the reason
(called / calling AE title not recognised), logged and audited.

Every received instance goes through ``studies.ingest.ingest_stream`` (the one ingest service),
with the dataset exactly as it came off the wire: pynetdicom hands over the encoded bytes without
decoding them, behind a file meta header it builds from the association (the sender's own file
meta is never transmitted by DICOM networking). The data set's SOP Instance UID must be the one the
C-STORE request announced (Affected SOP Instance UID), else it is refused. Spooling and parsing run in
the association's thread; indexing goes through one ``studies.ingest.GroupCommit`` shared by all
associations, so concurrent senders share commits, and each C-STORE is answered only once its own
instance is committed. One ``study.ingested`` audit row is written per study per association, when
the association ends.

pynetdicom runs each association in its own thread, so every handler brackets its database work
with ``close_old_connections()`` and the thread's connection is closed when the association ends.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import socket
import socketserver
import threading
from dataclasses import dataclass, field

from django.db import close_old_connections, connections
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes, ExplicitVRBigEndian
from pynetdicom import AE, AllStoragePresentationContexts, _config, build_context, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from accounts.audit import audit_record
from accounts.models import AuditEvent
from studies.ingest import GroupCommit, IngestOutcome, Source, Status, audit_ingest, ingest_stream
from studies.models import DicomAeTitle, DicomPeer

logger = logging.getLogger(__name__)

GATEWAY_AE_TITLE = "READROOM"
# A-ASSOCIATE-RJ: result 1 = rejected-permanent, source 1 = DICOM UL service-user.
_REJECT_PERMANENT, _REJECT_TRANSIENT, _SOURCE_USER = 0x01, 0x02, 0x01
_DIAG_NO_REASON, _DIAG_CALLING_AE, _DIAG_CALLED_AE = 0x01, 0x03, 0x07
# C-STORE response statuses (PS3.4 B.2.3).
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # refused: the file is too large, or storage/database failed
STATUS_CONFLICT = 0xA900  # the SOP instance is already held with other content: not overwritten
STATUS_CANNOT_UNDERSTAND = 0xC000  # rejected: not readable or not valid DICOM (UIDs, truncation…)
STATUS_ELEMENTS_DISCARDED = 0xB006  # warning: stored as sent, some values left out of the index
# Every syntax pydicom knows, compressed and deflated ones included (stored as received), except
# Explicit VR Big Endian (retired in 2004; every sender offering it also offers little endian).
_REFUSED_TRANSFER_SYNTAXES = {ExplicitVRBigEndian}
_SUPPORTED_TRANSFER_SYNTAXES = [ts for ts in AllTransferSyntaxes if ts not in _REFUSED_TRANSFER_SYNTAXES]


def presentation_contexts() -> list:
    """Verification plus every storage SOP class pynetdicom knows, each with every transfer syntax."""
    contexts = [build_context(Verification)]
    contexts += [build_context(cx.abstract_syntax, _SUPPORTED_TRANSFER_SYNTAXES)
                 for cx in AllStoragePresentationContexts]
    return contexts


@dataclass
class _Session:
    """One accepted association: where its instances go and what became of them."""

    ae_title: DicomAeTitle
    peer: DicomPeer
    outcomes: list[IngestOutcome] = field(default_factory=list)
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def jurisdiction(self) -> tuple[str, str] | None:
        if self.peer.jurisdiction_country:
            return self.peer.jurisdiction_country, self.peer.jurisdiction_region
        return None


@dataclass(frozen=True)
class Decision:
    """Whether an association request is accepted, and for which AE title and peer."""

    ae_title: DicomAeTitle | None = None
    peer: DicomPeer | None = None
    diagnostic: int = 0
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.peer is not None


def normalise_host(host: str) -> str:
    """The peer's address as the allow-list stores it (an IPv4-mapped IPv6 address becomes IPv4)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def authorize_association(*, called_ae_title: str, calling_ae_title: str, host: str) -> Decision:
    """The allow-list rule: an active called AE title, and a peer row for the calling AE title at this host."""
    called = called_ae_title.strip()
    calling = calling_ae_title.strip()
    ae_title = DicomAeTitle.objects.select_related("organization").filter(ae_title=called, is_active=True).first()
    if ae_title is None:
        return Decision(diagnostic=_DIAG_CALLED_AE, reason=f"called AE title {called!r} is not an active AE title")
    peer = ae_title.peers.filter(calling_ae_title=calling, host=normalise_host(host)).first()
    if peer is None:
        known_elsewhere = ae_title.peers.filter(calling_ae_title=calling).exists()
        reason = (f"calling AE title {calling!r} is allowed for {called!r} but not from {host}" if known_elsewhere
                  else f"calling AE title {calling!r} is not allowed to call {called!r}")
        return Decision(ae_title=ae_title, diagnostic=_DIAG_CALLING_AE, reason=reason)
    return Decision(ae_title=ae_title, peer=peer)


def store_status(outcome: IngestOutcome) -> int | Dataset:
    """The C-STORE response for one ingest outcome (an ErrorComment names the reason on failure)."""
    if outcome.ok:
        if outcome.warnings:
            return failure(STATUS_ELEMENTS_DISCARDED, "; ".join(outcome.warnings))
        return STATUS_SUCCESS
    if outcome.status == Status.CONFLICT:
        return failure(STATUS_CONFLICT, "SOP Instance UID already stored with different content")
    if outcome.code in ("too_large", "processing_failure"):
        return failure(STATUS_OUT_OF_RESOURCES, outcome.reason)
    if outcome.code == "sop_mismatch":
        # A "cannot understand" failure may name the Offending Element (PS3.7 Annex C): here (0008,0018).
        return failure(STATUS_CANNOT_UNDERSTAND, "SOPInstanceUID differs from the Affected SOP Instance UID",
                       offending=[0x00080018])
    return failure(STATUS_CANNOT_UNDERSTAND, outcome.reason)


def failure(code: int, comment: str, *, offending: list[int] | None = None) -> Dataset:
    """A failure status with an ErrorComment (LO in the command set: at most 64 characters of the
    default repertoire, no backslash; longer reasons are shortened with an ellipsis)."""
    comment = comment.encode("ascii", "replace").decode("ascii").replace("\\", "/")
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment if len(comment) <= 64 else comment[:61] + "..."
    if offending:
        status.OffendingElement = offending
    return status


class QuickAckSocket(socket.socket):
    """A TCP socket that re-arms TCP_QUICKACK after every read (Linux), so the peer's next segment
    is acknowledged at once instead of after the delayed-ACK timer.

    Why: a sender that keeps Nagle's algorithm on (DCMTK's tools, and many modalities) writes the
    C-STORE command and then the data set, and Nagle holds the data set back until the command is
    acknowledged; our side has nothing to send until the data set arrives, so the kernel delays that
    ACK by up to 40 ms, once per instance. TCP_NODELAY on our end does not touch this; quick ACKs do.
    Linux turns quick-ACK mode off again by itself, hence the re-arming on each ``recv``.
    """

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if data:
            # OSError: the connection went away meanwhile; the next recv reports it.
            with contextlib.suppress(OSError):
                self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


class GatewayServer(ThreadedAssociationServer):
    """pynetdicom's threaded server, tuned for senders that keep Nagle's algorithm on.

    Every accepted socket gets TCP_NODELAY (our C-STORE responses leave at once) and, where the
    platform has it, re-armed TCP_QUICKACK (see ``QuickAckSocket``). Measured with DCMTK's
    storescu sending 200 small CT instances: ~68 ms per instance without quick ACKs, ~25 ms with
    them (the same as when storescu itself disables Nagle with TCP_NODELAY=1).
    """

    def get_request(self):
        client_socket, address = super().get_request()
        client_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_QUICKACK") and not self.ssl_context:
            timeout = client_socket.gettimeout()
            client_socket = QuickAckSocket(client_socket.family, client_socket.type, client_socket.proto,
                                           client_socket.detach())
            client_socket.settimeout(timeout)
        return client_socket, address

    def shutdown(self) -> None:
        # pynetdicom's shutdown() also unregisters the server from ``ae._servers``, where only
        # ``ae.start_server()`` registers it; ``make_server()`` (used here) does not.
        socketserver.BaseServer.shutdown(self)
        self.server_close()


class SharedPortGatewayServer(GatewayServer):
    """The same, on a port other gateway processes listen on too (SO_REUSEPORT): the kernel spreads new
    associations among them. One process stores at most ~100-130 instances/s (pynetdicom's work holds
    the GIL); several use several cores."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class Gateway:
    """The running SCP: ``start()`` in a thread (tests) or ``serve_forever()`` (the management command)."""

    def __init__(self, host: str = "0.0.0.0", port: int = 11112, *, chunked: bool = True,  # noqa: S104
                 max_associations: int = 16, shared_port: bool = False) -> None:
        self.address = (host, port)
        self.shared_port = shared_port  # other gateway processes may listen on the same port
        # Chunked: pynetdicom writes each incoming dataset straight to a temporary file instead of
        # holding it in memory, so a 2 GB instance costs disk, not RAM.
        self.chunked = chunked
        self.ae = AE(ae_title=GATEWAY_AE_TITLE)
        self.ae.supported_contexts = presentation_contexts()
        self.ae.maximum_associations = max_associations
        self.ae.maximum_pdu_size = 256 * 1024
        self.ae.acse_timeout = 30
        self.ae.dimse_timeout = 120
        self.ae.network_timeout = 120
        self._sessions: dict[object, _Session] = {}
        self._sessions_lock = threading.Lock()
        # The instances of all associations are indexed in shared transactions; each C-STORE is
        # answered once its own instance is committed (see studies.ingest.GroupCommit).
        self._group = GroupCommit()
        self.server: ThreadedAssociationServer | None = None
        self._thread: threading.Thread | None = None
        self._previous_chunked = _config.STORE_RECV_CHUNKED_DATASET

    # --- lifecycle ------------------------------------------------------------------------------
    def _make_server(self) -> ThreadedAssociationServer:
        self._previous_chunked = _config.STORE_RECV_CHUNKED_DATASET  # process-wide: restored at shutdown
        self._group = GroupCommit()  # a fresh committer each time the server starts
        _config.STORE_RECV_CHUNKED_DATASET = self.chunked
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_end),
        ]
        self.server = self.ae.make_server(self.address, evt_handlers=handlers,
                                          server_class=SharedPortGatewayServer if self.shared_port else GatewayServer)
        return self.server

    @property
    def port(self) -> int:
        if self.server is None:
            return self.address[1]
        return self.server.server_address[1]

    def start(self) -> Gateway:
        """Listen in a background thread (returns at once)."""
        server = self._make_server()
        self._thread = threading.Thread(target=server.serve_forever, name="dicom-gateway", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        server = self._make_server()
        try:
            server.serve_forever()
        finally:
            server.server_close()

    def shutdown(self) -> None:
        """Stop accepting, then wait for the running associations to end."""
        if self.server is None:
            return
        self.server.shutdown()  # from another thread than serve_forever
        for assoc in list(self.server.active_associations):
            assoc.join(timeout=30)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._group.close()
        _config.STORE_RECV_CHUNKED_DATASET = self._previous_chunked

    # --- association acceptance -------------------------------------------------------------------
    def _on_requested(self, event) -> None:
        """Accept or reject on the allow-list, before pynetdicom negotiates.

        Fails closed: pynetdicom logs and ignores an exception in this handler and would then accept,
        so any error here rejects the association (transient: the sender may retry).
        """
        assoc = event.assoc
        try:
            self._decide(assoc)
        except Exception:
            logger.exception("could not check an association request; rejecting it")
            if not assoc.is_rejected:
                with self._sessions_lock:
                    self._sessions.pop(assoc, None)
                self._reject(assoc, _REJECT_TRANSIENT, _DIAG_NO_REASON)

    def _decide(self, assoc) -> None:
        request = assoc.requestor.primitive
        called = (request.called_ae_title or "").strip()
        calling = (request.calling_ae_title or "").strip()
        host = normalise_host(assoc.requestor.address)
        close_old_connections()
        decision = authorize_association(called_ae_title=called, calling_ae_title=calling, host=host)
        if not decision.accepted:
            logger.warning("DICOM association rejected: %s", decision.reason)
            self._audit_rejection(decision, called=called, calling=calling, host=host)
            self._reject(assoc, _REJECT_PERMANENT, decision.diagnostic)
            return
        self._prefer_requested_syntaxes(assoc)
        with self._sessions_lock:
            self._sessions[assoc] = _Session(ae_title=decision.ae_title, peer=decision.peer)
        logger.info("DICOM association accepted: %s@%s -> %s (%s)", calling, host, called,
                    decision.ae_title.organization.slug)

    @staticmethod
    def _reject(assoc, result: int, diagnostic: int) -> None:
        # No more database work in this association's thread: free its connection now.
        connections.close_all()
        # What pynetdicom itself does when its static AE title checks fail.
        assoc.acse.send_reject(result, _SOURCE_USER, diagnostic)
        evt.trigger(assoc, evt.EVT_REJECTED, {})
        assoc.kill()

    @staticmethod
    def _audit_rejection(decision: Decision, *, called: str, calling: str, host: str) -> None:
        try:
            audit_record(action="dicom.association_rejected",
                         organization=decision.ae_title.organization if decision.ae_title else None,
                         object_type="studies.dicomaetitle", object_id=called[:64], reason=decision.reason,
                         outcome=AuditEvent.Outcome.DENIED,
                         extra={"called_ae_title": called, "calling_ae_title": calling, "host": host})
        except Exception:
            logger.exception("could not audit the rejected association %s -> %s from %s", calling, called, host)
        finally:
            close_old_connections()

    @staticmethod
    def _prefer_requested_syntaxes(assoc) -> None:
        """Accept each context with the sender's first proposed transfer syntax that we support.

        pynetdicom picks by the acceptor's order; reordering this association's copy of the supported
        contexts to the requestor's order means a compressed image is taken compressed, an implicit one
        implicit: what the modality prefers to send is what gets stored.
        """
        proposed: dict[str, list[str]] = {}
        for cx in assoc.requestor.primitive.presentation_context_definition_list:
            order = proposed.setdefault(str(cx.abstract_syntax), [])
            order += [str(ts) for ts in cx.transfer_syntax if str(ts) not in order]
        contexts = []
        for cx in assoc.acceptor.supported_contexts:
            wanted = proposed.get(str(cx.abstract_syntax))
            if wanted:
                ours = set(map(str, cx.transfer_syntax))
                ordered = [ts for ts in wanted if ts in ours]
                if ordered:
                    cx = build_context(cx.abstract_syntax, ordered)
            contexts.append(cx)
        assoc.acceptor.supported_contexts = contexts

    # --- services -------------------------------------------------------------------------------
    @staticmethod
    def _on_echo(event) -> int:
        return STATUS_SUCCESS

    def _on_store(self, event) -> int | Dataset:
        session = self._sessions.get(event.assoc)
        if session is None:  # cannot happen for an accepted association; refuse rather than guess
            return failure(STATUS_OUT_OF_RESOURCES, "association is not registered with the gateway")
        sop_uid = str(event.request.AffectedSOPInstanceUID or "")
        close_old_connections()
        try:
            if self.chunked:
                with open(event.dataset_path, "rb") as stream:
                    outcome = self._ingest(session, stream, sop_uid)
            else:
                outcome = self._ingest(session, io.BytesIO(event.encoded_dataset()), sop_uid)
        except Exception:
            logger.exception("C-STORE of %s from %s failed", sop_uid, session.peer)
            return failure(STATUS_OUT_OF_RESOURCES, "the gateway could not store it; retry later")
        finally:
            close_old_connections()
        outcome.instance = None  # keep only what the audit needs for the rest of the association
        with session.lock:
            late = session.finished
            if not late:
                session.outcomes.append(outcome)
        if late:  # the connection closed while this instance was being stored: audit it on its own
            self._audit_outcomes(session, [outcome])
        if not outcome.ok:
            logger.warning("C-STORE of %s from %s refused: %s", sop_uid, session.peer, outcome.reason)
        return store_status(outcome)

    def _ingest(self, session: _Session, stream, sop_uid: str) -> IngestOutcome:
        # Spooled, hashed and parsed in this association's thread; indexed by the group committer.
        return ingest_stream(organization=session.ae_title.organization, stream=stream,
                             filename=f"{session.peer.calling_ae_title}:{sop_uid}"[:200], source=Source.CSTORE,
                             jurisdiction=session.jurisdiction, batch=self._group, expected_sop_uid=sop_uid)

    def _on_end(self, event) -> None:
        """Released, aborted or dropped: audit what this association stored (once), free the connection."""
        with self._sessions_lock:
            session = self._sessions.pop(event.assoc, None)
        if session is not None:
            with session.lock:
                session.finished = True
                outcomes, session.outcomes = session.outcomes, []
            if outcomes:
                self._audit_outcomes(session, outcomes)
        connections.close_all()  # this thread's connections only (they are thread-local)

    @staticmethod
    def _audit_outcomes(session: _Session, outcomes: list[IngestOutcome]) -> None:
        try:
            close_old_connections()
            audit_ingest(outcomes, organization=session.ae_title.organization, source=Source.CSTORE)
        except Exception:
            logger.exception("could not audit %d C-STORE outcomes from %s", len(outcomes), session.peer)

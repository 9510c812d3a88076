"""Builders of the RIS order tests (issue 23): a registered interface, orders as the listener hands them over,
and real studies with a chosen accession number and patient, ingested the way every door does (the studies
app's hook runs after the commit)."""

from __future__ import annotations

from datetime import date
from io import BytesIO
from itertools import count

from marketplace.ris.orders import NEW, OrderData, order_apply
from marketplace.ris_models import Hl7Interface, RisOrder
from studies import synthetic
from studies.ingest import Source, ingest_files

_seq = count(1)


def interface_for(center, **fields) -> Hl7Interface:
    n = next(_seq)
    return Hl7Interface.objects.create(center=center, sending_application=fields.pop("application", f"RIS{n}"),
                                       sending_facility=fields.pop("facility", f"{center.slug.upper()}{n}"),
                                       **fields)


def order(center, *, control: str = NEW, placer: str = "ORD1", accession: str = "ACC1", patient_id: str = "MRN100201",
          source: str = RisOrder.Source.HL7, actor=None, **fields) -> RisOrder:
    data = OrderData(control=control, placer_order_number=placer, accession_number=accession, patient_id=patient_id,
                     **fields)
    return order_apply(center=center, data=data, source=source, actor=actor)


def ingest_with_accession(center, *, accession: str, patient: int = 1, description: str = "CT HEAD"):
    """A one-slice CT of ``synthetic.demo_patient(patient)`` (patient id MRN1002xx) with ``accession``, through
    ``ingest_files`` (the path that tells the higher layers, as upload, STOW-RS and C-STORE do)."""
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(patient), accession=accession,
                               description=description, study_date=date(2026, 11, 1))
    data = synthetic.to_bytes(synthetic.ct_series(spec, slices=1, size=32)[0])
    outcomes = ingest_files(organization=center, files=[("m.dcm", BytesIO(data))], source=Source.STOW,
                            jurisdiction=(center.country, center.region))
    assert outcomes[0].status == "stored", outcomes[0].reason
    study = outcomes[0].instance.study
    study.refresh_from_db()
    return study

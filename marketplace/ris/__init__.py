"""Orders from a center's RIS (issue 23): HL7 v2 over MLLP and FHIR ServiceRequest in, matched to studies,
posted as read requests. ``orders``: the one service that applies an order message; ``hl7_in``: parsing
and acknowledging HL7 v2; ``listener``: the MLLP server."""

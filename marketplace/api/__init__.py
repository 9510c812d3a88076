"""The marketplace's REST API views (thin, on accounts.api_base.ActorAPIView)."""

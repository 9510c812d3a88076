"""STUB: replaced by the API work."""

from rest_framework.views import APIView


class WebhookEndpointListView(APIView):
    pass


class WebhookEndpointDetailView(APIView):
    pass


class WebhookEndpointTestView(APIView):
    pass

"""STUB: replaced by the API work."""

from rest_framework.views import APIView


class ReadRequestListView(APIView):
    pass


class ReadRequestDetailView(APIView):
    pass


class ReadRequestCancelView(APIView):
    pass


class ReadRequestHistoryView(APIView):
    pass


class ReadRequestCandidatesView(APIView):
    pass

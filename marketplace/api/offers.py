"""STUB: replaced by the API work."""

from rest_framework.views import APIView


class OfferListView(APIView):
    pass


class OfferClaimView(APIView):
    pass


class OfferDeclineView(APIView):
    pass


class AssignmentListView(APIView):
    pass


class AssignmentStartView(APIView):
    pass


class AssignmentReleaseView(APIView):
    pass

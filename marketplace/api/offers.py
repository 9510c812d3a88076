"""A radiologist's side of the API: their open offers (de-identified), claim and decline; their reads
(assignments) with the viewer link, start and release. Anyone else's offer or assignment is 404."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.serializers import ErrorSerializer
from marketplace import selectors
from marketplace.models import Assignment, Offer
from marketplace.serializers import AssignmentSerializer, OfferSerializer, OptionalReasonSerializer, ReasonSerializer
from marketplace.services.offers import assignment_release, assignment_start, offer_claim, offer_decline

CONFLICT = OpenApiResponse(ErrorSerializer, description="The offer or the read is no longer open, or you are no "
                                                        "longer eligible; `code` and `fields` say which.")


@extend_schema(tags=["offers"])
class OfferListView(ListModelMixin, ActorAPIView):
    """My open offers, soonest deadline first: the de-identified summary, the quote and the clock."""

    serializer_class = OfferSerializer
    queryset = Offer.objects.none()  # names the model for the schema; requests use the selector

    def get_scoped_queryset(self, actor):
        return selectors.offer_list(actor=actor)

    @extend_schema(operation_id="offers_list", responses={200: OfferSerializer(many=True), **error_responses()})
    def get(self, request):
        return self.list(request)


class OfferActionBase(ActorAPIView):
    serializer_class = OfferSerializer
    queryset = Offer.objects.none()

    def get_scoped_queryset(self, actor):
        return selectors.offer_list(actor=actor, status="")

    def offer(self, public_id) -> Offer:
        return selectors.offer_get(actor=self.actor, public_id=public_id)


@extend_schema(tags=["offers"])
class OfferClaimView(OfferActionBase):
    serializer_class = AssignmentSerializer

    @extend_schema(operation_id="offers_claim", request=None,
                   responses={201: AssignmentSerializer, 409: CONFLICT, **error_responses(404)})
    def post(self, request, public_id):
        """Take the read. Exactly once: the first claim wins; eligibility is checked again now."""
        assignment = offer_claim(actor=self.actor, offer=self.offer(public_id), request=request)
        assignment = selectors.assignment_get(actor=self.actor, public_id=assignment.public_id)
        return Response(AssignmentSerializer(assignment).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["offers"])
class OfferDeclineView(OfferActionBase):
    @extend_schema(operation_id="offers_decline", request=OptionalReasonSerializer,
                   responses={200: OfferSerializer, 409: CONFLICT, **error_responses(400, 404)})
    def post(self, request, public_id):
        """Pass on an offer (the reason is shown to the center); its preview of the images ends."""
        offer = self.offer(public_id)
        serializer = OptionalReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offer_decline(actor=self.actor, offer=offer, reason=serializer.validated_data["reason"], request=request)
        return Response(OfferSerializer(self.offer(public_id)).data)


@extend_schema(tags=["assignments"])
class AssignmentListView(ListModelMixin, ActorAPIView):
    """My active reads, soonest deadline first, each with its viewer link."""

    serializer_class = AssignmentSerializer
    queryset = Assignment.objects.none()

    def get_scoped_queryset(self, actor):
        return selectors.assignment_list(actor=actor)

    @extend_schema(operation_id="assignments_list", responses={200: AssignmentSerializer(many=True),
                                                               **error_responses()})
    def get(self, request):
        return self.list(request)


class AssignmentActionBase(ActorAPIView):
    serializer_class = AssignmentSerializer
    queryset = Assignment.objects.none()

    def get_scoped_queryset(self, actor):
        return selectors.assignment_list(actor=actor, active_only=False)

    def assignment(self, public_id) -> Assignment:
        return selectors.assignment_get(actor=self.actor, public_id=public_id)


@extend_schema(tags=["assignments"])
class AssignmentStartView(AssignmentActionBase):
    @extend_schema(operation_id="assignments_start", request=None,
                   responses={200: AssignmentSerializer, 409: CONFLICT, **error_responses(404)})
    def post(self, request, public_id):
        """Start reading (assigned → in progress); starting again changes nothing."""
        assignment_start(actor=self.actor, assignment=self.assignment(public_id), request=request)
        return Response(AssignmentSerializer(self.assignment(public_id)).data)


@extend_schema(tags=["assignments"])
class AssignmentReleaseView(AssignmentActionBase):
    @extend_schema(operation_id="assignments_release", request=ReasonSerializer,
                   responses={200: AssignmentSerializer, 409: CONFLICT, **error_responses(400, 404)})
    def post(self, request, public_id):
        """Give the read back with a reason: it reopens for the other readers (not you)."""
        assignment = self.assignment(public_id)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assignment_release(actor=self.actor, assignment=assignment, reason=serializer.validated_data["reason"],
                           request=request)
        return Response(AssignmentSerializer(self.assignment(public_id)).data)

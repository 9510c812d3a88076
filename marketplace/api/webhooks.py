"""The active center's webhook endpoints (its admins, in person or through an admin API key)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from core.api_input import RefuseUnknownFields
from marketplace import webhooks
from marketplace.models import WebhookDelivery, WebhookEndpoint
from marketplace.services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_test,
)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="event_id", read_only=True,
                               help_text="Also sent as the X-ReadRoom-Delivery header: dedupe on it.")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_type", "status", "attempts", "last_status_code", "last_error", "next_attempt_at",
                  "delivered_at", "created_at"]
        read_only_fields = fields


class WebhookEndpointSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    secret = serializers.SerializerMethodField(help_text="Masked; the full secret is shown only when created.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "secret", "created_at"]
        read_only_fields = fields

    def get_secret(self, obj) -> str:
        return f"{obj.secret[:6]}…{obj.secret[-4:]}"


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """The response to creating an endpoint: the only time its signing secret is shown."""

    def get_secret(self, obj) -> str:
        return obj.secret


class WebhookEndpointDetailSerializer(WebhookEndpointSerializer):
    recent_deliveries = WebhookDeliverySerializer(many=True, read_only=True,
                                                  help_text=f"The newest {webhooks.RECENT_DELIVERIES} deliveries.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "recent_deliveries"]
        read_only_fields = fields


class WebhookEndpointCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    # Whether the host resolves, and to a public address, is checked when the endpoint is created
    # (marketplace.webhooks.check_url): no schema can say it.
    url = serializers.CharField(max_length=500, validators=[RegexValidator(r"^https?://[^\s/?#]+\S*$",
                                                                          "Enter a full https:// URL.")],
                                help_text="https URL of your receiver; its host must resolve to a public address.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class _CenterEndpoints(ActorAPIView):
    queryset = WebhookEndpoint.objects.none()  # names the model for the schema; requests use get_scoped_queryset

    def get_scoped_queryset(self, actor):
        return webhooks.endpoint_list(actor=actor, center=actor.active_organization)


@extend_schema(tags=["webhooks"])
class WebhookEndpointListView(ListModelMixin, _CenterEndpoints):
    """Endpoints that receive a signed event (HMAC-SHA256, header ``X-ReadRoom-Signature: t=…,v1=…``) for
    every state change of the center's read requests."""

    serializer_class = WebhookEndpointSerializer

    @extend_schema(operation_id="webhook_endpoints_list",
                   responses={200: WebhookEndpointSerializer(many=True), **error_responses(404)})
    def get(self, request):
        return self.list(request)

    @extend_schema(operation_id="webhook_endpoints_create", request=WebhookEndpointCreateSerializer,
                   responses={201: WebhookEndpointCreatedSerializer, **error_responses(400, 404)})
    def post(self, request):
        """Add an endpoint. Its signing secret is in this response only."""
        self.get_queryset()  # 404 for anyone who does not manage the active center's webhooks
        serializer = WebhookEndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(actor=self.actor, center=self.actor.active_organization, request=request,
                                           **serializer.validated_data)
        response = Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


@extend_schema(tags=["webhooks"])
class WebhookEndpointDetailView(_CenterEndpoints):
    serializer_class = WebhookEndpointDetailSerializer

    def get_scoped_queryset(self, actor):
        return webhooks.with_recent_deliveries(super().get_scoped_queryset(actor))

    @extend_schema(operation_id="webhook_endpoints_retrieve",
                   responses={200: WebhookEndpointDetailSerializer, **error_responses(404)})
    def get(self, request, public_id):
        """One endpoint with its newest deliveries (status, attempts, last response)."""
        return Response(WebhookEndpointDetailSerializer(self.get_object()).data)

    @extend_schema(operation_id="webhook_endpoints_destroy", request=None,
                   responses={204: None, **error_responses(404)})
    def delete(self, request, public_id):
        """Remove the endpoint; events it had not yet received are given up."""
        webhook_endpoint_delete(actor=self.actor, endpoint=self.get_object(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["webhooks"])
class WebhookEndpointTestView(_CenterEndpoints):
    serializer_class = WebhookDeliverySerializer

    @extend_schema(operation_id="webhook_endpoints_test", request=None,
                   responses={200: WebhookDeliverySerializer, **error_responses(404)})
    def post(self, request, public_id):
        """Send a signed ``ping`` event to the endpoint now; the answer is the delivery with its outcome."""
        delivery = webhook_endpoint_test(actor=self.actor, endpoint=self.get_object(), request=request)
        return Response(WebhookDeliverySerializer(delivery).data)

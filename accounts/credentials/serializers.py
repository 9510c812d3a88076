"""API shapes of credentialing. They check the shape of input; services hold the rules."""

from __future__ import annotations

from rest_framework import serializers

from accounts.credentials.models import (
    BoardCertification,
    FacilityPrivilege,
    License,
    MalpracticeInsurance,
    MqsaQualification,
    RadiologistProfile,
    VerificationMethod,
)
from accounts.credentials.vocab import Modality, Priority, Subspecialty


class RadiologistProfileSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.CharField(read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = RadiologistProfile
        fields = ["id", "name", "email", "display_name", "credentials_line", "bio", "languages", "home_time_zone",
                  "npi", "subspecialties", "modalities", "max_concurrent_cases", "priorities", "onboarding_step",
                  "submitted_at"]
        read_only_fields = fields


class RadiologistProfileUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    credentials_line = serializers.CharField(max_length=100, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    languages = serializers.ListField(child=serializers.CharField(max_length=2), required=False)
    home_time_zone = serializers.CharField(max_length=64, required=False)
    npi = serializers.CharField(max_length=10, required=False, allow_blank=True, allow_null=True)
    subspecialties = serializers.ListField(child=serializers.ChoiceField(choices=Subspecialty.choices),
                                           required=False)
    modalities = serializers.ListField(child=serializers.ChoiceField(choices=Modality.choices), required=False)
    max_concurrent_cases = serializers.IntegerField(min_value=1, max_value=50, required=False)
    priorities = serializers.ListField(child=serializers.ChoiceField(choices=Priority.choices), required=False)


COMMON = ["id", "status", "status_reason", "verified_at", "verification_method", "expires_on", "created_at",
          "updated_at"]


def _item_serializer(model, extra: list[str]):
    meta = type("Meta", (), {"model": model, "fields": [*COMMON, *extra], "read_only_fields": [*COMMON, *extra]})
    return type(f"{model.__name__}Serializer", (serializers.ModelSerializer,), {
        "Meta": meta, "id": serializers.UUIDField(source="public_id", read_only=True)})


LicenseSerializer = _item_serializer(License, ["country", "region", "number", "license_type", "issued_on"])
BoardCertificationSerializer = _item_serializer(BoardCertification, ["board", "certificate", "initial_year",
                                                                     "continuous_certification"])
MalpracticeInsuranceSerializer = _item_serializer(MalpracticeInsurance, [
    "carrier", "policy_number", "per_claim_limit", "aggregate_limit", "currency", "coverage_jurisdictions",
    "effective_on"])
MqsaQualificationSerializer = _item_serializer(MqsaQualification, [
    "initial_qualified_on", "exams_last_24_months", "cme_hours_last_36_months", "attested_on"])


class LicenseInputSerializer(serializers.Serializer):
    country = serializers.CharField(max_length=2)
    region = serializers.CharField(max_length=3, required=False, allow_blank=True)
    number = serializers.CharField(max_length=40)
    license_type = serializers.ChoiceField(choices=License.Type.choices, required=False)
    issued_on = serializers.DateField(required=False, allow_null=True)
    expires_on = serializers.DateField()


class BoardInputSerializer(serializers.Serializer):
    board = serializers.CharField(max_length=100, required=False)
    certificate = serializers.CharField(max_length=150)
    initial_year = serializers.IntegerField(min_value=1950, max_value=2100)
    expires_on = serializers.DateField(required=False, allow_null=True)
    continuous_certification = serializers.BooleanField(required=False)


class InsuranceInputSerializer(serializers.Serializer):
    carrier = serializers.CharField(max_length=150)
    policy_number = serializers.CharField(max_length=60)
    per_claim_limit = serializers.IntegerField(min_value=1)
    aggregate_limit = serializers.IntegerField(min_value=1)
    currency = serializers.CharField(max_length=3, required=False)
    coverage_jurisdictions = serializers.ListField(child=serializers.CharField(max_length=6))
    effective_on = serializers.DateField()
    expires_on = serializers.DateField()


class MqsaInputSerializer(serializers.Serializer):
    initial_qualified_on = serializers.DateField()
    exams_last_24_months = serializers.IntegerField(min_value=0)
    cme_hours_last_36_months = serializers.DecimalField(max_digits=5, decimal_places=1, min_value=0)
    attested_on = serializers.DateField()


ITEM_SERIALIZERS = {
    "license": (LicenseSerializer, LicenseInputSerializer),
    "board": (BoardCertificationSerializer, BoardInputSerializer),
    "insurance": (MalpracticeInsuranceSerializer, InsuranceInputSerializer),
    "mqsa": (MqsaQualificationSerializer, MqsaInputSerializer),
}


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[("verified", "verified"), ("rejected", "rejected")])
    method = serializers.ChoiceField(choices=VerificationMethod.choices, required=False, allow_blank=True)
    reference = serializers.CharField(max_length=300, required=False, allow_blank=True)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class PendingItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.CharField(source="KIND")
    title = serializers.CharField()
    radiologist = serializers.CharField(source="radiologist.name")
    radiologist_id = serializers.UUIDField(source="radiologist.public_id")
    expires_on = serializers.DateField()
    status_changed_at = serializers.DateTimeField()
    document_count = serializers.SerializerMethodField()

    def get_document_count(self, item) -> int:
        return len(getattr(item, "documents", []))


class DocumentSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    original_name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class DirectoryEntrySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="profile.public_id")
    name = serializers.CharField(source="profile.name")
    credentials_line = serializers.CharField(source="profile.credentials_line")
    licensed_in = serializers.ListField(child=serializers.CharField())
    subspecialties = serializers.ListField(source="profile.subspecialties", child=serializers.CharField())
    modalities = serializers.ListField(source="profile.modalities", child=serializers.CharField())
    languages = serializers.ListField(source="profile.languages", child=serializers.CharField())


class PublicProfileSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="profile.public_id")
    name = serializers.CharField(source="profile.name")
    credentials_line = serializers.CharField(source="profile.credentials_line")
    bio = serializers.CharField(source="profile.bio")
    home_time_zone = serializers.CharField(source="profile.home_time_zone")
    languages = serializers.ListField(source="profile.languages", child=serializers.CharField())
    subspecialties = serializers.ListField(source="profile.subspecialties", child=serializers.CharField())
    modalities = serializers.ListField(source="profile.modalities", child=serializers.CharField())
    licensed_in = serializers.SerializerMethodField()
    boards = serializers.SerializerMethodField()
    mqsa_qualified = serializers.BooleanField()
    insured = serializers.BooleanField()

    def get_licensed_in(self, public) -> list[str]:
        return [jurisdiction for jurisdiction, _ in public.licensed_in]

    def get_boards(self, public) -> list[str]:
        return [f"{b.board} {b.certificate}" for b in public.boards]


class EligibilitySerializer(serializers.Serializer):
    radiologist = serializers.UUIDField(source="radiologist.public_id")
    eligible = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())


class PrivilegeSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    radiologist = serializers.UUIDField(source="radiologist.public_id", read_only=True)
    radiologist_name = serializers.CharField(source="radiologist.name", read_only=True)

    class Meta:
        model = FacilityPrivilege
        fields = ["id", "radiologist", "radiologist_name", "status", "status_reason", "granted_on", "expires_on"]
        read_only_fields = fields


class PrivilegeGrantSerializer(serializers.Serializer):
    radiologist = serializers.UUIDField()
    granted_on = serializers.DateField(required=False)
    expires_on = serializers.DateField(required=False, allow_null=True)


class PrivilegeChangeSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=FacilityPrivilege.Status.choices)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

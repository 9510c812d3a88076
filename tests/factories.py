"""factory_boy factories for the shared cast."""

import factory
from allauth.account.models import EmailAddress

from accounts.models import Membership, Organization, User

TEST_PASSWORD = "correct-horse-battery-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    kind = User.Kind.PROFESSIONAL
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def verified_email(self, create, extracted, **kwargs):
        if create:
            self.save()
            EmailAddress.objects.get_or_create(user=self, email=self.email, defaults={"verified": True,
                                                                                      "primary": True})


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Center {n}")
    legal_name = factory.LazyAttribute(lambda o: f"{o.name} LLC")
    slug = factory.Sequence(lambda n: f"org-{n}")
    kind = Organization.Kind.IMAGING_CENTER
    country = "US"
    region = "TX"
    time_zone = "America/Chicago"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    roles = factory.LazyFunction(lambda: ["viewer"])

from marketplace.models import Offer, Status
from marketplace.services.matching import match
from marketplace.services.offers import offer_claim
from tests.marketplace.helpers import actor, make_radiologist, post


def test_post_match_offer_claim(cast, ct_study, reader):
    other = make_radiologist(regions=("FL",))
    rr = post(cast.technologist, ct_study, priority="stat")
    assert rr.status == Status.OPEN
    result = match(rr, everyone=True)
    assert [c.radiologist for c in result.candidates] == [reader]
    assert any("no verified license for US-TX" in r for c in result.excluded if c.radiologist == other for r in c.reasons)
    offer = Offer.objects.get(read_request=rr, radiologist=reader)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer)
    rr.refresh_from_db()
    assert rr.status == Status.ASSIGNED and assignment.grant.level == "full"

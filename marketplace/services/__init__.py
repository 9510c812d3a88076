"""Every write of the marketplace (requests, offers and claims, clocks, events); matching is a read of its own."""

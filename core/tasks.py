"""Tasks with no domain of their own."""

from celery import shared_task


@shared_task(name="core.ping")
def ping(token: str) -> str:
    """Answer ``pong:<token>``: proves a worker took a message off the broker and ran it."""
    return f"pong:{token}"

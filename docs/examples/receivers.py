import logging

from django.dispatch import receiver

from openhumans.signals import member_deauth

logger = logging.getLogger(__name__)


@receiver(member_deauth)
def forget_member(sender, open_humans_member, erasure_requested, **kwargs):
    """Log who left; a real project would delete what it stored about them here."""
    logger.info(
        "member %s left the project (erasure requested: %s)",
        open_humans_member.oh_id,
        erasure_requested,
    )

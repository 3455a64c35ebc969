from django.apps import AppConfig


class DemoSiteConfig(AppConfig):
    name = "demo_site"
    verbose_name = "Demo site"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from openhumans.models import OpenHumansMember

        from .receivers import delete_user_with_member

        post_delete.connect(delete_user_with_member, sender=OpenHumansMember)

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from openhumans.member_views import member_required


@member_required
def member_page(request):
    """A project's own view: counts the member's files (an API call that may fail)."""
    return HttpResponse(
        f"{request.openhumans_member.oh_id}: {len(request.openhumans_member.list_files())}"
    )


urlpatterns = [
    path("admin/", admin.site.urls),
    path("openhumans/", include("openhumans.urls")),
    path("mine/", member_page),
]

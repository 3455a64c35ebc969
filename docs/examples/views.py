from django.http import JsonResponse
from django.views import View

from openhumans.views import MemberRequiredMixin


class FileCount(MemberRequiredMixin, View):
    """How many files the logged-in member has; anyone else gets the "connect" page."""

    def get(self, request):
        return JsonResponse({"count": len(self.member.list_files())})

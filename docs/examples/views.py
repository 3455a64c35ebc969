from django.shortcuts import render
from django.views import View

from openhumans.views import MemberRequiredMixin


class FileCount(MemberRequiredMixin, View):
    """How many files the logged-in member has; anyone else gets the "connect" page."""

    def get(self, request):
        files = self.member.list_files()
        return render(request, "file_count.html", {"count": len(files)})

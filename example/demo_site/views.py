"""The demo's pages, built on the app's views and ``request.user.openhumansmember``."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views import View

from openhumans.direct_upload import CompleteUpload, StartForm, StartUpload
from openhumans.models import OpenHumansMember
from openhumans.views import MemberRequiredMixin, list_files

from .forms import MessageForm, UploadForm
from .jobs import rebuild_summary


def demo_context(request):
    """Template context for every page: the sandbox's address and the current member."""
    member = None
    if request.user.is_authenticated:
        member = OpenHumansMember.objects.filter(user=request.user).first()
    return {"sandbox_url": settings.OPENHUMANS_OH_BASE_URL.rstrip("/"), "oh_member": member}


def home(request):
    if request.user.is_authenticated and OpenHumansMember.objects.filter(user=request.user):
        return redirect("dashboard")
    return render(request, "demo/home.html")


class DemoMemberMixin(MemberRequiredMixin):
    """The app's member checks, with the demo's reconnect page; strangers go home."""

    not_connected_template = "demo/reconnect.html"

    def not_connected(self, request, member):
        if not request.user.is_authenticated:
            return redirect("home")
        return super().not_connected(request, member)


def _for_display(f: dict) -> dict:
    metadata = f.get("metadata") or {}
    return {
        "id": f["id"],
        "basename": f["basename"],
        "created": parse_datetime(f["created"]) if f.get("created") else None,
        "description": metadata.get("description", ""),
        "tags": metadata.get("tags") or [],
        # Listings carry no size; the demo records it in the metadata it uploads.
        "size": metadata.get("size"),
    }


class Dashboard(DemoMemberMixin, list_files):
    """The app's ``list_files`` view with the demo's template and two more forms."""

    list_template = "demo/dashboard.html"

    def get(self, request):
        files = sorted(
            (_for_display(f) for f in self.member.list_files()),
            key=lambda f: f["id"],
            reverse=True,
        )
        context = {
            "member": self.member,
            "files": files,
            "upload_form": UploadForm(),
            "message_form": MessageForm(),
            "sent_to_inbox": request.session.pop("demo_message_sent", False),
        }
        return render(request, self.list_template, context)


class Upload(DemoMemberMixin, View):
    """Upload a file with ``OpenHumansMember.upload`` (the docs' example, in a view)."""

    def post(self, request):
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect("dashboard")
        f = form.cleaned_data["file"]
        metadata = {
            "description": form.cleaned_data["description"],
            "tags": form.cleaned_data["tags"],
            # Extra metadata keys are stored and returned unchanged by Open Humans.
            "size": f.size,
        }
        self.member.upload(f, f.name, metadata)
        rebuild_summary.enqueue(self.member.oh_id)  # summary.json, in the background
        messages.success(request, f"Uploaded {f.name}.")
        return redirect("dashboard")


class DemoStartForm(StartForm):
    """The app's checks, with the description optional as on the demo's form."""

    description = forms.CharField(max_length=100, required=False)


class UploadStart(StartUpload):
    """The app's browser-upload start, storing the size as the demo's form does."""

    form_class = DemoStartForm

    def metadata(self, form):
        # Completion checks that storage holds exactly this many bytes.
        return {**super().metadata(form), "size": form.cleaned_data["size"]}


class UploadComplete(CompleteUpload):
    """The app's browser-upload completion, then the summary job queued."""

    def handle(self, request, member, data):
        response = super().handle(request, member, data)
        rebuild_summary.enqueue(member.oh_id)  # summary.json, in the background
        return response


class SendMessage(DemoMemberMixin, View):
    """Send the member a message through Open Humans."""

    def post(self, request):
        form = MessageForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Both a subject and a message are needed.")
            return redirect("dashboard")
        self.member.message(form.cleaned_data["subject"], form.cleaned_data["message"])
        request.session["demo_message_sent"] = True
        return redirect("dashboard")


class DeleteAccount(DemoMemberMixin, View):
    """Delete the account here; the app then withdraws the member on Open Humans.

    Deleting the member queues a remove-members notice in the outbox, in the same
    transaction (OPENHUMANS_DEAUTH_ON_DELETE); once the delete is committed the background
    worker (db_worker) delivers it, retrying while Open Humans is unreachable. Open Humans
    calls our deauth webhook during that call. The demo's receiver deletes the user with
    the member.
    """

    def post(self, request):
        self.member.delete()
        logout(request)
        # Not "you left": the notice is delivered after this response, by the worker.
        messages.success(
            request, "Your account is deleted. Open Humans is being told that you left the project."
        )
        return redirect("home")

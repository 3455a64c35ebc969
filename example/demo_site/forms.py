"""Forms of the demo dashboard."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat


class UploadForm(forms.Form):
    file = forms.FileField()
    description = forms.CharField(max_length=100, required=False)
    tags = forms.CharField(
        max_length=200, required=False, help_text="Separated by commas or spaces."
    )

    def clean_file(self):
        f = self.cleaned_data["file"]
        limit = settings.DEMO_MAX_UPLOAD_BYTES
        if f.size > limit:
            raise forms.ValidationError(f"Files up to {filesizeformat(limit)} in this demo.")
        if f.size == 0:
            raise forms.ValidationError("The file is empty.")
        return f

    def clean_tags(self) -> list[str]:
        tags = re.split(r"[,\s]+", self.cleaned_data["tags"])
        return list(dict.fromkeys(t for t in tags if t))


class MessageForm(forms.Form):
    subject = forms.CharField(max_length=120, initial="Hello from the demo")
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        initial="This message was sent by the example site through the Open Humans API.",
    )

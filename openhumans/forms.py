"""Forms validating what the app's views accept from a browser."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .client import MAX_FILE_ID
from .conf import get_setting

_FILE_ID = re.compile(r"^[0-9]{1,19}$")


class DeleteFileForm(forms.Form):
    """A file to delete: ``file_id`` (digits) or ``file_basename``, exactly one."""

    file_id = forms.CharField(required=False)
    file_basename = forms.CharField(required=False, max_length=255)
    # Only names the file in the notice after deleting it by id; never selects anything.
    file_name = forms.CharField(required=False, max_length=255)

    def clean_file_id(self) -> int | None:
        value = self.cleaned_data.get("file_id") or ""
        if not value:
            return None
        if not _FILE_ID.match(value) or not 1 <= int(value) <= MAX_FILE_ID:
            raise forms.ValidationError(_("file_id must be a positive whole number."))
        return int(value)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("file_id") is None) == (not data.get("file_basename")):
            raise forms.ValidationError(_("Give exactly one of file_id or file_basename."))
        return data


class UploadForm(forms.Form):
    """A file to upload to Open Humans with the metadata Open Humans requires."""

    data_file = forms.FileField(label=_("File"))
    description = forms.CharField(label=_("Description"), max_length=100, required=True)
    tags = forms.CharField(
        label=_("Tags"),
        max_length=500,
        required=False,
        help_text=_("Separated by commas or spaces."),
    )

    def clean_data_file(self) -> Any:
        data_file = self.cleaned_data["data_file"]
        limit = get_setting("OPENHUMANS_MAX_UPLOAD_SIZE")
        if limit is not None and data_file.size > limit:
            raise forms.ValidationError(
                _("This file is too large: %(size)s bytes; the limit is %(limit)s bytes."),
                code="too_large",
                params={"size": data_file.size, "limit": limit},
            )
        return data_file

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags") or ""
        return [tag for tag in re.split(r"[,\s]+", raw) if tag]

    def metadata(self) -> dict[str, Any]:
        """Return the Open Humans metadata for the cleaned form."""
        return {
            "description": self.cleaned_data["description"],
            "tags": self.cleaned_data["tags"],
        }

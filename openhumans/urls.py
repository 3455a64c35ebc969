"""URLs of the app; include them under ``openhumans/`` (namespace ``openhumans``).

``complete`` and ``deauth`` are the documented ``/openhumans/complete`` and
``/openhumans/deauth``, with or without a trailing slash. The file views keep 0.2.0's paths
(``list``, ``delete_file``, ``delete_all_files``, slash optional) so existing templates work.
"""

from __future__ import annotations

from django.urls import path, re_path

from . import direct_upload, member_views, views

app_name = "openhumans"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("account-conflict/", views.account_conflict, name="account_conflict"),
    path("complete", views.complete, name="complete"),
    path("complete/", views.complete),
    path("deauth", views.deauth, name="deauth"),
    path("deauth/", views.deauth),
    re_path(r"^list/?$", views.list_files.as_view(), name="list"),
    re_path(r"^delete_file/?$", views.DeleteFile.as_view(), name="delete_file"),
    re_path(r"^delete_all_files/?$", views.DeleteAllFiles.as_view(), name="delete_all_files"),
    path("upload/", views.UploadFile.as_view(), name="upload"),
    # Browser uploads straight to storage (JSON; openhumans.direct_upload).
    path("upload/start/", direct_upload.StartUpload.as_view(), name="upload_start"),
    path("upload/complete/", direct_upload.CompleteUpload.as_view(), name="upload_complete"),
    path("upload/cancel/", direct_upload.CancelUpload.as_view(), name="upload_cancel"),
    path("download/<int:file_id>/", member_views.DownloadFile.as_view(), name="download"),
    path("reconnect/", member_views.reconnect, name="reconnect"),
]

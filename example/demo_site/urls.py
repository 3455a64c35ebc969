from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import include, path, re_path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.Dashboard.as_view(), name="dashboard"),
    path("dashboard/upload/", views.Upload.as_view(), name="upload"),
    # Browser uploads (static openhumans/direct-upload.js): the demo's start step, then the
    # app's complete and cancel steps.
    path("dashboard/upload/start/", views.UploadStart.as_view(), name="upload_start"),
    path("dashboard/message/", views.SendMessage.as_view(), name="send_message"),
    path("dashboard/delete-account/", views.DeleteAccount.as_view(), name="delete_account"),
    path("admin/", admin.site.urls),
    # The app's URLs, exactly as the getting-started guide adds them. The dashboard's
    # delete buttons post to its delete_file and delete_all_files views.
    path("openhumans/", include("openhumans.urls")),
    # The demo serves its one stylesheet itself, also with DEBUG off (a real site would
    # use its web server or WhiteNoise).
    re_path(rf"^{settings.STATIC_URL.strip('/')}/(?P<path>.*)$", serve, kwargs={"insecure": True}),
]

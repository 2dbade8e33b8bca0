from django.contrib import admin
from django.urls import include, path

from datapolicy import accounts
from datapolicy.api_urls import page_urlpatterns as api_key_pages

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("datapolicy.urls")),
    path("", include(accounts.urlpatterns)),
    path("clients/", include("clients.urls")),
    path("measures/", include("measures.urls")),
    path("stats/", include("stats.urls")),
    path("api/", include("fitplatform.api_urls")),
    path("api-keys/", include(api_key_pages)),
]

# JSON errors under /api/ (HTML pages elsewhere) where no DRF view answers.
handler400 = "fitplatform.api_errors.bad_request"
handler403 = "fitplatform.api_errors.permission_denied"
handler404 = "fitplatform.api_errors.page_not_found"
handler500 = "fitplatform.api_errors.server_error"

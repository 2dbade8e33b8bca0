"""The API's answers where DRF's views do not answer: JSON errors under /api/ for
requests that never reach a view (unknown URL, a body too large, a server error), and a
JSON parser that turns over-deep nesting into a 400.

Other paths keep Django's HTML error pages.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, parsers

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _json(message: Any, status: int) -> JsonResponse:
    return JsonResponse({"detail": str(message)}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _json(_("The request is too large."), 400)
    return _json(exceptions.ParseError.default_detail, 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return _json(exceptions.PermissionDenied.default_detail, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return _json(exceptions.NotFound.default_detail, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    return _json(exceptions.APIException.default_detail, 500)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a document nested too deeply for Python's parser (e.g.
    100 000 brackets) is a 400 like any malformed JSON, not a RecursionError (500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error: nested too deeply.")) from None

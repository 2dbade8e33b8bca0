"""The Content-Security-Policy header, and templates that can live with it.

The browser test (tests/browser/test_csp.py) shows the pages work under the policy; this
checks the header on pages and the API, and that no template brings back an inline script
or an inline event handler (which the policy would block, breaking the page).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(ROOT.glob("templates/**/*.html")) + sorted(ROOT.glob("*/templates/**/*.html"))


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.django_db
def test_pages_and_api_carry_a_policy_without_inline_scripts(client: Any, org1: Any) -> None:
    for url in ("/login/", "/api/v1/clients/"):
        response = client.get(url)
        policy = _directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    client.force_login(org1.therapist_a)
    response = client.get("/clients/")
    assert response.status_code == 200
    assert _directives(response["Content-Security-Policy"])["default-src"] == ["'self'"]


def test_templates_have_no_inline_script_or_event_handler() -> None:
    assert len(TEMPLATES) > 20  # the glob found the templates
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
    offenders = []
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        for pattern in (inline_script, handler):
            for match in pattern.finditer(text):
                # json_script renders <script type="application/json">: data, not code.
                if "application/json" not in match.group(0):
                    offenders.append(f"{path.relative_to(ROOT)}: {match.group(0)[:60]}")
    assert offenders == []

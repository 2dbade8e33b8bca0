"""gunicorn's access log without password-reset tokens (``gunicorn.conf.py``).

A link to choose a password (``/password/reset/<uid>/<token>/``, datapolicy.accounts)
is a credential for ``PASSWORD_RESET_TIMEOUT`` (three days) until used; the access log
line of its first request, and of a login page that got it as ``next=``, would keep it
for anyone who reads the logs. Every value of the access line (request line, path,
query, referer, headers, environ) has the token replaced by ``<token>``; the uid and the
rest of the line stay, so the log still shows that a link was opened.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

# "password/reset/<uid>/<token>" with "/" or its percent-encoding (a "next=" value);
# Django's own "set-password" placeholder is no token and stays.
_TOKEN = re.compile(
    r"(password(?:/|%2F)reset(?:/|%2F)[A-Za-z0-9_-]+(?:/|%2F))(?!set-password)[A-Za-z0-9_-]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1<token>", text)


class RedactingLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _reset_language() -> Iterator[None]:
    """Requests with the English cookie activate English in this thread (LocaleMiddleware
    does not undo it); later tests expect the Danish default."""
    yield
    translation.deactivate()

"""The developer tool that fills the Danish .po from locale/da/*.json (make messages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("fill_po", ROOT / "scripts" / "fill_po.py")
assert spec and spec.loader
fill_po = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fill_po)

PO = """msgid "Clients"
msgstr ""

msgid "Try again in %(minutes)s minute."
msgid_plural "Try again in %(minutes)s minutes."
msgstr[0] ""
msgstr[1] ""

msgid "%(n)s session"
msgid_plural "%(n)s sessions"
msgstr[0] "%(n)s samtale"
msgstr[1] "%(n)s samtaler"

msgid "Nobody translated this"
msgstr ""
"""


def test_singular_and_plural_entries_are_filled_and_kept() -> None:
    table = {
        "Clients": "Klienter",
        "Try again in %(minutes)s minute.": ["Prøv igen om %(minutes)s minut.", "… minutter."],
        "%(n)s session": ["wrong", "wrong"],  # an existing translation is kept
    }
    text, missing = fill_po.fill(PO, table)
    assert 'msgid "Clients"\nmsgstr "Klienter"' in text
    assert 'msgstr[0] "Prøv igen om %(minutes)s minut."\nmsgstr[1] "… minutter."' in text
    assert 'msgstr[0] "%(n)s samtale"\nmsgstr[1] "%(n)s samtaler"' in text
    assert missing == ["Nobody translated this"]
    # An untranslated plural without a list is reported.
    _text, missing = fill_po.fill(PO, {})
    assert "Try again in %(minutes)s minute." in missing

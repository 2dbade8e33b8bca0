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


def test_a_fuzzy_plural_guess_is_replaced_and_unflagged() -> None:
    """msgmerge guessed a new plural message from an old singular one ("#, fuzzy"); the
    guess was kept before, so the page showed the English (the handover's message)."""
    po = """#: clients/views.py:411
#, fuzzy, python-format
#| msgid "The episode now belongs to %(name)s."
msgid "%(n)s episode now belongs to %(name)s."
msgid_plural "%(n)s episodes now belong to %(name)s."
msgstr[0] "Forløbet hører nu til %(name)s."
msgstr[1] "Forløbet hører nu til "
"%(name)s."

msgid "Clients"
msgstr ""
"""
    forms = ["%(n)s forløb tilhører nu %(name)s.", "%(n)s forløb tilhører nu %(name)s."]
    text, missing = fill_po.fill(po, {"%(n)s episode now belongs to %(name)s.": forms})
    assert text.startswith(
        '#: clients/views.py:411\n#, python-format\nmsgid "%(n)s episode now belongs to'
    )
    assert (
        'msgstr[0] "%(n)s forløb tilhører nu %(name)s."\n'
        'msgstr[1] "%(n)s forløb tilhører nu %(name)s."\n\nmsgid "Clients"' in text
    )
    assert "fuzzy" not in text and "#|" not in text and missing == ["Clients"]
    # Without a translation in the table the guess stays as it was, still fuzzy.
    text, _missing = fill_po.fill(po, {})
    assert text == po

"""Fill translations in a .po file from a JSON dict {msgid: msgstr}.

Usage: python scripts/fill_po.py locale/da/LC_MESSAGES/django.po translations.json
A plural entry's translation is a list [singular, plural] under its singular msgid.
Fills empty msgstr entries and replaces fuzzy guesses (msgmerge's "#, fuzzy" matches,
plural ones too) with the given translation; existing confirmed translations are kept.
Multi-line msgids are handled. Developer tool, not used at run time.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _unquote(lines: list[str]) -> str:
    return "".join(json.loads(line) for line in lines)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _unfuzzied(comments: list[str]) -> list[str]:
    """An entry's comments without msgmerge's fuzzy flag and its previous msgid."""
    out = []
    for c in comments:
        if c.startswith("#|"):
            continue  # msgmerge's previous msgid of a fuzzy guess
        if c.startswith("#,"):
            flags = [f.strip() for f in c[2:].split(",") if f.strip() != "fuzzy"]
            if flags:
                out.append("#, " + ", ".join(flags))
            continue
        out.append(c)
    return out


def fill(po_text: str, table: dict[str, Any]) -> tuple[str, list[str]]:
    out: list[str] = []
    missing: list[str] = []
    comments: list[str] = []
    lines = po_text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            comments.append(line)
            i += 1
            continue
        if line.startswith("msgid "):
            block = [line[6:]]
            i += 1
            while i < len(lines) and lines[i].startswith('"'):
                block.append(lines[i])
                i += 1
            msgid = _unquote(block)
            fuzzy = any(c.startswith("#,") and "fuzzy" in c for c in comments)
            if i < len(lines) and lines[i].startswith("msgid_plural "):
                # Plural entries: filled from a JSON list [singular, plural] under the
                # singular msgid when still empty or a fuzzy guess; otherwise kept.
                forms = table.get(msgid)
                replace = fuzzy and isinstance(forms, list)
                out.extend(_unfuzzied(comments) if replace else comments)
                out.append("msgid " + block[0])
                out.extend(block[1:])
                while i < len(lines) and lines[i].strip():
                    if lines[i].startswith("msgstr[") and isinstance(forms, list):
                        empty = lines[i].endswith(' ""') and not (
                            i + 1 < len(lines) and lines[i + 1].startswith('"')
                        )
                        n = int(lines[i][7 : lines[i].index("]")])
                        if (empty or replace) and n < len(forms):
                            out.append(f"msgstr[{n}] " + _quote(forms[n]))
                            i += 1
                            while i < len(lines) and lines[i].startswith('"'):
                                i += 1  # the rest of a multi-line guess
                            continue
                    if lines[i] == 'msgstr[0] ""' and not isinstance(forms, list):
                        missing.append(msgid)
                    out.append(lines[i])
                    i += 1
                comments = []
                continue
            sblock: list[str] = []
            if i < len(lines) and lines[i].startswith("msgstr "):
                sblock = [lines[i][7:]]
                i += 1
                while i < len(lines) and lines[i].startswith('"'):
                    sblock.append(lines[i])
                    i += 1
            current = _unquote(sblock) if sblock else ""
            if msgid and (not current or fuzzy) and msgid in table:
                out.extend(_unfuzzied(comments))
                out.append("msgid " + block[0])
                out.extend(block[1:])
                out.append("msgstr " + _quote(table[msgid]))
            else:
                if msgid and (not current or fuzzy):
                    missing.append(msgid)
                out.extend(comments)
                out.append("msgid " + block[0])
                out.extend(block[1:])
                if sblock:
                    out.append("msgstr " + sblock[0])
                    out.extend(sblock[1:])
            comments = []
            continue
        out.extend(comments)
        comments = []
        out.append(line)
        i += 1
    out.extend(comments)
    return "\n".join(out) + "\n", missing


def main() -> int:
    po_path = sys.argv[1]
    table: dict[str, Any] = {}
    for json_path in sys.argv[2:]:
        with open(json_path, encoding="utf-8") as fh:
            table.update(json.load(fh))
    with open(po_path, encoding="utf-8") as fh:
        text, missing = fill(fh.read(), table)
    with open(po_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    for m in missing:
        print("untranslated:", m)
    return 0


if __name__ == "__main__":
    sys.exit(main())

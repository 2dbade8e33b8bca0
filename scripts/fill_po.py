"""Fill empty translations in a .po file from a JSON dict {msgid: msgstr}.

Usage: python scripts/fill_po.py locale/da/LC_MESSAGES/django.po translations.json
Only empty msgstr entries are filled; existing translations are kept. Multi-line msgids
are handled. Developer tool, not used at run time.
"""

from __future__ import annotations

import json
import sys


def _unquote(lines: list[str]) -> str:
    return "".join(json.loads(line) for line in lines)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def fill(po_text: str, table: dict[str, str]) -> tuple[str, list[str]]:
    out: list[str] = []
    missing: list[str] = []
    lines = po_text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("msgid "):
            block = [line[6:]]
            i += 1
            while i < len(lines) and lines[i].startswith('"'):
                block.append(lines[i])
                i += 1
            msgid = _unquote(block)
            out.append("msgid " + block[0])
            out.extend(block[1:])
            if i < len(lines) and lines[i].startswith("msgstr "):
                sblock = [lines[i][7:]]
                i += 1
                while i < len(lines) and lines[i].startswith('"'):
                    sblock.append(lines[i])
                    i += 1
                current = _unquote(sblock)
                if msgid and not current:
                    if msgid in table:
                        out.append("msgstr " + _quote(table[msgid]))
                        continue
                    missing.append(msgid)
                out.append("msgstr " + sblock[0])
                out.extend(sblock[1:])
            continue
        out.append(line)
        i += 1
    return "\n".join(out) + "\n", missing


def main() -> int:
    po_path, json_path = sys.argv[1], sys.argv[2]
    with open(json_path, encoding="utf-8") as fh:
        table = json.load(fh)
    with open(po_path, encoding="utf-8") as fh:
        text, missing = fill(fh.read(), table)
    with open(po_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    for m in missing:
        print("untranslated:", m)
    return 0


if __name__ == "__main__":
    sys.exit(main())

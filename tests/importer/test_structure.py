"""The fast reading of a quote-free file's structure (field counts and line numbers
counted over the bytes) must agree with the csv module's reading, which the importer
uses for every other file."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from measures.importer import _read_chunked, _read_rectangular, _structure_plain

ALPHABET = st.sampled_from(list("ab1 ,;\n.-æø"))


def _by_csv_module(text: str, sep: str) -> tuple[list[str], list[int], list[int]]:
    reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
    header = next(reader, [])
    counts = []
    starts = []
    previous = reader.line_num
    for row in reader:
        counts.append(len(row))
        starts.append(previous + 1)
        previous = reader.line_num
    return header, counts, starts


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, min_size=1, max_size=80), st.sampled_from([",", ";"]))
def test_the_fast_path_reads_like_the_csv_module(text: str, sep: str) -> None:
    fast = _structure_plain(text, sep)
    assert fast is not None
    header, counts, starts = fast
    assert (header, counts.tolist(), starts.tolist()) == _by_csv_module(text, sep)


def test_blank_lines_short_and_long_lines() -> None:
    text = "a,b,c\n\n1,2\n,,\n   \n1,2,3,4\n"
    header, counts, starts = _structure_plain(text, ",")  # type: ignore[misc]
    assert header == ["a", "b", "c"]
    assert counts.tolist() == [0, 2, 3, 1, 4]
    assert starts.tolist() == [2, 3, 4, 5, 6]


def test_quotes_carriage_returns_and_nul_take_the_csv_module() -> None:
    for text in ('a,b\n"1",2\n', "a,b\r\n1,2\r\n", "a,b\n1\x00,2\n"):
        assert _structure_plain(text, ",") is None


FIELD = st.text(st.sampled_from(list("aZ1 .,;-æøå/#nN")), max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([",", ";"]),
    st.integers(1, 4),
    st.lists(st.lists(FIELD, min_size=4, max_size=4), min_size=1, max_size=6),
)
def test_arrows_reader_reads_a_rectangular_file_like_pandas(
    sep: str, width: int, rows: list[list[str]]
) -> None:
    """The fast reader (every line a full record) gives the frame pandas' reader gives:
    the same text in every cell, nothing read as a number or a null ("nan", "N")."""
    names = [f"c{i}" for i in range(width)]
    cells = [[f.replace(sep, "") for f in row[:width]] for row in rows]
    text = sep.join(names) + "\n" + "".join(sep.join(r) + "\n" for r in cells)
    fast = _read_rectangular(text, sep, names)
    slow = _read_chunked(text, sep, names, len(cells), None)
    assert fast.astype(object).values.tolist() == slow.astype(object).values.tolist() == cells

"""retrieval/extract.py: every supported kind from real bytes, the decoding rules, and the two typed failures."""

from __future__ import annotations

import json

import pytest
from sample_files import make_docx, make_pdf, make_pptx

from offline_assistants.retrieval.extract import (
    InvalidFile,
    UnsupportedFile,
    decode_text,
    extract,
    is_supported,
)


def test_plain_markdown_and_code_come_back_as_they_are() -> None:
    md = "# Title\n\nSome *markdown* text.\n\n- item one\n- item two\n"
    assert extract(md.encode(), "notes.md") == md.strip()
    code = "def f(x):\n    return x * 2\n"
    for name in ["a.py", "a.go", "a.ts", "A.JAVA", "lib.rs", "main.cpp", "x.sh", "paper.tex", "Makefile"]:
        assert extract(code.encode(), name) == code.strip(), name


def test_line_endings_nuls_and_trailing_spaces_are_normalised() -> None:
    assert extract(b"one  \r\ntwo\rthree\x00\n", "a.txt") == "one\ntwo\nthree"


def test_json_is_reindented_so_chunks_can_break_between_values() -> None:
    value = {"name": "Zoë", "items": [1, 2, {"deep": "value"}]}
    text = extract(json.dumps(value, separators=(",", ":")).encode(), "data.json")
    assert json.loads(text) == value
    assert "\n" in text and "Zoë" in text  # indented, and not \u-escaped
    assert extract(b"{not json at all", "broken.json") == "{not json at all"  # still text worth indexing


def test_html_keeps_visible_text_and_drops_script_and_style() -> None:
    html = b"""<!doctype html><html><head><meta charset="utf-8"><title>The Page</title>
    <style>body { color: red }</style><script>var secret = "do not index";</script></head>
    <body><h1>Heading</h1><p>First &amp; foremost paragraph.</p><p>Second<br>line</p>
    <ul><li>apple</li><li>pear</li></ul><script>alert(1)</script><noscript>enable js</noscript></body></html>"""
    text = extract(html, "page.html")
    assert text.startswith("The Page")
    assert "First & foremost paragraph." in text
    assert "Second\nline" in text
    assert "apple\npear" in text.replace("\n\n", "\n")
    for hidden in ["secret", "color", "alert", "enable js"]:
        assert hidden not in text


def test_html_without_closing_head_keeps_the_body() -> None:
    assert "Body text" in extract(b"<html><head><title>T</title><body><p>Body text</p>", "x.htm")


def test_html_meta_charset_is_honoured() -> None:
    html = '<html><head><meta charset="iso-8859-1"></head><body>café</body></html>'.encode("latin-1")
    assert "café" in extract(html, "x.html")


def test_pdf_text_of_every_page() -> None:
    text = extract(make_pdf(["Hello from page one.", "And (parenthesised) page two."]), "doc.pdf")
    assert "Hello from page one." in text
    assert "(parenthesised) page two." in text
    assert text.index("page one") < text.index("page two")


def test_docx_paragraphs() -> None:
    text = extract(make_docx(["First paragraph of the report.", "Second one, with a comma."]), "report.docx")
    assert "First paragraph of the report." in text
    assert "Second one, with a comma." in text


def test_pptx_slides_in_numeric_order() -> None:
    slides = [[f"Slide {i} title", f"point of slide {i}"] for i in range(1, 12)]
    text = extract(make_pptx(slides), "deck.pptx")
    assert text.index("Slide 2 title") < text.index("Slide 10 title")  # 10 after 2, not after 1
    assert "point of slide 11" in text


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_decoding_by_bom_and_bomless_utf16(encoding: str) -> None:
    text = "Grüße, naïve café — 日本語 text\nsecond line"
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        assert not data.startswith((b"\xff\xfe", b"\xfe\xff"))  # no BOM: found by its zero bytes
    assert extract(data, "t.txt") == text


def test_utf16_with_bom_file() -> None:
    data = b"\xff\xfe" + "Notes in UTF-16 with a byte-order mark.\r\nLine two.".encode("utf-16-le")
    assert extract(data, "notes.txt") == "Notes in UTF-16 with a byte-order mark.\nLine two."


def test_fallbacks_for_legacy_single_byte_text() -> None:
    assert decode_text("smart “quotes” café".encode("cp1252")) == "smart “quotes” café"
    # 0x81 is undefined in cp1252: Latin-1 takes every byte.
    assert decode_text(b"caf\xe9 \x81") == "café \x81"
    assert decode_text(b"plain ascii") == "plain ascii"


def test_unsupported_types_raise_with_the_filename() -> None:
    for name in ["photo.png", "archive.zip", "old.doc", "sheet.xlsx", "noextension", "binary.exe"]:
        assert not is_supported(name)
        with pytest.raises(UnsupportedFile) as e:
            extract(b"whatever", name)
        assert e.value.filename == name and e.value.code == "unsupported_file"


@pytest.mark.parametrize(("data", "name"), [
    (b"", "empty.txt"),
    (b"   \n\t  \r\n", "blank.md"),
    (bytes(range(256)) * 20, "random.txt"),
    (b"%PDF-1.4 this is not really a pdf", "fake.pdf"),
    (make_pdf([""]), "scan.pdf"),
    (b"PK\x03\x04 not a zip", "broken.docx"),
    (make_pptx([]), "empty.pptx"),
    (b"<html><script>only()</script></html>", "script.html"),
])
def test_invalid_files_raise_invalid_file(data: bytes, name: str) -> None:
    with pytest.raises(InvalidFile) as e:
        extract(data, name)
    assert e.value.filename == name and e.value.code == "invalid_file" and e.value.reason


def test_a_zip_that_is_not_a_docx() -> None:
    with pytest.raises(InvalidFile, match="word/document.xml"):
        extract(make_pptx([["a slide"]]), "wrong.docx")

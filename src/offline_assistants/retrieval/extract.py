"""Turn an uploaded file's bytes into the plain text that file search indexes.

Which files are accepted follows OpenAI's file-search list (by extension, as the real API decides): text, Markdown,
TeX, HTML, JSON, PDF, DOCX, PPTX and source code. Legacy binary Word (.doc) is on OpenAI's list but needs a
converter we do not ship, so it is refused as `unsupported_file`, as are images, archives and spreadsheets.

Two failures, both carrying data rather than prose for the engine to map onto a vector-store file's `last_error`:

* `UnsupportedFile(filename)`: the type is not one we index (`code = "unsupported_file"`).
* `InvalidFile(filename, reason)`: the type is right but no text came out: a damaged PDF, a scanned PDF with no
  text layer, an empty file, binary bytes under a .txt name (`code = "invalid_file"`).

Text decoding (`decode_text`) goes: a byte-order mark first (UTF-8, UTF-16 and UTF-32, either endianness), then
strict UTF-8 (which covers ASCII), then BOM-less UTF-16 recognised by its pattern of zero bytes, then Windows-1252
(what "Latin-1" text from Windows editors really is), and finally ISO-8859-1, which maps every byte and so never
fails. Text that decodes but is mostly control characters is binary and raises InvalidFile.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import PurePath
from xml.etree import ElementTree


class ExtractionError(Exception):
    """Base of the two extraction failures; `code` is the API's `last_error.code`."""

    code: str = "invalid_file"

    def __init__(self, filename: str, message: str) -> None:
        super().__init__(message)
        self.filename = filename
        self.message = message


class UnsupportedFile(ExtractionError):
    code = "unsupported_file"

    def __init__(self, filename: str) -> None:
        super().__init__(filename, f"Files of this type are not supported for file search: {filename!r}.")


class InvalidFile(ExtractionError):
    code = "invalid_file"

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(filename, f"The file {filename!r} could not be parsed: {reason}.")
        self.reason = reason


# --- which files ------------------------------------------------------------------------------------------------

# Source code is indexed as text. OpenAI lists c cpp cs css go java js php py rb sh tex ts; the rest are common
# enough that refusing them would only surprise (all are plain text, so accepting them costs nothing).
CODE_EXTENSIONS = frozenset("""
    c h cc cpp cxx hpp hh hxx cs css scss sass less go java kt kts scala groovy js mjs cjs jsx ts tsx php py pyi rb
    sh bash zsh fish ps1 bat cmd rs swift m mm r jl lua pl pm dart ex exs erl hs ml mli fs fsx clj sql vue svelte
    proto graphql gql cmake mk gradle tf hcl nix zig v vhd vhdl asm s f f90 pas
""".split())
TEXT_EXTENSIONS = frozenset("""
    txt text md markdown mdx rst adoc asciidoc org tex bib log csv tsv yaml yml toml ini cfg conf properties env
    xml svg jsonl ndjson diff patch
""".split())
HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
# Files customarily named without an extension; anything else without one is refused as OpenAI does.
TEXT_FILENAMES = frozenset({"makefile", "dockerfile", "readme", "license", "changelog", "authors", "notice",
                            "gemfile", "rakefile", "procfile", "vagrantfile", "jenkinsfile"})

SUPPORTED_EXTENSIONS = CODE_EXTENSIONS | TEXT_EXTENSIONS | HTML_EXTENSIONS | {"json", "pdf", "docx", "pptx"}

# A DOCX/PPTX is a zip: a tiny upload can claim gigabytes of XML. Refuse to inflate more than this.
MAX_INFLATED_BYTES = 256 * 2**20


def extension(filename: str) -> str:
    """The lower-case extension without its dot ("" when there is none)."""
    return PurePath(filename).suffix.lower().lstrip(".")


def is_supported(filename: str) -> bool:
    ext = extension(filename)
    return ext in SUPPORTED_EXTENSIONS or (not ext and PurePath(filename).name.lower() in TEXT_FILENAMES)


def extract(data: bytes, filename: str) -> str:
    """The text of a file, chosen by its name's extension. Raises UnsupportedFile or InvalidFile."""
    if not is_supported(filename):
        raise UnsupportedFile(filename)
    ext = extension(filename)
    reader = _READERS.get(ext, _plain)
    text = reader(data, filename)
    # One normal form for every reader: Unix newlines, no NULs (SQLite FTS and the tokenizer both dislike them),
    # no trailing spaces at line ends (they only cost tokens).
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t]+\n", "\n", text).strip()
    if not text:
        raise InvalidFile(filename, "no text could be extracted")
    return text


# --- text decoding ----------------------------------------------------------------------------------------------

# Longest BOMs first: UTF-32-LE's BOM begins with UTF-16-LE's.
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _looks_utf16(data: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" for BOM-less UTF-16 of mostly Latin script: NULs fill one byte of most pairs."""
    if len(data) < 4 or len(data) % 2:
        return None
    sample = data[:4096]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    pairs = len(sample) // 2
    if odd > 0.4 * pairs and even < 0.05 * pairs:
        return "utf-16-le"
    if even > 0.4 * pairs and odd < 0.05 * pairs:
        return "utf-16-be"
    return None


def decode_text(data: bytes, filename: str = "") -> str:
    """Bytes to str by the rules in the module docstring. Raises InvalidFile for binary content."""
    text: str | None = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding)
            except UnicodeDecodeError as e:
                raise InvalidFile(filename, f"not valid {encoding} after its byte-order mark") from e
            break
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            utf16 = _looks_utf16(data)
            if utf16:
                try:
                    text = data.decode(utf16)
                except UnicodeDecodeError:
                    text = None
            if text is None:
                try:
                    # cp1252 leaves 5 bytes undefined; a file using them is not cp1252, and Latin-1 takes all.
                    text = data.decode("cp1252")
                except UnicodeDecodeError:
                    text = data.decode("latin-1")
    if _is_binary(text):
        raise InvalidFile(filename, "binary content, not text")
    return text


def _is_binary(text: str) -> bool:
    # Text has tabs, newlines and form feeds; binary has NULs and other C0 controls everywhere. UTF-8 decoding of
    # random bytes fails early, so what reaches here is mostly Latin-1-decoded binary: judge a prefix.
    sample = text[:8192]
    if not sample:
        return False
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f\v")
    return controls > 0.1 * len(sample)


# --- readers ----------------------------------------------------------------------------------------------------


def _plain(data: bytes, filename: str) -> str:
    return decode_text(data, filename)


def _json(data: bytes, filename: str) -> str:
    text = decode_text(data, filename)
    try:
        value = json.loads(text)
    except ValueError:
        return text  # not JSON after all: still text worth searching
    # Re-indented so chunk boundaries can fall between values: minified JSON is one line without a space in it.
    return json.dumps(value, indent=1, ensure_ascii=False)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def _html(data: bytes, filename: str) -> str:
    text: str | None = None
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        # A declared charset is the author's word; a BOM (handled by decode_text) outranks it, as in browsers.
        declared = _META_CHARSET.search(data[:4096])
        if declared:
            try:
                text = data.decode(declared.group(1).decode("ascii"))
            except (LookupError, UnicodeDecodeError):
                text = None
    if text is None:
        text = decode_text(data, filename)
    parser = _TextOfHTML()
    parser.feed(text)
    parser.close()
    return parser.text()


class _TextOfHTML(HTMLParser):
    """Visible text of an HTML page; block elements become line breaks so sentences and list items stay apart."""

    # Not "head": pages often omit </head>, and skipping to a close tag that never comes would drop the body.
    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})
    BLOCK = frozenset({
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th", "title", "tr", "ul",
    })

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip = 0  # depth inside elements whose text is not shown
        self._pre = 0
        self._title: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.SKIP:
            self._skip += 1
        if tag == "pre":
            self._pre += 1
        if tag in self.BLOCK:
            self._parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCK:  # <br/>, <hr/>: no end tag follows, so no skip depth to open
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            self._parts.append("\n")
        elif tag in self.SKIP and self._skip:
            self._skip -= 1
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag in self.BLOCK:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)  # put first, once, whatever its place in the page
        elif not self._skip:
            self._parts.append(data if self._pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        title = " ".join("".join(self._title).split())
        body = "".join(self._parts)
        lines = [line.strip() if not self._pre else line.rstrip() for line in body.split("\n")]
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        return f"{title}\n\n{body}" if title and not body.startswith(title) else body


def _pdf(data: bytes, filename: str) -> str:
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many "encrypted" PDFs have an empty user password
            raise InvalidFile(filename, "the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except InvalidFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
            RecursionError, NotImplementedError) as e:
        # pypdf signals damage with its own errors and, on odd files, with plain built-in ones.
        raise InvalidFile(filename, f"unreadable PDF ({type(e).__name__}: {e})") from e
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise InvalidFile(filename, "the PDF has no text layer (a scan needs OCR, which we do not do)")
    return text


def _open_zip(data: bytes, filename: str, kind: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise InvalidFile(filename, f"not a {kind} file (not a zip archive)") from e
    if sum(info.file_size for info in archive.infolist()) > MAX_INFLATED_BYTES:
        raise InvalidFile(filename, f"the {kind} inflates to more than {MAX_INFLATED_BYTES // 2**20} MiB")
    return archive


def _docx(data: bytes, filename: str) -> str:
    import docx2txt

    _open_zip(data, filename, "DOCX").close()  # the bomb check; docx2txt opens it again itself
    try:
        text: str = docx2txt.process(io.BytesIO(data))
    except KeyError as e:
        raise InvalidFile(filename, "not a DOCX file (no word/document.xml)") from e
    except (zipfile.BadZipFile, ElementTree.ParseError, ValueError, OSError) as e:
        raise InvalidFile(filename, f"unreadable DOCX ({type(e).__name__}: {e})") from e
    return text


_A_NS = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def _pptx(data: bytes, filename: str) -> str:
    # PPTX is zipped XML: slide N's text runs are <a:t> elements, its paragraphs <a:p>. Slide order is by number.
    archive = _open_zip(data, filename, "PPTX")
    with archive:
        slides = [n for n in archive.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)]
        if not slides:
            raise InvalidFile(filename, "not a PPTX file (no slides)")
        slides.sort(key=lambda n: int(re.sub(r"\D", "", n.rsplit("/", 1)[1])))
        out = []
        for name in slides:
            try:
                root = ElementTree.fromstring(archive.read(name))
            except (ElementTree.ParseError, zipfile.BadZipFile, OSError) as e:
                raise InvalidFile(filename, f"unreadable slide {name} ({type(e).__name__})") from e
            paragraphs = ["".join(t.text or "" for t in p.iter(f"{_A_NS}t")) for p in root.iter(f"{_A_NS}p")]
            out.append("\n".join(p for p in paragraphs if p.strip()))
    return "\n\n".join(s for s in out if s)


_READERS: dict[str, Callable[[bytes, str], str]] = {
    "json": _json,
    "pdf": _pdf,
    "docx": _docx,
    "pptx": _pptx,
    **dict.fromkeys(HTML_EXTENSIONS, _html),
}

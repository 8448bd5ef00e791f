"""Loaders: every format read from a real file built here, and every bad input refused clearly."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.core.errors import DocumentError
from assistant.core.types import SECTION_SEPARATOR, LoadedDocument
from ingestion.loaders import DEFAULT_MAX_BYTES, LOADERS, SUPPORTED_SUFFIXES, load_document
from ingestion.loaders import pdf as pdf_loader


def check_layout(doc: LoadedDocument) -> None:
    """The document's text is its sections joined, and each section sits at its offset."""
    assert doc.text == SECTION_SEPARATOR.join(s.text for s in doc.sections)
    for section in doc.sections:
        assert section.text.strip() == section.text != ""
        assert doc.text[section.start : section.start + len(section.text)] == section.text


def by_heading(doc: LoadedDocument) -> dict[str | None, str]:
    return {s.heading: s.text for s in doc.sections}


def problem(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    with pytest.raises(DocumentError) as caught:
        load_document(path, max_bytes=max_bytes)
    assert caught.value.source == str(path.resolve())
    assert caught.value.problem in str(caught.value)
    return caught.value.problem


def pdf_bytes(pages: list[str], title: str | None = None, compress: bool = False) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pageCompression=int(compress))
    if title:
        pdf.setTitle(title)
    for text in pages:
        pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def encrypted(data: bytes, user_password: str) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password, owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- formats -------------------------------------------------------------------------------


def test_text_file_is_one_section_titled_by_its_name(tmp_path: Path) -> None:
    path = tmp_path / "release-notes.txt"
    path.write_text("\n  First line.\r\nSecond line.\n\n", encoding="utf-8")

    doc = load_document(path)

    check_layout(doc)
    assert doc.title == "release-notes"
    assert doc.source == str(path.resolve())
    assert doc.text == "First line.\nSecond line."
    assert doc.sections[0].page is None and doc.sections[0].heading is None
    assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_source_can_be_given_and_suffix_case_does_not_matter(tmp_path: Path) -> None:
    path = tmp_path / "NOTES.TXT"
    path.write_text("hello", encoding="utf-8")

    assert load_document(path, source="docs/notes.txt").source == "docs/notes.txt"


def test_markdown_sections_follow_headings_not_hashes_in_code(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "Intro before any heading.\n\n"
        "# Install\n\n"
        "Get it:\n\n"
        "```bash\n# this is a shell comment, not a heading\npip install lorag\n```\n\n"
        "## Linux\n\napt install lorag\n\n"
        "Setext heading\n--------------\n\nUnder a setext heading.\n\n"
        "> # a heading inside a quote stays text\n\n"
        "# Use *it*\n\nAsk a question.\n",
        encoding="utf-8",
    )

    doc = load_document(path)

    check_layout(doc)
    assert doc.title == "Install"
    sections = by_heading(doc)
    assert list(sections) == [
        None,
        "Install",
        "Install > Linux",
        "Install > Setext heading",
        "Use it",
    ]
    assert sections[None] == "Intro before any heading."
    assert "# this is a shell comment, not a heading" in sections["Install"]
    assert sections["Install"].endswith("```")
    assert "# a heading inside a quote stays text" in sections["Install > Setext heading"]
    assert "Linux" not in sections["Install > Linux"]  # the heading is a field, not text


def test_markdown_front_matter_gives_the_title_and_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "post.markdown"
    path.write_text('---\ntitle: "Field notes"\ntags: [a]\n---\n\nBody text.\n', encoding="utf-8")

    doc = load_document(path)

    assert doc.title == "Field notes"
    assert doc.text == "Body text."


def test_rst_sections_and_titles_without_file_inclusion(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    path = tmp_path / "manual.rst"
    path.write_text(
        "Manual\n======\n\nWelcome text.\n\n"
        "Install\n-------\n\nRun *this* command.\n\n.. note:: Needs Python.\n\n"
        "Linux\n~~~~~\n\nUse apt.\n\n"
        f"Usage\n-----\n\nAsk away. :nosuchrole:`x`\n\n.. include:: {secret}\n\n.. a comment\n",
        encoding="utf-8",
    )

    doc = load_document(path)

    check_layout(doc)
    assert doc.title == "Manual"
    sections = by_heading(doc)
    assert list(sections) == [
        "Manual",
        "Manual > Install",
        "Manual > Install > Linux",
        "Manual > Usage",
    ]
    assert sections["Manual > Install"] == "Run this command.\n\nNeeds Python."
    assert "TOP SECRET" not in doc.text
    assert "a comment" not in doc.text


def test_html_visible_text_by_heading(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<!doctype html><html><head><title> The  Handbook </title>"
        "<style>p { color: red }</style><script>var tracking = 1;</script></head><body>"
        "<nav>Home | About</nav><p>Intro   text\nover lines.</p>"
        "<h1>Install</h1><p>Step <b>one</b>.<br>Step two.</p><!-- hidden comment -->"
        "<h2>Linux</h2><pre>make\n    install</pre>"
        "<h1>Usage</h1><ul><li>ask</li><li>cite</li></ul><script>more()</script>"
        "</body></html>",
        encoding="utf-8",
    )

    doc = load_document(path)

    check_layout(doc)
    assert doc.title == "The Handbook"
    assert by_heading(doc) == {
        None: "Intro text over lines.",
        "Install": "Step one.\nStep two.",
        "Install > Linux": "make\n    install",
        "Usage": "ask\n\ncite",
    }
    for hidden in ("tracking", "color", "Home", "hidden comment", "more()"):
        assert hidden not in doc.text


def test_html_title_falls_back_to_first_h1(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<h2>Aside</h2><p>a</p><h1>Main Topic</h1><p>b</p>", encoding="utf-8")

    assert load_document(path).title == "Main Topic"


def test_pdf_has_one_section_per_page(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf_bytes(["Alpha page text", "Beta page text"], title="Quarterly Report"))

    doc = load_document(path)

    check_layout(doc)
    assert doc.title == "Quarterly Report"
    assert [(s.page, s.text) for s in doc.sections] == [
        (1, "Alpha page text"),
        (2, "Beta page text"),
    ]


def test_pdf_without_a_real_title_uses_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "scan-2024.pdf"
    path.write_bytes(pdf_bytes(["Some text"]))  # reportlab's default title is "untitled"

    assert load_document(path).title == "scan-2024"


def test_pdf_blank_page_is_skipped_but_numbering_kept(tmp_path: Path) -> None:
    path = tmp_path / "gaps.pdf"
    path.write_bytes(pdf_bytes(["First", "", "Third"]))

    assert [s.page for s in load_document(path).sections] == [1, 3]


def test_pdf_encrypted_without_a_user_password_opens(tmp_path: Path) -> None:
    path = tmp_path / "restricted.pdf"
    path.write_bytes(encrypted(pdf_bytes(["Readable anyway"]), user_password=""))

    assert load_document(path).text == "Readable anyway"


def test_docx_sections_at_heading_styles(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Operations Guide", 0)  # the "Title" style
    document.add_paragraph("Read this first.")
    document.add_heading("Install", 1)
    document.add_paragraph("Step one.")
    document.add_paragraph("")
    document.add_paragraph("Step two.")
    document.add_heading("Linux", 2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "distro", "command"
    table.cell(1, 0).text, table.cell(1, 1).text = "debian", "apt"
    document.add_heading("Usage", 1)
    document.add_paragraph("Ask.")
    path = tmp_path / "ops.docx"
    document.save(str(path))

    doc = load_document(path)

    check_layout(doc)
    assert doc.title == "Operations Guide"
    assert by_heading(doc) == {
        None: "Read this first.",
        "Install": "Step one.\n\nStep two.",
        "Install > Linux": "distro | command\ndebian | apt",
        "Usage": "Ask.",
    }


def test_docx_core_title_wins(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "From Properties"
    document.add_heading("Heading", 1)
    document.add_paragraph("Body.")
    path = tmp_path / "props.docx"
    document.save(str(path))

    assert load_document(path).title == "From Properties"


# --- text decoding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "\ufeffcafé ünïcode".encode(),
        "\ufeffcafé ünïcode".encode("utf-16-le"),
        "\ufeffcafé ünïcode".encode("utf-16-be"),
    ],
    ids=["utf-8-bom", "utf-16-le-bom", "utf-16-be-bom"],
)
def test_byte_order_marks_are_honoured(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(data)

    assert load_document(path).text == "café ünïcode"


def test_invalid_utf8_names_the_byte_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes("# Café\n\nnaïve".encode("latin-1"))

    assert problem(path) == (
        "is not valid UTF-8 (invalid byte 0xe9 at offset 5); convert it to UTF-8"
    )


def test_nul_bytes_mean_binary(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    assert problem(path) == "looks like a binary file, not text"


# --- bad inputs ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert problem(tmp_path / "nope.txt") == "file not found"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.md"
    folder.mkdir()

    assert problem(folder) == "is a directory, not a file"


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")

    assert problem(path) == "file is empty"


@pytest.mark.parametrize("suffix", [".txt", ".md", ".rst", ".html"])
def test_whitespace_only(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"blank{suffix}"
    path.write_text(" \n\t\n   \n", encoding="utf-8")

    assert problem(path) == "no text could be extracted"


def test_markup_without_text(tmp_path: Path) -> None:
    path = tmp_path / "shell.html"
    path.write_text("<html><head><title>T</title></head><body><script>x()</script></body></html>")

    assert problem(path) == "no text could be extracted"


def test_unsupported_suffix_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("text", encoding="utf-8")

    assert (
        problem(path)
        == f"unsupported file type '.xyz' (supported: {', '.join(SUPPORTED_SUFFIXES)})"
    )


def test_no_suffix(tmp_path: Path) -> None:
    path = tmp_path / "README"
    path.write_text("text", encoding="utf-8")

    assert problem(path).startswith("has no file extension (supported: .docx, ")


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * (3 * 1024 * 1024))

    assert problem(path, max_bytes=2 * 1024 * 1024) == "is 3 MB, over the limit of 2 MB"
    assert problem(path, max_bytes=1000) == "is 3 MB, over the limit of 0.000954 MB"
    assert load_document(path, max_bytes=3 * 1024 * 1024).text.startswith("aaa")
    just_over = 3 * 1024 * 1024 - 1  # both read "3 MB": the sizes are given in bytes
    assert problem(path, max_bytes=just_over) == (
        "is 3,145,728 bytes, over the limit of 3,145,727 bytes"
    )


def test_corrupt_pdf(tmp_path: Path) -> None:
    data = pdf_bytes(["Alpha", "Beta"])
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])

    assert problem(path).startswith("is not a readable PDF: ")


def test_pdf_suffix_on_something_else(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("just some text", encoding="utf-8")

    assert problem(path) == "is not a readable PDF: it has no PDF header"


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted(pdf_bytes(["Secret"]), user_password="hunter2"))

    assert problem(path).startswith("is encrypted (password-protected)")


def test_scanned_pdf_without_text_layer(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for _ in range(2):
        pdf.rect(72, 72, 300, 500, fill=1)  # a picture of a page, no text
        pdf.showPage()
    pdf.save()
    path = tmp_path / "scan.pdf"
    path.write_bytes(buffer.getvalue())

    assert problem(path).startswith("has no text layer (scanned?)")


@pytest.mark.parametrize(
    "data", [b"PK\x03\x04 not really a zip", b"plain text"], ids=["broken-zip", "not-zip"]
)
def test_corrupt_docx(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(data)

    assert problem(path).startswith("is not a readable Word (.docx) file: ")


def test_a_parsers_own_error_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(data: bytes, source: str) -> None:
        raise ValueError("parser exploded")

    monkeypatch.setitem(LOADERS, ".txt", explode)
    path = tmp_path / "a.txt"
    path.write_text("text", encoding="utf-8")

    assert problem(path) == "could not be parsed as .txt: parser exploded"


# --- the package itself --------------------------------------------------------------------


def test_registry_covers_every_format() -> None:
    expected = {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx"}
    assert set(LOADERS) == set(SUPPORTED_SUFFIXES) == expected
    assert list(SUPPORTED_SUFFIXES) == sorted(SUPPORTED_SUFFIXES)


def test_importing_the_loaders_imports_no_parser() -> None:
    heavy = ["pypdf", "docx", "bs4", "docutils", "markdown_it", "langchain_text_splitters"]
    code = (
        "import sys, ingestion.loaders, ingestion.chunking; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_docx_that_unpacks_to_hundreds_of_megabytes_is_refused_unread(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b" " * (300 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024  # a few hundred KiB on disk
    assert problem(path) == (
        "unpacks to 300 MB, over the limit of 256 MB for a Word file (a decompression bomb?)"
    )


def test_html_nested_a_hundred_thousand_deep_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text("<div>" * 100_000 + "deep text" + "</div>" * 100_000, encoding="utf-8")
    assert problem(path) == "nests its elements too deep to be read"


def test_a_pdf_of_ten_thousand_pages_loads_every_page(tmp_path: Path) -> None:
    path = tmp_path / "manual.pdf"
    path.write_bytes(pdf_bytes([f"Page {n}: pier {n % 9} opens at dawn." for n in range(10_000)]))
    doc = load_document(path)
    assert [section.page for section in doc.sections] == list(range(1, 10_001))
    assert doc.sections[-1].text.strip() == "Page 9999: pier 0 opens at dawn."


def test_a_pdf_over_the_page_limit_is_refused_before_its_pages_are_read(tmp_path: Path) -> None:
    path = tmp_path / "endless.pdf"
    path.write_bytes(pdf_bytes(["x"] * (pdf_loader.MAX_PAGES + 1)))
    assert problem(path) == "has 20,001 pages, over the limit of 20,000 pages: split it"


def test_a_pdf_whose_text_unpacks_past_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the real limit, 256 M characters, takes minutes to reach; the check is the same
    monkeypatch.setattr(pdf_loader, "MAX_TEXT_CHARS", 3 * 1024 * 1024)
    path = tmp_path / "bomb.pdf"
    path.write_bytes(pdf_bytes(["word " * 2400] * 400, compress=True))
    assert path.stat().st_size < 1024 * 1024
    assert problem(path).startswith("unpacks to over 3 M characters of text by page ")

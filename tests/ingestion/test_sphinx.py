"""Sphinx documentation read by the rst loader: the text of Sphinx's directives and roles is kept
(object signatures and glossary terms head their own sections), nothing is printed, plain
docutils is left as it was, and a page with truly no text still fails clearly. A small tree is
ingested with the real pipeline and tiny models, and its facts are found under their
signatures."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from assistant.core.errors import DocumentError
from assistant.core.settings import Settings
from assistant.runtime import Runtime
from ingestion.loaders import load_document
from tests.fixtures.sphinx_docs import FACTS, HEADINGS, write_sphinx_docs
from tests.ingestion.test_loaders import by_heading, check_layout

PAGE = """\
Lists
=====

Join with :func:`os.path.join`, :c:func:`PyList_New`, :func:`~os.path.split`,
:meth:`!str.upper`, :term:`environment`, :ref:`the label text <some-target>`,
:ref:`bare-label` and :index:`indexed word`; *emphasis* stays docutils'.

.. c:function:: PyObject* PyList_New(Py_ssize_t len)
   :no-index:

   Return a new list.

   .. versionadded:: 3.2

Back in Lists.

.. py:class:: Spam(eggs)
              Spam()

   A spam.

   .. py:method:: fry(minutes)

      Fry it.

   .. deprecated:: 3.4
      Use ham.

.. code-block:: python
   :caption: An example
   :emphasize-lines: 1

   x = {"a": 1}

.. toctree::
   :maxdepth: 2

   intro

.. seealso:: Module :mod:`zipfile`

   The zipfile page.

.. only:: html

   Only in HTML.

.. highlight:: python

Glossary
--------

.. glossary::

   source directory
   source dir
      The folder with the sources.

   .. a comment
      in the glossary

   builder
      Writes the output.
"""


def test_directives_and_roles_keep_their_text(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lists.rst"
    path.write_text(PAGE, encoding="utf-8")

    doc = load_document(path)

    check_layout(doc)
    assert doc.title == "Lists"
    assert [(s.heading, s.text) for s in doc.sections] == [
        (
            "Lists",
            "Join with os.path.join, PyList_New, os.path.split,\nstr.upper, environment, "
            "the label text,\nbare-label and indexed word; emphasis stays docutils'.",
        ),
        (
            "Lists > PyObject* PyList_New(Py_ssize_t len)",
            "Return a new list.\n\nAdded in version 3.2.",
        ),
        ("Lists", "Back in Lists."),
        ("Lists > Spam(eggs); Spam()", "A spam."),
        ("Lists > Spam(eggs); Spam() > fry(minutes)", "Fry it."),
        ("Lists > Spam(eggs); Spam()", "Deprecated since version 3.4: Use ham."),
        (
            "Lists",
            'An example\n\nx = {"a": 1}\n\nModule zipfile\n\nThe zipfile page.\n\nOnly in HTML.',
        ),
        ("Lists > Glossary > source directory, source dir", "The folder with the sources."),
        ("Lists > Glossary > builder", "Writes the output."),
    ]
    assert "comment" not in doc.text and "intro" not in doc.text
    assert capfd.readouterr() == ("", "")  # no docutils message reaches the terminal


def test_a_sphinx_tree_loads_page_by_page(tmp_path: Path) -> None:
    root = write_sphinx_docs(tmp_path / "docs")

    for name, fact in FACTS.items():
        doc = load_document(root / name)
        check_layout(doc)
        assert by_heading(doc)[HEADINGS[name]] == fact
    assert load_document(root / "glossary.rst").title == "glossary"  # no section: the file name
    assert load_document(root / "c-api" / "list.rst").title == "List Objects"


def test_plain_docutils_is_left_as_it_was(tmp_path: Path) -> None:
    from docutils.core import publish_doctree

    path = tmp_path / "api.rst"
    path.write_text(".. c:function:: int f(void)\n\n   Does f.\n\nSee :func:`f`.\n")
    load_document(path)

    settings = {"report_level": 5, "warning_stream": io.StringIO()}
    tree = publish_doctree(path.read_text(), settings_overrides=settings).pformat()
    assert 'Unknown directive type "c:function"' in tree
    assert 'Unknown interpreted text role "func"' in tree


def test_a_page_of_comments_targets_and_settings_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.rst"
    path.write_text(
        ".. a comment\n   over two lines\n\n.. _a-label:\n\n.. highlight:: python\n\n..\n",
        encoding="utf-8",
    )

    with pytest.raises(DocumentError) as caught:
        load_document(path)
    assert caught.value.problem == "no text could be extracted"


def test_an_ingested_sphinx_tree_is_found_under_its_signatures(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    root = write_sphinx_docs(tmp_path / "docs")
    runtime = Runtime(tiny_settings)
    try:
        report = runtime.ingestor("docs").ingest([root])
        assert report.ok and len(report.added) == len(FACTS), report.failed
        questions = {
            "glossary.rst": "marmalade",
            "c-api/list.rst": "pelican",
            "faq/programming.rst": "zeppelin",
        }
        for name, word in questions.items():
            best = runtime.engine.retrieve(f"Where is the {word}?", "docs", top_k=1)[0].chunk
            assert best.source == str((root / name).resolve())
            assert best.heading == HEADINGS[name]
            assert word in best.text
    finally:
        runtime.close()

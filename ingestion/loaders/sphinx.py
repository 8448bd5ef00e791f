"""A docutils parser that reads Sphinx's markup, so the rst loader keeps its text.

Plain docutils turns every directive and role it does not know (``.. glossary::``,
``.. c:function::``, ``:func:`x```) into an error and drops its text. :class:`SphinxParser`
runs them instead, without Sphinx:

- object descriptions (``.. py:function:: spam(eggs)``, ``.. c:function:: ...``: any
  ``domain:name``, the default domain's ``function``, ``class``, ``method``, …, the std domain's
  ``option``, ``envvar``, …, and ``auto…``) and glossary entries become :class:`Description`
  nodes: the signatures (or the terms) are the heading, the content is the text under it
  (``.. class::`` too, as Sphinx reads it, not docutils' class-attribute directive);
- ``versionadded``, ``versionchanged``, ``deprecated`` and ``versionremoved`` keep their text
  after Sphinx's words ("Added in version 3.2: ...");
- ``code-block``/``sourcecode`` (with Sphinx's options, which docutils refuses) and the doctest
  directives keep their code, after its ``:caption:``;
- directives that only steer Sphinx (``toctree``, ``index``, ``highlight``, ``testsetup``, …)
  hold no text; ``only`` and ``ifconfig`` keep their content, not their condition;
- any other unknown directive (``.. seealso:: x``, ``.. tab:: Linux``) keeps its argument as a
  paragraph and its content parsed as reStructuredText;
- a role docutils does not implement keeps its text as Sphinx shows it: the explicit title of
  ``:ref:`Label text <target>``` ("Label text"), else the target without Sphinx's ``!`` and
  ``~`` prefixes (``:func:`~os.path.join``` is "os.path.join", the full name).

Directive options are accepted and ignored. Nothing is registered with docutils: the parser
brings its own state classes and inliner (the customisation docutils documents for
``Parser``), so other docutils parses in the process are not changed.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from docutils import nodes, utils
from docutils.parsers.rst import Directive, Parser, directives, roles, states
from docutils.statemachine import StringList


class Description(nodes.General, nodes.Element):
    """A described object or a glossary entry: ``node["heading"]`` (its signatures or terms,
    possibly empty) heads the text of its children."""


class _AnyOption(dict[str, Any]):
    """An option spec that takes every option, as a string: Sphinx's options are ignored.

    It holds docutils' common options, so it is never empty (docutils reads an empty spec as
    "no options").
    """

    def __missing__(self, name: str) -> Any:
        return directives.unchanged


_ANY_OPTION = _AnyOption({"class": directives.class_option, "name": directives.unchanged})


class _Describe(Directive):
    """``.. py:function:: spam(eggs)``: the signatures (one a line, joined by "; ") head the
    parsed content."""

    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = _ANY_OPTION

    def run(self) -> list[nodes.Node]:
        lines = self.arguments[0].splitlines() if self.arguments else []
        node = Description(self.block_text, heading="; ".join(s.strip() for s in lines))
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


class _Glossary(Directive):
    """``.. glossary::``: each entry (term lines, then an indented definition) is a
    :class:`Description` headed by its terms, joined by ", "."""

    has_content = True
    option_spec = _ANY_OPTION

    def run(self) -> list[nodes.Node]:
        entries: list[nodes.Node] = []
        terms: list[str] = []
        index = 0
        while index < len(self.content):
            line = self.content[index]
            if line.startswith(".. ") or line == "..":  # a comment and its indented lines
                index += 1 + len(self.content.get_indented(index + 1)[0])
            elif not line.strip():
                index += 1
            elif not line[0].isspace():
                terms.append(self._term(line, index))
                index += 1
            else:
                definition = self.content.get_indented(index)[0]
                entries.append(self._entry(terms, definition, index))
                terms = []
                index += len(definition)
        if terms:
            entries.append(self._entry(terms, StringList(), index))
        return entries

    def _term(self, line: str, index: int) -> str:
        inline, _ = self.state.inline_text(line.strip(), self.content_offset + index + 1)
        return "".join(node.astext() for node in inline)

    def _entry(self, terms: list[str], definition: StringList, index: int) -> Description:
        node = Description(heading=", ".join(terms))
        self.state.nested_parse(definition, self.content_offset + index, node)
        return node


_VERSION_WORDS = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
    "versionremoved": "Removed in version",
}


class _VersionChange(Directive):
    """``.. versionadded:: 3.2 The eggs.``: "Added in version 3.2: The eggs." (the words go
    before the first paragraph of the explanation and content, or stand alone)."""

    required_arguments = 1
    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = _ANY_OPTION

    def run(self) -> list[nodes.Node]:
        words = f"{_VERSION_WORDS[self.name.lower()]} {self.arguments[0]}"
        body = nodes.Element()
        messages: list[nodes.Node] = []
        if len(self.arguments) > 1:
            inline, messages = self.state.inline_text(self.arguments[1], self.lineno)
            body += nodes.paragraph(self.arguments[1], "", *inline)
        self.state.nested_parse(self.content, self.content_offset, body)
        first = body.children[0] if body.children else None
        if isinstance(first, nodes.paragraph):
            first.insert(0, nodes.Text(f"{words}: "))
        else:
            body.insert(0, nodes.paragraph("", f"{words}." if first is None else f"{words}:"))
        return [*body.children, *messages]


class _Code(Directive):
    """``.. code-block:: python`` with any options: the ``:caption:``, then the code."""

    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = _ANY_OPTION

    def run(self) -> list[nodes.Node]:
        code = "\n".join(self.content)
        caption = self.options.get("caption")
        return [
            *([nodes.paragraph(caption, caption)] if caption else []),
            nodes.literal_block(code, code),
        ]


class _Silent(Directive):
    """A directive that only steers Sphinx (a table of contents, an index entry): no text."""

    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = _ANY_OPTION

    def run(self) -> list[nodes.Node]:
        return []


class _Unknown(Directive):
    """Any other directive: its argument as a paragraph, then its content parsed."""

    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = _ANY_OPTION
    keeps_argument: ClassVar[bool] = True

    def run(self) -> list[nodes.Node]:
        body = nodes.Element()
        messages: list[nodes.Node] = []
        if self.arguments and self.keeps_argument:
            inline, messages = self.state.inline_text(self.arguments[0], self.lineno)
            body += nodes.paragraph(self.arguments[0], "", *inline)
        self.state.nested_parse(self.content, self.content_offset, body)
        return [*body.children, *messages]


class _Conditional(_Unknown):
    """``.. only:: html``, ``.. ifconfig:: cond``: the content; the condition is not text."""

    keeps_argument = False


_DEFAULT_DOMAIN_OBJECTS = (  # Python's, then the std domain's
    "function", "data", "class", "exception", "method", "classmethod", "staticmethod",
    "attribute", "property", "type", "module", "currentmodule", "decorator", "decoratormethod",
    "program", "option", "cmdoption", "envvar", "describe", "object",
)  # fmt: skip
_STEERING = (
    "toctree", "index", "highlight", "default-domain", "literalinclude", "tabularcolumns",
    "sectionauthor", "moduleauthor", "codeauthor", "testsetup", "testcleanup",
)  # fmt: skip
_SPHINX_DIRECTIVES: dict[str, type[Directive]] = {
    "glossary": _Glossary,
    **dict.fromkeys(_VERSION_WORDS, _VersionChange),
    **dict.fromkeys(("code-block", "sourcecode", "doctest", "testcode", "testoutput"), _Code),
    **dict.fromkeys(("only", "ifconfig"), _Conditional),
    **dict.fromkeys(_STEERING, _Silent),
    **dict.fromkeys(_DEFAULT_DOMAIN_OBJECTS, _Describe),
}


def sphinx_directive(name: str, docutils_directive: type[Directive] | None) -> type[Directive]:
    """The class that runs directive ``name``: Sphinx's reading where it differs from docutils'
    (``class``, ``code-block``), else docutils' own, else an object description for
    ``domain:name`` and ``auto…`` names, else the generic one that keeps all text."""
    name = name.lower()
    if name in _SPHINX_DIRECTIVES:
        return _SPHINX_DIRECTIVES[name]
    if docutils_directive is not None:
        return docutils_directive
    return _Describe if ":" in name or name.startswith("auto") else _Unknown


_EXPLICIT_TITLE = re.compile(r"^(.+?)\s*(?<!\x00)<(.*?)>$", re.DOTALL)


def sphinx_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: states.Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """A role docutils does not implement, as its text: the explicit title, else the target."""
    title = _EXPLICIT_TITLE.match(text)
    shown = title[1] if title else text.removeprefix("!").removeprefix("~")
    return [nodes.inline(rawtext, utils.unescape(shown))], []


def _with_pattern_parts(inliner: type[states.Inliner]) -> type[states.Inliner]:
    """The class with its own copies of :class:`~docutils.parsers.rst.states.Inliner`'s
    pattern parts (strings such as ``simplename``): docutils builds its inline patterns from
    the attributes of the inliner's own class (``vars(type(self))``), not its bases'."""
    for name, value in vars(states.Inliner).items():
        if isinstance(value, str) and not name.startswith("__") and name not in vars(inliner):
            setattr(inliner, name, value)
    return inliner


@_with_pattern_parts
class _Inliner(states.Inliner):
    """Inline markup where a role docutils does not implement is read by :func:`sphinx_role`."""

    def interpreted(
        self, rawsource: str, text: str, role: str, lineno: int
    ) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        role_fn, messages = roles.role(role, self.language, lineno, self.reporter)
        if role_fn is None or role_fn is roles.unimplemented_role:
            role_fn = sphinx_role
        found, more = role_fn(role, rawsource, text, lineno, self)
        return found, messages + more


_DIRECTIVE_LINE = re.compile(rf"\.\.[ ]+({states.Inliner.simplename})[ ]?::([ ]+|$)")


class _NestedStates(states.RSTState):
    """A base of every state here: nested parses (sections, lists, directive content) use
    these states too, with their own cache of nested state machines (docutils' is shared by
    all its states)."""

    nested_sm_cache: ClassVar[list[Any]] = []

    def __init__(self, state_machine: states.RSTStateMachine, debug: bool = False) -> None:
        super().__init__(state_machine, debug)
        self.nested_sm_kwargs = {"state_classes": _STATE_CLASSES, "initial_state": "Body"}


class _SphinxBody(_NestedStates, states.Body):
    """A base of the body states: a directive runs as :func:`sphinx_directive` chooses."""

    def run_directive(
        self,
        directive: type[Directive] | None,
        match: re.Match[str],
        type_name: str,
        option_presets: dict[str, Any],
    ) -> tuple[list[nodes.Node], bool]:
        chosen = sphinx_directive(type_name, directive)
        return super().run_directive(chosen, match, type_name, option_presets)

    def unknown_directive(self, type_name: str) -> tuple[list[nodes.Node], bool]:
        match = _DIRECTIVE_LINE.match(self.state_machine.line)
        if match is None:  # inside a substitution definition: left to docutils
            return super().unknown_directive(type_name)
        return self.run_directive(None, match, type_name, {})


# docutils' states, each under its own name (transitions name their next state) with a base above
_STATE_CLASSES: tuple[type[states.RSTState], ...] = tuple(
    type(
        state.__name__,
        (_SphinxBody if issubclass(state, states.Body) else _NestedStates, state),
        {},
    )
    for state in states.state_classes
)


class SphinxParser(Parser):
    """The reStructuredText parser with the states and inliner above."""

    def __init__(self) -> None:
        super().__init__(inliner=_Inliner())
        self.state_classes = _STATE_CLASSES

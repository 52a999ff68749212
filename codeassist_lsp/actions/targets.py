"""What the model could do where: the cheap, model-free analysis behind the code-action list and hover.

Everything here is tree-sitter and string work on the open document (microseconds to a few ms);
the `ActionTarget` it produces is what travels in a code action's `data` to `codeAction/resolve`.
"""

from __future__ import annotations

from typing import Any

import attrs

from codeassist_lsp.context.languages import Language, language_for, parse
from codeassist_lsp.context.positions import byte_to_offset

# Node types that are a function, method or class in some grammar of the bundle.
DEFINITION_TYPES = frozenset({
    "function_definition", "function_declaration", "method_definition", "method_declaration",
    "class_definition", "class_declaration", "function_item", "impl_item", "struct_item", "trait_item",
    "enum_item", "constructor_declaration", "interface_declaration", "enum_declaration",
    "generator_function_declaration", "method", "singleton_method", "class", "module",
    "function_signature", "local_function", "struct_declaration", "record_declaration",
    "object_declaration", "class_specifier", "struct_specifier", "function", "type_declaration",
    "protocol_declaration", "abstract_class_declaration", "trait_declaration",
})
# Node types that call something.
CALL_TYPES = frozenset({
    "call", "call_expression", "method_invocation", "invocation_expression", "function_call",
    "method_call_expression", "new_expression", "object_creation_expression", "macro_invocation",
})
IDENTIFIER_TYPES = frozenset({
    "identifier", "property_identifier", "field_identifier", "type_identifier", "constant",
    "simple_identifier", "name", "variable_name",
})
# Languages where "convert to async/await" means something.
ASYNC_LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx", "rust", "c_sharp", "kotlin", "dart",
                             "swift", "scala"})

REFACTOR_PRESETS: dict[str, tuple[str, str]] = {
    # preset: (title, instruction)
    "simplify": ("Simplify", "Simplify this code without changing what it does."),
    "idiomatic": ("Make idiomatic", "Rewrite this code in idiomatic {language}, without changing what it does."),
    "async": ("Convert to async/await", "Convert this code to use async/await."),
    "extract": ("Extract function", "Move this code into a new well-named function and replace it with a call to that function."),
}

# Below this depth in the tree no definition is looked for: a node's parent costs its depth in this
# tree-sitter, so walking up from inside 10,000 nested brackets took 23 s per code-action request.
MAX_DEFINITION_DEPTH = 500
# What each action is called in the code-action menu, and its LSP kind.
KIND_GENERATE = "refactor.rewrite.codeassist.generate"
KIND_DOCSTRING = "refactor.rewrite.codeassist.docstring"
KIND_REFACTOR = "refactor.rewrite.codeassist"
KIND_EXTRACT = "refactor.extract.codeassist"
KIND_FIX = "quickfix"
KIND_EXPLAIN = "source.codeassist.explain"


@attrs.frozen
class ActionTarget:
    """One action on one document version: what to do and where (str offsets into that version)."""

    action: str  # "generate" | "fix" | "refactor" | "docstring" | "explain"
    uri: str
    version: int
    start: int
    end: int
    preset: str = ""
    message: str = ""
    name: str = ""
    indent: str = ""
    anchor: int = -1
    """Where the code the action is about starts, when it is not [start, end) (the documented definition)."""
    anchor_end: int = -1

    def to_data(self) -> dict[str, Any]:
        """The JSON that travels in CodeAction.data."""
        return {"codeassist": attrs.asdict(self)}

    @classmethod
    def from_data(cls, data: Any) -> ActionTarget | None:
        """Read CodeAction.data back; None when it is not ours."""
        if not isinstance(data, dict) or not isinstance(data.get("codeassist"), dict):
            return None
        fields = {a.name for a in attrs.fields(cls)}
        raw = {k: v for k, v in data["codeassist"].items() if k in fields}
        try:
            return cls(**raw)
        except TypeError:
            return None


@attrs.frozen
class ListedAction:
    """One entry of the code-action list."""

    title: str
    kind: str
    target: ActionTarget
    diagnostic_index: int | None = None


def line_start(text: str, offset: int) -> int:
    """Offset of the start of the line holding offset."""
    return text.rfind("\n", 0, offset) + 1


def line_end(text: str, offset: int) -> int:
    """Offset of the end (the newline, or the end of text) of the line holding offset."""
    end = text.find("\n", offset)
    return len(text) if end < 0 else end


def indentation(line: str) -> str:
    """The leading whitespace of a line."""
    return line[: len(line) - len(line.lstrip(" \t"))]


def _node_at(tree: Any, byte_offset: int) -> Any:
    root = tree.root_node
    node = root.descendant_for_byte_range(byte_offset, byte_offset)
    return node or root


def nesting_depth(tree: Any, byte_offset: int, limit: int) -> int:
    """How many levels below the root the leaf at byte_offset lies, counted up to `limit` (a cursor walk)."""
    cursor = tree.walk()
    depth = 0
    while depth < limit and cursor.goto_first_child():
        while cursor.node.end_byte <= byte_offset and cursor.goto_next_sibling():
            pass
        depth += 1
    return depth


def enclosing(node: Any, types: frozenset[str]) -> Any:
    """The nearest ancestor-or-self of node whose type is in types."""
    while node is not None:
        if node.type in types:
            return node
        node = node.parent
    return None


def definition_name(node: Any, source: bytes) -> str:
    """The name a definition node defines ('' when it has none, e.g. an anonymous function)."""
    name = node.child_by_field_name("name")
    if name is None:
        for child in node.named_children:
            if child.type in IDENTIFIER_TYPES:
                name = child
                break
    return source[name.start_byte:name.end_byte].decode("utf-8", "replace") if name is not None else ""


def _python_docstring(definition: Any) -> Any:
    body = definition.child_by_field_name("body")
    if body is None or not body.named_children:
        return None
    first = body.named_children[0]
    return first if _is_string_statement(first) else None


def _has_doc_comment(definition: Any, source: bytes) -> bool:
    """Whether a comment ends on the line right above the definition (or its decorators)."""
    node = definition.parent if definition.parent is not None and definition.parent.type == "decorated_definition" else definition
    previous = node.prev_named_sibling
    return previous is not None and "comment" in previous.type and previous.end_point[0] >= node.start_point[0] - 1


def _is_string_statement(node: Any) -> bool:
    return node.type == "expression_statement" and bool(node.named_children) and node.named_children[0].type == "string"


def _only_doc_and_placeholder(definition: Any) -> tuple[Any, Any] | None:
    """(docstring node, body node) for a Python function whose body ends with its description and
    maybe pass/...: the docstring, or a string after a few set-up lines (`import math` then the text)."""
    body = definition.child_by_field_name("body")
    if body is None or not body.named_children:
        return None
    strings = [n for n in body.named_children if _is_string_statement(n)]
    if not strings:
        return None
    doc = strings[-1]
    rest = body.named_children[body.named_children.index(doc) + 1:]
    placeholder = all(
        n.type == "pass_statement" or (n.type == "expression_statement" and n.named_children and n.named_children[0].type == "ellipsis")
        or n.type == "comment"
        for n in rest
    )
    return (doc, body) if placeholder else None


class DocumentView:
    """One version of a document with its tree, for the analysis below."""

    def __init__(self, uri: str, text: str, version: int, language: Language | None, tree: Any = None) -> None:
        self.uri = uri
        self.text = text
        self.version = version
        self.language = language
        self.source = text.encode("utf-8")
        self.tree = tree if tree is not None else (parse(language, self.source) if language is not None else None)

    @classmethod
    def of(cls, uri: str, text: str, version: int, language_id: str | None, path: str | None = None,
           tree: Any = None) -> DocumentView:
        """A view from LSP document fields."""
        return cls(uri, text, version, language_for(language_id, path), tree)

    def byte(self, offset: int) -> int:
        """UTF-8 byte offset of a str offset."""
        return len(self.text[:offset].encode("utf-8"))

    def offset(self, byte_offset: int) -> int:
        """str offset of a UTF-8 byte offset."""
        return byte_to_offset(self.source, byte_offset)

    def node_text(self, node: Any) -> str:
        """The text a node covers."""
        return self.source[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def node_at(self, offset: int) -> Any:
        """The smallest node at a str offset (None without a tree)."""
        return _node_at(self.tree, self.byte(offset)) if self.tree is not None else None

    def definition_at(self, offset: int) -> Any:
        """The innermost function/class around offset (none inside absurdly deep nesting)."""
        node = self.node_at(offset)
        if node is not None and nesting_depth(self.tree, self.byte(offset), MAX_DEFINITION_DEPTH) >= MAX_DEFINITION_DEPTH:
            return None
        found = enclosing(node, DEFINITION_TYPES) if node is not None else None
        if found is None and node is not None and offset > 0:
            # The cursor right after a definition's last character still means that definition.
            found = enclosing(self.node_at(offset - 1), DEFINITION_TYPES)
        return found


# -- the targets of each action ------------------------------------------------------------------

def generation_target(view: DocumentView, offset: int) -> ActionTarget | None:
    """Where "generate from comment" applies: an empty documented function, or after a comment block."""
    text, language = view.text, view.language
    if language is None:
        return None
    if language.name == "python" and view.tree is not None:
        definition = view.definition_at(offset)
        if definition is not None and definition.type == "function_definition":
            found = _only_doc_and_placeholder(definition)
            if found is not None:
                doc, body = found
                start = view.offset(doc.end_byte)
                end = view.offset(body.end_byte)
                indent = indentation(text[line_start(text, start):start]) or " " * doc.start_point[1]
                return ActionTarget("generate", view.uri, view.version, start, max(start, end),
                                    name=definition_name(definition, view.source), indent=indent,
                                    anchor=view.offset(definition.start_byte))
    marker = language.line_comment
    if not marker:
        return None
    # The comment block at (or just above a blank line at) the cursor.
    line_lo = line_start(text, offset)
    line = text[line_lo:line_end(text, offset)]
    if not line.strip() and line_lo > 0:
        line_lo = line_start(text, line_lo - 1)
        line = text[line_lo:line_end(text, line_lo)]
    if not line.lstrip().startswith(marker):
        return None
    block_end = line_end(text, line_lo)
    block_start = line_lo
    while block_start > 0:  # extend up over preceding comment lines
        previous = line_start(text, block_start - 1)
        if not text[previous:block_start - 1].lstrip().startswith(marker):
            break
        block_start = previous
    # Extend down over following comment lines.
    while block_end < len(text):
        nxt = text[block_end + 1:line_end(text, block_end + 1)]
        if not nxt.lstrip().startswith(marker):
            break
        block_end = line_end(text, block_end + 1)
    following = text[block_end + 1:line_end(text, block_end + 1)] if block_end < len(text) else ""
    if following.strip():
        return None  # code already follows the comment: nothing to generate
    return ActionTarget("generate", view.uri, view.version, block_end, block_end, indent=indentation(line),
                        anchor=block_start)


def docstring_target(view: DocumentView, offset: int) -> ActionTarget | None:
    """Where a docstring/doc comment for the enclosing definition would go, if it has none."""
    language = view.language
    if language is None or language.doc_style == "none" or view.tree is None:
        return None
    definition = view.definition_at(offset)
    if definition is None:
        return None
    name = definition_name(definition, view.source)
    text = view.text
    if language.doc_style in ("python_docstring", "julia_docstring") and language.name == "python":
        if _python_docstring(definition) is not None:
            return None
        body = definition.child_by_field_name("body")
        if body is None or body.start_point[0] == definition.start_point[0]:
            return None  # a one-line definition: no room for a docstring
        at = line_start(text, view.offset(body.start_byte))
        indent = indentation(text[at:line_end(text, at)])
        return ActionTarget("docstring", view.uri, view.version, at, at, name=name, indent=indent,
                            anchor=view.offset(definition.start_byte), anchor_end=view.offset(definition.end_byte))
    if _has_doc_comment(definition, view.source):
        return None
    at = line_start(text, view.offset(definition.start_byte))
    indent = indentation(text[at:line_end(text, at)])
    return ActionTarget("docstring", view.uri, view.version, at, at, name=name, indent=indent,
                        anchor=view.offset(definition.start_byte), anchor_end=view.offset(definition.end_byte))


def list_actions(view: DocumentView, start: int, end: int,
                 diagnostics: list[tuple[int, int, str]], *, only: list[str] | None = None) -> list[ListedAction]:
    """Every action that applies to the range, cheap: no model, one tree lookup per kind."""
    found: list[ListedAction] = []
    for index, (d_start, d_end, message) in enumerate(diagnostics):
        lo = line_start(view.text, d_start)
        hi = line_end(view.text, max(d_end - 1, d_start)) if d_end > d_start else line_end(view.text, d_start)
        short = message.splitlines()[0][:60] if message else "this problem"
        found.append(ListedAction(f"codeassist: Fix \u201c{short}\u201d", KIND_FIX,
                                  ActionTarget("fix", view.uri, view.version, lo, hi, message=message),
                                  diagnostic_index=index))
    generation = generation_target(view, start)
    if generation is not None:
        found.append(ListedAction("codeassist: Generate code from comment", KIND_GENERATE, generation))
    docstring = docstring_target(view, start)
    if docstring is not None:
        label = f" for `{docstring.name}`" if docstring.name else ""
        found.append(ListedAction(f"codeassist: Generate doc comment{label}", KIND_DOCSTRING, docstring))
    if end > start and view.text[start:end].strip():
        language_name = view.language.name if view.language else ""
        for preset, (title, _instruction) in REFACTOR_PRESETS.items():
            if preset == "async" and language_name not in ASYNC_LANGUAGES:
                continue
            kind = KIND_EXTRACT if preset == "extract" else KIND_REFACTOR
            found.append(ListedAction(f"codeassist: {title}", kind,
                                      ActionTarget("refactor", view.uri, view.version, start, end, preset=preset)))
        found.append(ListedAction("codeassist: Explain selection", KIND_EXPLAIN,
                                  ActionTarget("explain", view.uri, view.version, start, end)))
    if only:
        found = [a for a in found if any(a.kind == k or a.kind.startswith(k + ".") for k in only)]
    return found


# -- hover ---------------------------------------------------------------------------------------

@attrs.frozen
class HoverTarget:
    """The function, class or call under the cursor."""

    kind: str  # "definition" | "call"
    name: str
    start: int
    end: int
    code: str


MAX_HOVER_CODE_CHARS = 3000


def hover_target(view: DocumentView, offset: int) -> HoverTarget | None:
    """The definition whose name, or the call whose callee, is under the cursor."""
    if view.tree is None:
        return None
    node = view.node_at(offset)
    if node is None or node.type not in IDENTIFIER_TYPES:
        if offset > 0:
            node = view.node_at(offset - 1)
        if node is None or node.type not in IDENTIFIER_TYPES:
            return None
    parent = node.parent
    # On a definition's own name: explain the definition.
    while parent is not None and parent.type not in DEFINITION_TYPES and parent.type not in CALL_TYPES:
        if parent.type in ("block", "statement_block", "body", "class_body", "declaration_list", "module",
                           "program", "source_file"):
            return None
        parent = parent.parent
    if parent is None:
        return None
    if parent.type in DEFINITION_TYPES:
        name_node = parent.child_by_field_name("name")
        if name_node is not None and name_node.id != node.id:
            return None  # a name inside a signature, not the definition's own
        code = view.node_text(parent)[:MAX_HOVER_CODE_CHARS]
        return HoverTarget("definition", view.node_text(node), view.offset(parent.start_byte),
                           view.offset(parent.end_byte), code)
    code = view.node_text(parent)[:MAX_HOVER_CODE_CHARS]
    return HoverTarget("call", view.node_text(node), view.offset(parent.start_byte), view.offset(parent.end_byte), code)

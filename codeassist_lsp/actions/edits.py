"""Turn model text into a minimal, verified replacement of a document range."""

from __future__ import annotations

import re
import textwrap

import attrs

from codeassist_lsp.actions.prompts import FENCE, DocStyle
from codeassist_lsp.context.languages import Language, parse
from codeassist_lsp.context.positions import line_ending, with_line_ending
from codeassist_lsp.verify import SecurityPolicy, Verdict, verify_suggestion


@attrs.frozen
class Replacement:
    """Replace text[start:end] with new_text (str offsets of one document version)."""

    start: int
    end: int
    new_text: str

    def apply(self, text: str) -> str:
        """The document after the replacement."""
        return text[:self.start] + self.new_text + text[self.end:]


def minimal(text: str, replacement: Replacement) -> Replacement:
    """The same change with the common prefix and suffix of old and new text trimmed off."""
    old = text[replacement.start:replacement.end]
    new = replacement.new_text
    head = 0
    limit = min(len(old), len(new))
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]:
        tail += 1
    return Replacement(replacement.start + head, replacement.end - tail, new[head:len(new) - tail])


def with_document_line_endings(text: str, replacement: Replacement) -> Replacement:
    """The replacement written with `text`'s line endings: a CRLF document gets no bare LF (nor a split CRLF)."""
    ending = line_ending(text)
    if ending == "\n":
        return replacement
    start, end, new_text = replacement.start, replacement.end, replacement.new_text
    # minimal() may have trimmed an LF the model text shares with a CRLF: keep each pair whole.
    if start < end and text[end - 1:end + 1] == "\r\n":
        end, new_text = end + 1, new_text + "\n"
    if start > 0 and text[start - 1:start + 1] == "\r\n":
        start, new_text = start - 1, "\r" + new_text
    return Replacement(start, end, with_line_ending(new_text, ending))


def syntax_error_lines(language: Language, text: str) -> list[int] | None:
    """1-based lines of the parse errors in text (ERROR and missing nodes, nested ones too); None when
    it cannot be parsed."""
    tree = parse(language, text.encode("utf-8"))
    if tree is None:
        return None
    lines: list[int] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            lines.append(node.start_point[0] + 1)
        if node.has_error:
            stack.extend(node.children)
    return sorted(lines)


@attrs.frozen
class CheckedEdit:
    """A replacement and what verification said about it."""

    replacement: Replacement
    verdict: Verdict
    accepted: bool
    reason: str = ""


def verify_replacement(text: str, replacement: Replacement, language: Language | None,
                       policy: SecurityPolicy) -> CheckedEdit:
    """Syntax (splice check + whole document) and SAST (mode "full") of a replacement; cut means rejected."""
    removed = text[:replacement.start] + text[replacement.end:]
    verdict = verify_suggestion(removed, replacement.start, replacement.new_text, language=language,
                                mode="full", policy=policy)
    if not replacement.new_text.strip():
        if replacement.start == replacement.end or verdict.status == "withheld":
            return CheckedEdit(replacement, verdict, False, "empty suggestion")
        broken = _added_syntax_errors(text, replacement, language)  # a deletion can break the code too
        return CheckedEdit(replacement, verdict, broken is None, broken or "")
    if verdict.status in ("dropped", "withheld") or not verdict.text:
        return CheckedEdit(replacement, verdict, False, verdict.reason or verdict.status)
    if verdict.text != replacement.new_text:
        return CheckedEdit(replacement, verdict, False, "only part of the suggestion parses: " + verdict.reason)
    broken = _added_syntax_errors(text, replacement, language)
    if broken is not None:
        return CheckedEdit(replacement, verdict, False, broken)
    return CheckedEdit(replacement, verdict, True, verdict.reason)


def _added_syntax_errors(text: str, replacement: Replacement, language: Language | None) -> str | None:
    """Why the whole document parses worse after the replacement than before it, or None."""
    if language is None:
        return None
    before, after = syntax_error_lines(language, text), syntax_error_lines(language, replacement.apply(text))
    if before is None or after is None or len(after) <= len(before):
        return None
    fresh = sorted(set(after) - set(before)) or after
    return f"adds syntax errors ({len(before)} -> {len(after)}) at line {', '.join(map(str, fresh[:3]))}"


# -- shaping model text ----------------------------------------------------------------------------

def cut_at_fence(text: str) -> str:
    """Model text up to the closing code fence (the primer opened one)."""
    cut = text.find(FENCE)
    return text if cut < 0 else text[:cut]


def strip_fences(text: str) -> str:
    """Code from a reply that may wrap it in a fenced block of its own."""
    match = re.search(r"```[\w+#-]*\n(.*?)(```|$)", text, re.DOTALL)
    return match.group(1) if match else text


def reindent(code: str, indent: str) -> str:
    """Dedent code and indent every non-empty line by `indent`."""
    lines = textwrap.dedent(code.expandtabs(4) if "\t" in code and " " in indent else code).split("\n")
    return "\n".join(indent + line if line.strip() else "" for line in lines)


def first_line_indent(text: str, offset: int) -> str:
    """The indentation of the line holding offset."""
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:]
    return line[: len(line) - len(line.lstrip(" \t"))]


def code_stop(base_indent: str, max_lines: int, *, closers: tuple[str, ...] = ("}", ")", "]", "end")):  # type: ignore[no-untyped-def]
    """Stop generated code that follows a comment: at a dedent below the comment, or a new paragraph."""
    base = len(base_indent)

    def check(text: str) -> int | None:
        lines = text.split("\n")
        complete = lines[:-1]
        offset = 0
        seen_code = False
        blank_before = False
        for number, line in enumerate(complete):
            stripped = line.strip()
            if stripped:
                width = len(line) - len(line.lstrip(" \t"))
                if seen_code and width < base:
                    return max(offset - 1, 0)
                if seen_code and blank_before and width <= base and not stripped.startswith(closers):
                    return max(offset - 1, 0)
                seen_code = True
                blank_before = False
            elif seen_code:
                blank_before = True
            if number >= max_lines:
                return max(offset - 1, 0)
            offset += len(line) + 1
        return None

    return check


_DOC_MARKERS = re.compile(r"^\s*(/\*\*+|\*/|\*|///|//|#'|--\s*\||--|#|\(\*\*|\*\))\s?")


def doc_text(raw: str) -> list[str]:
    """The prose lines of a model's doc comment, without comment markers, trailing blank lines removed."""
    lines = []
    for line in raw.replace("\r", "").split("\n"):
        line = _DOC_MARKERS.sub("", line, count=1).rstrip()
        line = line.replace('"""', "").replace("*/", "").rstrip()
        lines.append(line)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    # Small models repeat themselves: stop at the first repeated line.
    seen: set[str] = set()
    kept = []
    for line in lines[:12]:
        if line.strip() and line.strip() in seen:
            break
        seen.add(line.strip())
        kept.append(line)
    return kept


def format_doc(lines: list[str], style: DocStyle, indent: str, language: Language, name: str = "") -> str:
    """A doc comment in the language's convention, indented, ending with a newline."""
    if language.doc_style == "csharp_xml":
        body = [f"{indent}/// <summary>"] + [f"{indent}/// {line}".rstrip() for line in lines] + [f"{indent}/// </summary>"]
        return "\n".join(body) + "\n"
    if style.opener and style.closer:
        if style.opener in ('"""', '@doc """'):
            if len(lines) == 1:
                return f'{indent}{style.opener}{lines[0].strip()}{style.closer}\n'
            inner = [f"{indent}{line.strip()}" if line.strip() else "" for line in lines[1:]]
            return "\n".join([f"{indent}{style.opener}{lines[0].strip()}", *inner, f"{indent}{style.closer}"]) + "\n"
        inner = [f"{indent}{style.prefix}{line.strip()}".rstrip() for line in lines]
        return "\n".join([f"{indent}{style.opener}", *inner, f"{indent}{style.closer}"]) + "\n"
    return "\n".join(f"{indent}{style.prefix}{line.strip()}".rstrip() for line in lines) + "\n"


def prose_stop(text: str) -> int | None:
    """Stop prose when a complete line repeats an earlier one (small models loop) or after two
    blank lines following text: the answer is over (whitespace-only lines count as blank; the
    prompt's "\n\n\n" stop misses "\n    \n    \n", which Gemma 3 can repeat until the token limit)."""
    seen: set[str] = set()
    offset = 0
    blanks, blank_start, wrote = 0, 0, False
    for line in text.split("\n")[:-1]:
        key = line.strip()
        if not key:
            if wrote:
                blank_start = offset if blanks == 0 else blank_start
                blanks += 1
                if blanks >= 2:
                    return max(blank_start - 1, 0)
        else:
            if key in seen:
                return max(offset - 1, 0)
            seen.add(key)
            blanks, wrote = 0, True
        offset += len(line) + 1
    return None


# How a line that starts a definition (or closes one) begins, across the bundled languages.
_DEFINITION_START = re.compile(
    r"^(def|class|async|@|function|fn|func|pub|public|private|protected|internal|static|export|const|let|var|"
    r"interface|type|struct|enum|impl|trait|module|template|inline|void|int|char|bool|double|float|"
    r"unsigned|long|object|data|sealed|abstract|final|override|package|import|from|using|#include|[}\])\]]|end\b)")


def definition_stop(base_indent: str):  # type: ignore[no-untyped-def]
    """Stop rewritten code at the first line at or left of `base_indent` that starts no definition.

    A rewrite of a definition ends with the definition; small instruct models like to add
    "# Example usage:" and calls after it, which are not part of the change.
    """
    base = len(base_indent)

    def check(text: str) -> int | None:
        offset = 0
        for number, line in enumerate(text.split("\n")[:-1]):
            stripped = line.strip()
            width = len(line) - len(line.lstrip(" \t"))
            if number > 0 and stripped and width <= base and not _DEFINITION_START.match(stripped):
                return max(offset - 1, 0)
            offset += len(line) + 1
        return None

    return check


def paragraph_stop(text: str) -> int | None:
    """Stop at the first blank line after text: an instruct model's short answer is one paragraph."""
    start = len(text) - len(text.lstrip())
    cut = text.find("\n\n", start)
    return cut if cut > start else None


_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?](?=\s)")


def sentences_stop(limit: int):  # type: ignore[no-untyped-def]
    """Stop prose after `limit` sentences (outside `code`), or at the end of its first line."""

    def check(text: str) -> int | None:
        ended = 0
        for match in _SENTENCE_END.finditer(text):
            if text[:match.start()].count("`") % 2 == 0:
                ended += 1
                if ended >= limit:
                    return match.end()
        return first_line_stop(text)

    return check


def first_line_stop(text: str) -> int | None:
    """Stop at the end of the first line that has content (hover: one short paragraph)."""
    start = len(text) - len(text.lstrip())
    newline = text.find("\n", start)
    return newline if newline > start else None


def repetition_stop(text: str, window: int = 24, repeats: int = 4) -> int | None:
    """Stop a degenerate loop: the last `window` characters already occurred `repeats` times."""
    if len(text) < window * (repeats + 1):
        return None
    tail = text[-window:]
    if text.count(tail) >= repeats:
        first = text.find(tail)
        return first + window
    return None


# -- static plausibility of generated Python (no execution) ----------------------------------------

def python_defects(document: str, function_name: str) -> int | None:
    """Static defects of a generated Python function (undefined names read, no return); None if it does not compile."""
    # Cheap and execution-free: candidates are ranked by it, so code that reads variables it never
    # assigned (the commonest failure of a 270M model) loses to code that is at least closed.
    import ast
    import builtins

    try:
        module = ast.parse(document)
    except (SyntaxError, ValueError):
        return None
    functions = [n for n in ast.walk(module) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == function_name]
    if not functions:
        return None
    function = functions[-1]
    defined = set(dir(builtins))
    for node in ast.walk(module):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            defined.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    defects = len({n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                   and n.id not in defined})
    body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not body or all(isinstance(s, ast.Pass) for s in body):
        defects += 1
    elif not any(isinstance(n, (ast.Return, ast.Yield, ast.YieldFrom, ast.Raise)) for n in ast.walk(function)):
        defects += 1
    return defects

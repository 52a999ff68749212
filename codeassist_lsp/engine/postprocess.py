"""Shape raw model text into a suggestion: one line or one block, nothing the document already has."""

from __future__ import annotations

from codeassist_lsp.context.gating import Gate


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def line_stop(text: str) -> int | None:
    """Stop a single-line suggestion at its first newline once it has some content."""
    newline = text.find("\n")
    return newline if newline >= 0 else None


def block_stop(indent: str, max_lines: int):  # type: ignore[no-untyped-def]
    """A stop check for a block body: stop at the first complete line indented less than the body."""

    def check(text: str) -> int | None:
        lines = text.split("\n")
        complete = lines[:-1]  # the last line may still be growing
        offset = 0
        for number, line in enumerate(complete):
            if number > 0 and line.strip() and _indent_width(line) < len(indent):
                return max(offset - 1, 0)
            if number >= max_lines:
                return max(offset - 1, 0)
            offset += len(line) + 1
        return None

    return check


def _first_content_line(text: str) -> str:
    return next((line.strip() for line in text.split("\n") if line.strip()), "")


def _strip_suffix_overlap(suggestion: str, line_after: str) -> str:
    """Drop closers the model wrote that already follow the cursor, e.g. `x)` before `)`."""
    rest = line_after.strip()
    trimmed = suggestion.rstrip()
    if rest and trimmed.endswith(rest):
        return trimmed[: -len(rest)]
    return suggestion


def shape_suggestion(raw: str, gate: Gate, *, line_before: str, line_after: str, following: str) -> str:
    """Cut raw model text to the gate's shape; '' when nothing useful is left."""
    if gate.mode == "none":
        return ""
    if gate.mode == "line":
        text = raw.split("\n", 1)[0].rstrip()
        if gate.insert_line:
            if text.strip() == line_after.strip():
                return ""  # the model wrote the line that already follows the cursor
            # A new line above the code at the cursor: that code moves down with the indentation
            # the cursor stood in, and the new line keeps the model's indentation at column 0.
            text = text.lstrip() if line_before else text
            return text + "\n" + line_before if text.strip() else ""
        text = _strip_suffix_overlap(text, line_after)
        if not line_before.strip() and not line_after.strip() and text.strip() == _first_content_line(following):
            return ""  # on an empty line, the model repeated the line below (it can see it in the prompt)
        if not line_before.strip():
            # On an empty line the editor already has the indentation the user typed.
            text = text.lstrip() if line_before else text
        return text if text.strip() else ""

    # Block: the body lines, each at least as indented as the body, without the document's next lines.
    cut = block_stop(gate.indent, 10_000)(raw + "\n")
    body = raw if cut is None else raw[:cut]
    lines = [line.rstrip() for line in body.split("\n")]
    if lines and line_before:
        lines[0] = lines[0].lstrip()  # the cursor already sits after the indentation
    next_lines = [line.rstrip() for line in following.split("\n") if line.strip()]
    while lines and next_lines and lines[-1].strip() and lines[-1].strip() == next_lines[0].strip():
        lines.pop()  # the model repeated the closing line that follows the cursor
    while lines and not lines[-1].strip():
        lines.pop()
    text = "\n".join(lines)
    return text if text.strip() else ""

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


# A unit of 2 to CYCLE_MAX_UNIT characters repeated this often is a loop ("-up-up-up-up-up");
# runs of one character are not counted ("# =====" rules and "0000" literals are real code).
CYCLE_REPEATS = 5
CYCLE_MAX_UNIT = 8
# A line of at least this many words, mostly plain words, outside a comment or string, is prose.
PROSE_WORDS = 6
TRIPLE_QUOTES = ('"""', "'''")


def cycle_stop(text: str) -> int | None:
    """Stop degenerate output that loops on a short cycle; cut after the first turn of the loop."""
    for size in range(2, CYCLE_MAX_UNIT + 1):
        unit = text[-size:]
        if len(unit) < size or len(set(unit)) == 1 or not unit.strip():
            continue  # runs of one character (spaces: indentation)
        start = len(text) - size
        count = 1
        while start - size >= 0 and text[start - size:start] == unit:
            start -= size
            count += 1
        if count >= CYCLE_REPEATS:
            return start + size
    return None


def _looks_like_prose(line: str) -> bool:
    words = line.split()
    if len(words) < PROSE_WORDS:
        return False
    plain = sum(1 for word in words if word.strip(".,;:!?'\"()").isalpha())
    return plain >= 0.8 * len(words) and not line.rstrip().endswith((":", "{", "(", "[", ",", ";", "\\"))


def block_guard(following: str, comment: str | None):  # type: ignore[no-untyped-def]
    """Stop a block that starts writing the document's next lines again, or prose outside comments."""
    upcoming = {line.strip() for line in following.split("\n")[:12] if len(line.strip()) >= 3}

    def check(text: str) -> int | None:
        offset = 0
        quotes = 0
        for number, line in enumerate(text.split("\n")[:-1]):
            stripped = line.strip()
            in_string = quotes % 2 == 1
            quotes += sum(line.count(mark) for mark in TRIPLE_QUOTES)
            if number > 0 and stripped in upcoming:
                return max(offset - 1, 0)  # the model is writing the code below the cursor again
            if (not in_string and not any(mark in line for mark in TRIPLE_QUOTES)
                    and not (comment and stripped.startswith(comment)) and _looks_like_prose(stripped)):
                return max(offset - 1, 0)
            offset += len(line) + 1
        return None

    return check


def combine_stops(*checks):  # type: ignore[no-untyped-def]
    """A stop check that cuts at the earliest cut any of `checks` asks for."""

    def check(text: str) -> int | None:
        cuts = [cut for cut in (c(text) for c in checks if c is not None) if cut is not None]
        return min(cuts) if cuts else None

    return check


def complete_lines(text: str) -> int | None:
    """Where a block's text may be cut for early delivery: after its last complete non-blank line."""
    cut = text.rfind("\n")
    return cut if cut > 0 and text[:cut].strip() else None


def whole_words(text: str) -> int | None:
    """Where a line's text may be cut for early delivery: before a word still being written."""
    cut = len(text)
    while cut > 0 and (text[cut - 1].isalnum() or text[cut - 1] == "_"):
        cut -= 1
    return cut if len(text[:cut].strip()) >= 2 else None


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

"""Turn assembled context into prompt tokens in the model's own format (FIM or plain prefix)."""

from __future__ import annotations

from codeassist_lsp.context.assembler import AssembledContext, render_snippet
from codeassist_lsp.engine.base import DecodeBackend


def _path_comment(context: AssembledContext) -> str:
    language = context.language
    if not context.path or language is None:
        return ""
    if language.line_comment:
        return f"{language.line_comment} file: {context.path}\n"
    if language.block_comment:
        return f"{language.block_comment[0]} file: {context.path} {language.block_comment[1]}\n"
    return ""


def render_header(context: AssembledContext) -> str:
    """The text ahead of the code: related snippets, each under a path comment, then the file's path.

    Snippets come first and change only when the service refreshes them, so the KV cache keeps them.
    """
    snippets = "".join(render_snippet(s, context.language) + "\n" for s in context.snippets)
    return snippets + _path_comment(context)


def completion_prompt_text(backend: DecodeBackend, context: AssembledContext) -> tuple[str, str | None]:
    """What an inline prompt's tokens are made of: the head, and the suffix when the model does FIM.

    The tokens are a function of these strings (and the model), so they can key a cache without
    tokenising.
    """
    head = render_header(context) + context.prefix
    return head, (context.suffix if backend.fim_tokens() is not None else None)


def healing_prefix(line_before: str) -> str:
    """The spaces or tabs the cursor follows inside a line ('' at indentation or after other text)."""
    code = line_before.rstrip(" \t")
    return line_before[len(code):] if code else ""


def tokenize_prompt(backend: DecodeBackend, text: tuple[str, str | None]) -> list[int]:
    """Prompt tokens from `completion_prompt_text`'s strings."""
    head, suffix = text
    fim = backend.fim_tokens()  # FIM whenever the vocabulary has the tokens (Qwen, StarCoder, ...)
    if fim is not None and suffix is not None:
        prefix_id, suffix_id, middle_id = fim
        bos = [backend.bos()] if backend.adds_bos() else []
        return bos + [prefix_id] + backend.tokenize(head) + [suffix_id] + backend.tokenize(suffix) + [middle_id]
    return backend.tokenize(head, add_bos=True)

"""Turn assembled context into prompt tokens in the model's own format (FIM or plain prefix)."""

from __future__ import annotations

from codeassist_lsp.context.assembler import AssembledContext
from codeassist_lsp.engine.base import DecodeBackend


def _comment(context: AssembledContext, text: str) -> str:
    language = context.language
    if language is not None and language.line_comment:
        return f"{language.line_comment} {text}\n"
    if language is not None and language.block_comment:
        start, end = language.block_comment
        return f"{start} {text} {end}\n"
    return ""


def render_header(context: AssembledContext) -> str:
    """The text ahead of the code: related snippets, each under a path comment, then the file's path.

    Snippets come first and stay put while the user types on one line, so the KV cache keeps them.
    """
    parts = []
    for snippet in context.snippets:
        parts.append(_comment(context, f"{snippet.kind} from {snippet.path}"))
        parts.append(snippet.text.rstrip("\n") + "\n\n")
    if context.path:
        parts.append(_comment(context, f"file: {context.path}"))
    return "".join(parts)


def completion_prompt(backend: DecodeBackend, context: AssembledContext) -> list[int]:
    """Prompt tokens for an inline completion at the context's cursor."""
    head = render_header(context) + context.prefix
    fim = backend.fim_tokens()  # FIM whenever the vocabulary has the tokens (Qwen, StarCoder, ...)
    if fim is not None:
        prefix_id, suffix_id, middle_id = fim
        bos = [backend.bos()] if backend.adds_bos() else []
        return (bos + [prefix_id] + backend.tokenize(head) + [suffix_id]
                + backend.tokenize(context.suffix) + [middle_id])
    return backend.tokenize(head, add_bos=True)

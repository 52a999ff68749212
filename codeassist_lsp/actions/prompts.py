"""Prompts per action: the model's own chat template (GGUF metadata, applied by llama.cpp), else plain text.

Every prompt ends with a *primer*, the start of the answer written for the model (an opening code
fence, a function header, a doc-comment opener): it keeps small models on the format we parse, and
for base models without a chat template it is the whole trick (a document the answer continues).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
import textwrap
from typing import Any

import attrs

from codeassist_lsp.actions.targets import REFACTOR_PRESETS
from codeassist_lsp.context.languages import Language

log = logging.getLogger(__name__)

FENCE = "```"
# Markdown fence names for our language names where they differ.
_FENCE_NAMES = {"c_sharp": "csharp", "tsx": "tsx", "make": "makefile"}

SYSTEM = ("You are a careful senior {language} programmer inside a code editor. "
          "Answer exactly in the format asked for, without chatter.")


@attrs.frozen
class ActionPrompt:
    """A prompt ready to tokenise, and how its answer ends."""

    text: str
    chat: bool
    primer: str
    stop: tuple[str, ...] = ()


def fence_name(language: Language | None) -> str:
    """The markdown fence tag for a language."""
    if language is None:
        return ""
    return _FENCE_NAMES.get(language.name, language.name)


def display_name(language: Language | None) -> str:
    """A human name for a language."""
    if language is None:
        return "code"
    return {"c_sharp": "C#", "cpp": "C++", "javascript": "JavaScript", "typescript": "TypeScript",
            "tsx": "TypeScript (TSX)", "php": "PHP", "sql": "SQL", "html": "HTML", "css": "CSS"}.get(
        language.name, language.name.capitalize())


# -- chat templates ------------------------------------------------------------------------------

def chat_template_of(backend: Any) -> str | None:
    """The GGUF's chat template, or None for base models (and engines without one)."""
    getter = getattr(backend, "chat_template", None)
    if getter is None:
        return None
    try:
        template = getter()
    except Exception:  # a broken metadata entry means: no template
        log.debug("no chat template", exc_info=True)
        return None
    return template or None


@functools.lru_cache(maxsize=8)
def _template_supported(template: str) -> bool:
    return apply_chat_template(template, (("user", "x"),)) is not None


def apply_chat_template(template: str, messages: tuple[tuple[str, str], ...], add_assistant: bool = True) -> str | None:
    """The messages rendered with llama.cpp's `llama_chat_apply_template`; None when it knows no such template."""
    try:
        import llama_cpp
    except ImportError:
        return None
    array = (llama_cpp.llama_chat_message * len(messages))()
    keep = []  # the C side borrows these buffers
    for item, (role, content) in zip(array, messages):
        role_bytes, content_bytes = role.encode(), content.encode("utf-8")
        keep += [role_bytes, content_bytes]
        item.role = role_bytes
        item.content = content_bytes
    size = max(1024, 2 * sum(len(c) for _, c in messages) + 512)
    for _ in range(2):
        buffer = ctypes.create_string_buffer(size)
        written = llama_cpp.llama_chat_apply_template(template.encode("utf-8"), array, len(messages),
                                                      add_assistant, buffer, size)
        if written < 0:
            return None  # llama.cpp does not recognise the template
        if written <= size:
            return buffer.raw[:written].decode("utf-8", "replace")
        size = written + 1
    return None


def build_prompt(backend: Any, *, language: Language | None, user: str, primer: str, plain: str,
                 stop: tuple[str, ...] = ()) -> ActionPrompt:
    """Chat-template the instruction when the model has a usable template, else the plain document."""
    template = chat_template_of(backend)
    if template is not None and _template_supported(template):
        system = SYSTEM.format(language=display_name(language))
        rendered = apply_chat_template(template, (("system", system), ("user", user)))
        if rendered is not None:
            return ActionPrompt(rendered + primer, True, primer, stop + (FENCE,) if FENCE in primer else stop)
    return ActionPrompt(plain + primer, False, primer, stop)


def prompt_tokens(backend: Any, prompt: ActionPrompt) -> list[int]:
    """Tokens of a prompt: one BOS, the template's special tokens as tokens."""
    tokens = backend.tokenize(prompt.text, add_bos=True, special=prompt.chat)
    if len(tokens) > 1 and tokens[0] == tokens[1] and backend.adds_bos() and tokens[0] == backend.bos():
        tokens = tokens[1:]  # the template already wrote a BOS
    return list(tokens)


def _fenced(language: Language | None, code: str) -> str:
    return f"{FENCE}{fence_name(language)}\n{code.rstrip()}\n{FENCE}"


def code_first(language: Language | None, code: str, instruction: str) -> str:
    """A user message that shows the code before the instruction.

    Actions on one function then share the prompt's head (system + code), so the quality model's
    KV cache keeps it from a hover to an explanation to a docstring of the same code.
    """
    return f"{_fenced(language, code)}\n\n{instruction}"


# -- one builder per action ----------------------------------------------------------------------

def generate_prompt(backend: Any, language: Language | None, *, before: str, header: str,
                    related: str = "") -> ActionPrompt:
    """Generate the code a comment/docstring describes; the answer continues `before` (the cursor's prefix)."""
    user = ("Complete the following code: write the code the last comment or docstring describes. "
            "Reply with one code block that starts with the given code.\n\n"
            + (f"Related code:\n{_fenced(language, related)}\n\n" if related else "")
            + _fenced(language, before))
    template = chat_template_of(backend)
    if template is not None and _template_supported(template):
        return build_prompt(backend, language=language, user=user,
                            primer=f"{FENCE}{fence_name(language)}\n{header}\n", plain="")
    return ActionPrompt((related + "\n\n" if related else "") + before + "\n", False, "\n")


@attrs.frozen
class DocStyle:
    """How one documentation convention is written."""

    opener: str  # the first line, e.g. "/**" ('' for line styles)
    prefix: str  # what every content line starts with
    closer: str  # the last line, e.g. " */" ('' for line styles)
    description: str


DOC_STYLES: dict[str, DocStyle] = {
    "python_docstring": DocStyle('"""', "", '"""', "Python docstring"),
    "julia_docstring": DocStyle('"""', "", '"""', "Julia docstring"),
    "jsdoc": DocStyle("/**", " * ", " */", "JSDoc comment"),
    "javadoc": DocStyle("/**", " * ", " */", "Javadoc comment"),
    "phpdoc": DocStyle("/**", " * ", " */", "PHPDoc comment"),
    "doxygen": DocStyle("/**", " * ", " */", "Doxygen comment"),
    "csharp_xml": DocStyle("", "/// ", "", "C# XML documentation comment"),
    "rust_doc": DocStyle("", "/// ", "", "Rust doc comment (///)"),
    "haddock": DocStyle("", "-- | ", "", "Haddock comment"),
    "elixir_doc": DocStyle('@doc """', "", '"""', "Elixir @doc"),
    "ocamldoc": DocStyle("(**", " ", " *)", "OCamldoc comment"),
    "roxygen": DocStyle("", "#' ", "", "roxygen comment"),
}


def doc_style(language: Language) -> DocStyle:
    """The language's convention (`doc_style` in grammars/languages.toml); line comments otherwise."""
    style = DOC_STYLES.get(language.doc_style)
    if style is not None:
        return style
    marker = language.line_comment or "//"
    return DocStyle("", f"{marker} ", "", f"doc comment ({marker} lines)")


def docstring_prompt(backend: Any, language: Language, *, definition: str, header: str, indent: str,
                     name: str) -> ActionPrompt:
    """Ask for the description of a definition; the answer is the inside of its doc comment."""
    style = doc_style(language)
    inside_body = language.name == "python"
    if inside_body:
        opener = f"{header.rstrip()}\n{indent}{style.opener}"
        stop: tuple[str, ...] = (style.closer,)
    elif style.opener:
        opener = f"{indent}{style.opener}\n{indent}{style.prefix}"
        stop = (style.closer.strip(),)
    else:
        first = f"{name} " if language.doc_style == "line_comment" and language.name == "go" and name else ""
        opener = f"{indent}{style.prefix}{first}"
        stop = ()
    user = code_first(language, definition,
                      f"Write a short {style.description} for `{name or 'this definition'}`: one summary sentence, "
                      f"then its parameters and what it returns when it has them.")
    comment = language.line_comment or "#"
    plain = (f"{textwrap.dedent(definition).rstrip()}\n\n\n{comment} The same code, documented:\n")
    return build_prompt(backend, language=language, user=user, primer=f"{FENCE}{fence_name(language)}\n{opener}"
                        if chat_template_of(backend) else opener, plain=plain, stop=stop)


def rewrite_prompt(backend: Any, language: Language | None, *, code: str, instruction: str) -> ActionPrompt:
    """Rewrite a piece of code (fix, refactor); the answer is the new code in a fenced block."""
    name = display_name(language)
    user = f"{instruction}\n\n{_fenced(language, code)}\n\nReply with the complete new code in one code block."
    plain = (f"{instruction}\n\nThe original {name} code:\n\n{_fenced(language, code)}\n\n"
             f"The new {name} code:\n\n")
    if language is not None and language.name == "python":
        plain = _PYTHON_EXAMPLE + plain  # one worked example keeps a base model from echoing the input
    return build_prompt(backend, language=language, user=user, primer=f"{FENCE}{fence_name(language)}\n",
                        plain=plain, stop=(FENCE,))


_PYTHON_EXAMPLE = (
    "Fix this problem in the Python code: undefined name 'lenght'\n\nThe original Python code:\n\n"
    "```python\ncount = lenght(items)\n```\n\nThe new Python code:\n\n```python\ncount = len(items)\n```\n\n"
)


def edit_prompt(backend: Any, language: Language | None, *, context: str, lead: str, instruction: str,
                reply: str = "Reply with the whole code above, changed as little as possible, in one code block."
                ) -> ActionPrompt:
    """Rewrite part of `context` (an instruct model): the answer is `context` again, changed where asked.

    The primer repeats the context up to the part to change (`lead`), so the model writes the changed
    part and copies the rest, which prompt-lookup speculation makes cheap; the caller diffs it.
    """
    user = code_first(language, context, f"{instruction}\n\n{reply}")
    return build_prompt(backend, language=language, user=user, primer=f"{FENCE}{fence_name(language)}\n{lead}",
                        plain="", stop=(FENCE,))


def fix_instruction(message: str, language: Language | None) -> str:
    """The instruction of a quick fix."""
    return f"Fix this problem in the {display_name(language)} code: {message.strip()}"


def refactor_instruction(preset: str, language: Language | None) -> str:
    """The instruction of a refactoring preset."""
    return REFACTOR_PRESETS[preset][1].format(language=display_name(language))


def explain_prompt(backend: Any, language: Language | None, *, code: str, name: str = "",
                   brief: bool = False) -> ActionPrompt:
    """Explain code in prose (markdown); `brief` for hovers."""
    length = "in one or two sentences" if brief else "in two or three sentences: what it does and how"
    subject = f"`{name}`" if name else "this code"
    user = code_first(language, code, f"Explain {subject} {length}.")
    primer = f"`{name}` " if name else "This code "
    plain = f"{_fenced(language, code)}\n\nQuestion: What does {subject} do?\nAnswer: "
    stop = ("Question:",) if brief else ("\n\n\n", "Question:", FENCE)
    return build_prompt(backend, language=language, user=user, primer=primer, plain=plain, stop=stop)


def hover_prompt(backend: Any, language: Language | None, *, code: str, kind: str) -> ActionPrompt:
    """A one-sentence explanation for a hover; the answer is forced to start with "This function"."""
    # A base model continues a page of code explained in plain English; the forced opening keeps a
    # 270M model from answering with code or a blank line (it often did after "`name` ").
    subject = {"definition": _definition_word(code), "call": "call"}.get(kind, "code")
    primer = f"This {subject}"
    user = code_first(language, code, f"Summarize this {subject} in one or two short sentences: what it does, "
                      "and any error it raises.")
    plain = f"# Code explained\n\n{_fenced(language, code)}\n\nIn plain English: "
    return build_prompt(backend, language=language, user=user, primer=primer, plain=plain, stop=("\n\n",))


def _definition_word(code: str) -> str:
    head = code.lstrip().split("(", 1)[0].split("{", 1)[0]
    words = set(head.replace(":", " ").split())
    if words & {"class", "struct", "interface", "enum", "trait", "impl", "type"}:
        return "type" if "class" not in words else "class"
    return "function"


# -- reviewer (best-of-N) --------------------------------------------------------------------------

_DOCSTRING = re.compile(r'(?s)^([ \t]*)(?:[rRuU]{0,2})("""|\'\'\')(.*?)\2')


def review_texts(header: str, code: str, language: Language | None) -> tuple[str, str] | None:
    """(context, scored): a candidate's code followed by the comment/docstring it was written from.

    Reviewer reranking (Coder-Reviewer, Zhang et al. 2022): how likely the model finds the instruction
    given the code, p(comment | code), only prompt evaluation. `header` is the documented definition
    (signature + docstring) or the comment block; `code` the candidate body or code.
    """
    marker = (language.line_comment if language is not None else None) or "#"
    lines = header.split("\n")
    for number, line in enumerate(lines):
        match = _DOCSTRING.match("\n".join(lines[number:]))
        if match and number > 0:  # a docstring after the signature: the code replaces it
            signature = "\n".join(lines[:number]).rstrip()
            doc = textwrap.dedent(match.group(0)).strip()
            if not doc or not code.strip():
                return None
            return f"{signature}\n{code.strip(chr(10)).rstrip()}\n\n\n{marker} The docstring of the function above:\n", doc + "\n"
    comment = textwrap.dedent(header).strip()
    if not comment or not code.strip():
        return None
    return f"{textwrap.dedent(code.strip(chr(10))).rstrip()}\n\n\n{marker} The comment that describes the code above:\n", comment + "\n"

"""Token healing on the real embedded model: a cursor after a space no longer makes Gemma write a number.

Gemma's tokenizer joins a space to the word after it (" self"); a prompt ending in a lone space token
is, in its training text, the place before digits. Before healing, the acceptance replay showed 146
suggestions after a space mid-line and none was accepted ("return " -> "1").
"""

from __future__ import annotations

import pytest

from codeassist_lsp.config import Settings
from codeassist_lsp.engine.base import CancelFlag, GenerationRequest, GenerationResult
from codeassist_lsp.engine.llama import LlamaBackend
from codeassist_lsp.engine.prompts import healing_prefix
from codeassist_lsp.engine.worker import Job, _remaining
from codeassist_lsp.service import CompletionService

pytestmark = pytest.mark.model

LEXER = "class Lexer:\n    def read(self):\n        if not self.stack:\n            return "
LOOP = "function names(nodes) {\n  const out = []\n  for (const "


def _settings() -> Settings:
    """Defaults, with every keystroke's answer computed at once (no debounce, no prewarm)."""
    settings = Settings()
    settings.completion.debounce_ms = 0
    settings.completion.prewarm = False
    return settings


def test_the_healing_prefix_is_the_space_after_code_only() -> None:
    assert healing_prefix("        return ") == " "
    assert healing_prefix("x =\t") == "\t"
    assert healing_prefix("f(a,  ") == "  "
    assert healing_prefix("        ") == ""  # indentation: the model writes the code itself
    assert healing_prefix("return") == ""


def test_the_first_token_starts_with_the_left_off_characters(backend: LlamaBackend) -> None:
    prompt = tuple(backend.tokenize(LEXER.rstrip(" "), add_bos=True))
    # Without healing the prompt ends with the lone space token and the model writes a digit.
    spaced = backend.run(GenerationRequest(prompt_tokens=tuple(backend.tokenize(LEXER, add_bos=True)),
                                           max_tokens=4, stop=("\n",)), CancelFlag())
    assert spaced.text[:1].isdigit()
    healed = backend.run(GenerationRequest(prompt_tokens=prompt, max_tokens=4, stop=("\n",), want_logprobs=True,
                                           first_token_prefix=b" "), CancelFlag())
    assert healed.text.startswith(" ") and healed.text[1:2].isalpha()
    # Its log-probability is given that it starts with the space (at least its unconditional one).
    free = backend.run(GenerationRequest(prompt_tokens=prompt, max_tokens=1, want_logprobs=True), CancelFlag())
    assert free.text == healed.text[:len(free.text)]
    assert free.token_logprobs[0] <= healed.token_logprobs[0] <= 0.0


def test_a_prefix_no_likely_token_has_leaves_the_model_its_own_choice(backend: LlamaBackend) -> None:
    prompt = tuple(backend.tokenize("def add(a, b):\n    return", add_bos=True))
    result = backend.run(GenerationRequest(prompt_tokens=prompt, max_tokens=2, first_token_prefix="\u2603\u2603".encode()),
                         CancelFlag())
    plain = backend.run(GenerationRequest(prompt_tokens=prompt, max_tokens=2), CancelFlag())
    assert result.text == plain.text


def test_a_resumed_generation_does_not_heal_again() -> None:
    request = GenerationRequest(prompt_tokens=(1, 2, 3), max_tokens=8, first_token_prefix=b" ")
    job = Job(request)
    assert _remaining(job) is request
    job.done_part = GenerationResult(text=" self", token_ids=[7], generated_tokens=1)
    rest = _remaining(job)
    assert rest is not None and rest.prompt_tokens == (1, 2, 3, 7) and rest.first_token_prefix == b""


@pytest.mark.parametrize(("document", "path"), [(LEXER, "lexer.py"), (LOOP, "names.js")])
def test_the_pipeline_heals_a_cursor_after_a_space(document: str, path: str) -> None:
    settings = _settings()
    settings.cache.enabled = False
    service = CompletionService(settings)
    try:
        service.wait_until_loaded(120)
        prepared = service.prepare(document, len(document), path=path, language_id=None)
        assert prepared.heal == " " and prepared.request is not None
        assert prepared.request.first_token_prefix == b" "
        backend = service.backend
        assert backend is not None and backend.token_bytes(prepared.request.prompt_tokens[-1]) != b" "
        suggestion = service.complete(document, len(document), path=path)
        # The space is in the document already: the suggestion is the word after it, not a number.
        assert suggestion.text and suggestion.text[0].isalpha(), suggestion.text
    finally:
        service.close()


def test_the_cache_keeps_a_healed_prompt_apart_from_the_same_text_without_the_space(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = _settings()
    settings.cache.directory = str(tmp_path / "completions")
    settings.cache.typed_ahead = False  # every answer below is the model's or the cache's
    service = CompletionService(settings)
    try:
        service.wait_until_loaded(120)
        bare = LEXER.rstrip(" ")  # the same prompt text once the space is left off
        service.complete(bare, len(bare), path="lexer.py")
        healed = service.complete(LEXER, len(LEXER), path="lexer.py")
        assert "cache" not in healed.timings and healed.text[:1].isalpha()
        again = service.complete(LEXER, len(LEXER), path="lexer.py")
        assert again.timings.get("cache") == "memory" and again.text == healed.text
    finally:
        service.close()

"""Model-free parts of the actions: the cheap list, targets, edits, doc formats, chat templates."""

from __future__ import annotations

import time

from codeassist_lsp.actions.edits import Replacement, doc_text, format_doc, minimal, verify_replacement
from codeassist_lsp.actions.prompts import apply_chat_template, doc_style, review_texts
from codeassist_lsp.actions.runner import Candidate, HoverCache, score_candidates
from codeassist_lsp.actions.targets import ActionTarget, DocumentView, hover_target, list_actions
from codeassist_lsp.context.languages import language_for
from codeassist_lsp.engine.base import GenerationResult
from codeassist_lsp.verify import SecurityPolicy

PY = '''import os


def is_even(n):
    """Return True when n is even."""


def total(values):
    result = 0
    for v in values:
        result += v
    return result
'''


def view(text: str, language: str = "python") -> DocumentView:
    return DocumentView.of("file:///t", text, 3, language)


def test_list_is_cheap_and_complete() -> None:
    doc = view(PY)
    offset = PY.index("is even")
    started = time.perf_counter()
    for _ in range(100):
        actions = list_actions(doc, offset, offset, [(PY.index("result +="), PY.index("result +=") + 6, "bad")])
    assert (time.perf_counter() - started) / 100 < 0.01  # well under 10 ms each
    kinds = {a.target.action for a in actions}
    assert kinds == {"fix", "generate"}
    generate = next(a for a in actions if a.target.action == "generate")
    assert generate.target.start == PY.index('even."""') + len('even."""') and generate.target.version == 3
    selection = list_actions(doc, PY.index("    result = 0"), PY.index("    return result"), [])
    presets = {a.target.preset for a in selection if a.target.action == "refactor"}
    assert presets == {"simplify", "idiomatic", "async", "extract"}
    assert any(a.target.action == "explain" for a in selection)
    assert any(a.target.action == "docstring" and a.target.name == "total" for a in selection)
    only = list_actions(doc, offset, offset, [(0, 1, "x")], only=["quickfix"])
    assert [a.kind for a in only] == ["quickfix"]


def test_target_roundtrips_through_data() -> None:
    target = ActionTarget("refactor", "file:///a.py", 7, 1, 5, preset="simplify")
    assert ActionTarget.from_data(target.to_data()) == target
    assert ActionTarget.from_data({"other": 1}) is None


def test_comment_generation_and_docstring_targets_in_other_languages() -> None:
    js = "// return the larger of a and b\n\nfunction add(a, b) {\n  return a + b;\n}\n"
    doc = view(js, "javascript")
    generate = [a for a in list_actions(doc, 5, 5, []) if a.target.action == "generate"]
    assert generate and generate[0].target.start == js.index("\n")
    docstring = [a for a in list_actions(doc, js.index("a + b"), js.index("a + b"), []) if a.target.action == "docstring"]
    assert docstring and docstring[0].target.start == js.index("function") and docstring[0].target.name == "add"
    go = "// Add adds.\nfunc Add(a int) int { return a }\n"
    assert not [a for a in list_actions(view(go, "go"), go.index("return"), go.index("return"), [])
                if a.target.action == "docstring"]


def test_minimal_edit_trims_common_text() -> None:
    text = "x = compute(a, b)\n"
    change = minimal(text, Replacement(0, len(text), "x = compute(a, c)\n"))
    assert (change.start, change.end, change.new_text) == (text.index("b"), text.index("b") + 1, "c")


def test_replacement_verification_rejects_broken_and_insecure_code() -> None:
    python = language_for("python")
    policy = SecurityPolicy()
    text = "def f(x):\n    return x\n"
    good = verify_replacement(text, Replacement(text.index("x\n"), text.index("x\n") + 1, "x + 1"), python, policy)
    assert good.accepted and "syntax" in good.verdict.checks
    broken = verify_replacement(text, Replacement(text.index("x\n"), text.index("x\n") + 1, "x +"), python, policy)
    assert not broken.accepted
    insecure = verify_replacement(text, Replacement(text.index("x\n"), text.index("x\n") + 1, "eval(x)"), python, policy)
    assert not insecure.accepted or insecure.verdict.findings
    paren = text.index(")")
    deletion = verify_replacement(text, Replacement(paren, paren + 1, ""), python, policy)
    assert not deletion.accepted and "syntax" in deletion.reason  # removing code can break it too
    colon = text.index(":")
    removed = verify_replacement(text, Replacement(colon, colon + 1, ""), python, policy)
    assert not removed.accepted
    blank = "def f(x):\n    return x\n\n\n"
    tidy = verify_replacement(blank, Replacement(len(blank) - 2, len(blank), ""), python, policy)
    assert tidy.accepted


def test_doc_comment_conventions() -> None:
    lines = doc_text(" * Add two numbers.\n * @param a first\n */")
    assert lines == ["Add two numbers.", "@param a first"]
    js = language_for("javascript")
    assert format_doc(lines, doc_style(js), "  ", js) == "  /**\n   * Add two numbers.\n   * @param a first\n   */\n"
    rust = language_for("rust")
    assert format_doc(["Adds."], doc_style(rust), "", rust) == "/// Adds.\n"
    python = language_for("python")
    assert format_doc(["Adds."], doc_style(python), "    ", python) == '    """Adds."""\n'
    csharp = language_for("csharp")
    assert "/// <summary>" in format_doc(["Adds."], doc_style(csharp), "", csharp)


def test_chat_template_is_applied_by_llama_cpp() -> None:
    chatml = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
              "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    rendered = apply_chat_template(chatml, (("system", "be brief"), ("user", "hi")))
    assert rendered is not None
    assert "<|im_start|>user\nhi<|im_end|>" in rendered and rendered.endswith("<|im_start|>assistant\n")


def test_best_of_n_prefers_verified_confident_candidates() -> None:
    python = language_for("python")
    text = "def f(x):\n    pass\n"

    def candidate(code: str, logprobs: list[float], reason: str = "stop") -> Candidate:
        checked = verify_replacement(text, Replacement(text.index("pass"), text.index("pass") + 4, code),
                                     python, SecurityPolicy())
        return Candidate(GenerationResult(text=code, token_logprobs=logprobs, finish_reason=reason), checked)

    cands = [candidate("return x +", [-0.01]), candidate("return x * 2", [-0.5]),
             candidate("return x + 1", [-0.3], "length"), candidate("return x - 1", [-0.7])]
    score_candidates(cands)
    assert cands[0].score == float("-inf")
    assert max(cands, key=lambda c: c.score) is cands[1]


def test_best_of_n_reviewer_and_greedy_margin() -> None:
    python = language_for("python")
    text = "def f(x):\n    pass\n"

    def candidate(code: str, coder: float, reviewer: float | None, index: int) -> Candidate:
        checked = verify_replacement(text, Replacement(text.index("pass"), text.index("pass") + 4, code),
                                     python, SecurityPolicy())
        return Candidate(GenerationResult(text=code, token_logprobs=[coder]), checked, index=index, reviewer=reviewer)

    def chosen(cands: list[Candidate]) -> int:
        score_candidates(cands)
        return max(cands, key=lambda c: c.score).index

    # The sample explains the docstring clearly better (reviewer) than the greedy answer: it wins.
    assert chosen([candidate("return x + 1", -0.30, -1.00, 0), candidate("return x * 2", -0.35, -0.80, 1)]) == 1
    # Only slightly better, within the greedy margin: greedy stays.
    assert chosen([candidate("return x + 1", -0.30, -1.00, 0), candidate("return x * 2", -0.35, -0.95, 1)]) == 0
    # A candidate without a reviewer score makes the reviewer term count for none (comparable scores).
    assert chosen([candidate("return x + 1", -0.30, None, 0), candidate("return x * 2", -0.35, -0.10, 1)]) == 0


def test_review_texts_put_the_docstring_after_the_code() -> None:
    header = 'def f(x):\n    """Double x.\n\n    >>> f(2)\n    4\n    """'
    context, scored = review_texts(header, "\n    return 2 * x", language_for("python"))
    assert context.startswith("def f(x):\n    return 2 * x\n") and "Double" not in context
    assert scored == '"""Double x.\n\n>>> f(2)\n4\n"""\n'
    context, scored = review_texts("// add a and b", "int add(int a, int b) { return a + b; }", language_for("c"))
    assert context.startswith("int add(") and scored == "// add a and b\n"


def test_hover_targets_definitions_and_calls_only() -> None:
    doc = view(PY)
    on_name = hover_target(doc, PY.index("total") + 2)
    assert on_name is not None and on_name.kind == "definition" and on_name.name == "total"
    assert on_name.start == PY.index("def total")
    assert hover_target(doc, PY.index("result = 0") + 1) is None
    call = "print(total([1, 2]))\n"
    target = hover_target(view(call), 2)
    assert target is not None and target.kind == "call" and target.code == call.strip()
    assert HoverCache.key("m", "python", on_name) == HoverCache.key("m", "python", on_name)

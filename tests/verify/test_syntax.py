"""Syntax check: splice, reparse, cut back or drop; incomplete code at the end is not an error."""

from __future__ import annotations

import pytest

from codeassist_lsp.context.languages import language_for
from codeassist_lsp.verify import verify_suggestion
from codeassist_lsp.verify.syntax import check_syntax


def _at_end(language_id: str, document: str, suggestion: str):  # type: ignore[no-untyped-def]
    return check_syntax(language_for(language_id), document, len(document), suggestion)


@pytest.mark.parametrize(
    ("language_id", "document", "suggestion"),
    [
        ("python", "def f(x):\n    ", "return x + 1"),
        ("javascript", "function f(a) {\n  ", "return a + 1;\n}"),
        ("c", "int main() {\n  ", "int x = 1;\n  return x;\n}"),
        ("go", "package main\nfunc main() {\n\t", "x := 1\n\t_ = x\n}"),
        ("rust", "fn main() {\n    let x = ", "5;\n}"),
        ("java", "class A {\n  void f() {\n    ", "int x = 1;\n  }\n}"),
        ("csharp", "class A {\n  void F() {\n    ", "var x = 1;\n  }\n}"),
        ("ruby", "def f(x)\n  ", "x + 1\nend"),
        ("php", "<?php\nfunction f($x) {\n  ", "return $x + 1;\n}"),
    ],
)
def test_valid_suggestion_passes(language_id: str, document: str, suggestion: str) -> None:
    result = _at_end(language_id, document, suggestion)
    assert result.status == "ok"
    assert result.text == suggestion


@pytest.mark.parametrize(
    ("language_id", "document", "suggestion", "expected"),
    [
        ("python", "def f(x):\n    ", "return x + 1)\nprint(2)", "return x + 1"),
        ("python", "def f(x):\n    ", "y = x * 2\n    return y))", "y = x * 2\n    return y"),
        ("c", "int main() {\n  ", "int x = 1;\n  return x;\n}}}", "int x = 1;\n  return x;\n}"),
        ("javascript", "function f(a) {\n  ", "return a + ;;) {", "return a"),
    ],
)
def test_broken_suggestion_is_cut_back(language_id: str, document: str, suggestion: str, expected: str) -> None:
    result = _at_end(language_id, document, suggestion)
    assert result.status == "cut"
    assert result.text == expected


@pytest.mark.parametrize(
    ("language_id", "document", "suggestion"),
    [
        ("python", "def f(x):\n    return x\n", "    ))))"),
        ("java", "class A {\n  void f() {\n    ", "int x = 1 +;\n"),
    ],
)
def test_hopeless_suggestion_is_dropped(language_id: str, document: str, suggestion: str) -> None:
    result = _at_end(language_id, document, suggestion)
    assert result.status == "dropped"
    assert result.text == ""


@pytest.mark.parametrize(
    ("language_id", "document", "suggestion"),
    [
        ("python", "x = 1\n", "def g(a):"),  # block body comes next
        ("python", "for i in ", "range(10):"),  # the line was already incomplete
        ("javascript", "function f(a) {\n  ", "if (a) {"),  # file already open at the end
        ("c", "int main() {\n  int x = ", "foo(1, 2);"),  # mid-statement in an unclosed function
    ],
)
def test_incomplete_at_end_is_not_an_error(language_id: str, document: str, suggestion: str) -> None:
    assert _at_end(language_id, document, suggestion).status == "ok"


def test_cut_respects_the_suffix() -> None:
    document = "def f(x):\n    \n\nprint(f(1))\n"
    offset = document.index("    \n") + 4
    result = check_syntax(language_for("python"), document, offset, "return x)")
    assert (result.status, result.text) == ("cut", "return x")


def test_unknown_language_is_reported_not_checked() -> None:
    verdict = verify_suggestion("some text", 9, " more", language=None)
    assert verdict.status == "ok"
    assert "syntax" in verdict.not_checked and "security" in verdict.not_checked
    assert "not checked" in verdict.reason
    assert verdict.checks == ()


def test_errors_far_from_the_cursor_do_not_switch_the_check_off() -> None:
    # Found by the syntax benchmark in zlib's minigzip.c: broken code 100 lines away used to make
    # the checker give up, and an unclosed `if (` was shown unchecked.
    far_away = "".join(f"int f{i}( {{ ]] ;\n" for i in range(8))  # many ERROR nodes, far above
    clean = "".join(f"int g{i}(int x) {{ return x + {i}; }}\n" for i in range(80))
    head = far_away + clean + "int main(int argc, char **argv) {\n    if (argc > 1) return 1;\n    else"
    document = head + "\n    return 0;\n}\n"
    result = check_syntax(language_for("c"), document, len(head), " if ((*argv)[0] == '-' && (*argv)[1]")
    assert result.status in ("cut", "dropped"), result
    # The same broken code right at the cursor still means "too broken to judge".
    near = clean + far_away + "int main(int argc, char **argv) {\n    else"
    assert check_syntax(language_for("c"), near + "\n}\n", len(near), " x = 1;").status == "unchecked"

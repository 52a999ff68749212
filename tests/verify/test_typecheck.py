"""The type-check stage: only the errors an edit introduces, the workspace's config, nothing written into
the workspace, and "not run" (never a block) when the checker is missing. Real mypy and tsserver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeassist_lsp.verify import typecheck
from codeassist_lsp.verify.typecheck import MypyChecker, TypeProblem, check_edit, introduced

ROOT = Path(__file__).resolve().parents[2]
TYPESCRIPT = ROOT / "editors" / "vscode" / "node_modules" / "typescript"

BEFORE = '''def add(a: int, b: int) -> int:
    return a + b


def broken() -> int:
    return "already wrong"


def main():
    return add(1, 2)
'''


@pytest.fixture(autouse=True)
def fresh_checkers(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CODEASSIST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "codeassist-cache"))
    yield
    typecheck.shutdown()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_only_errors_the_edit_introduces_count() -> None:
    # Two lines inserted above the old error shift it; it is not new. The wrong call is.
    after = BEFORE.replace("def broken", "import os\n\n\ndef broken").replace("add(1, 2)", "add(1, '2')")
    check = check_edit(BEFORE, after, language_id="python")
    assert check.ran and check.checker == "mypy"
    assert [p.code for p in check.before] == ["return-value"]
    assert [(p.line, p.code) for p in check.new_errors] == [(12, "arg-type")], check.new_errors
    assert not check.ok and "arg-type" in check.summary()
    clean = check_edit(BEFORE, BEFORE.replace("add(1, 2)", "add(2, 3)"), language_id="python")
    assert clean.ran and clean.ok and not clean.new_errors


def test_wrong_arity_undefined_name_and_missing_attribute_are_new_errors() -> None:
    for changed, code in (("add(1, 2)", "add(1, 2, 3)"), ("return add(1, 2)", "return ad(1, 2)"),
                          ("return add(1, 2)", "return 'x'.uper()")):
        check = check_edit(BEFORE, BEFORE.replace(changed, code), language_id="python")
        assert check.ran and len(check.new_errors) == 1, (code, check.new_errors)


def test_matching_by_message_and_shifted_line() -> None:
    before_text = "a\nb\nc\nd\n"
    after_text = "a\nx\ny\nb\nc\nd\n"
    old = [TypeProblem(2, 0, "c1", "on c"), TypeProblem(0, 0, "c0", "on a")]
    new = [TypeProblem(4, 0, "c1", "on c"), TypeProblem(0, 0, "c0", "on a"), TypeProblem(2, 0, "c2", "on y")]
    assert introduced(before_text, after_text, old, new) == [TypeProblem(2, 0, "c2", "on y")]
    # The same message on a line that did not correspond is new.
    assert introduced(before_text, after_text, old, [TypeProblem(3, 0, "c1", "on c")]) == [TypeProblem(3, 0, "c1", "on c")]
    # Messages that name a line are compared without it.
    moved = [TypeProblem(4, 0, "no-redef", 'Name "f" already defined on line 3')]
    assert introduced(before_text, after_text, [TypeProblem(2, 0, "no-redef", 'Name "f" already defined on line 1')],
                      moved) == []


def test_workspace_config_is_respected(tmp_path: Path) -> None:
    source = "def total(values: list[int]) -> int:\n    return sum(values)\n"
    after = source + "\n\ndef helper(x):\n    return x\n"
    path = tmp_path / "pkg" / "mod.py"
    path.parent.mkdir()
    (path.parent / "__init__.py").write_text("")
    path.write_text(source)
    assert check_edit(source, after, language_id="python", path=str(path), workspace=tmp_path).new_errors == ()
    (tmp_path / "pyproject.toml").write_text("[tool.mypy]\ndisallow_untyped_defs = true\n")
    strict = check_edit(source, after, language_id="python", path=str(path), workspace=tmp_path)
    assert [p.code for p in strict.new_errors] == ["no-untyped-def"], strict.new_errors
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "mypy.ini").write_text("[mypy]\n[mypy-pkg.*]\ndisallow_untyped_defs = True\n")
    assert [p.code for p in check_edit(source, after, language_id="python", path=str(path),
                                       workspace=tmp_path).new_errors] == ["no-untyped-def"]


def test_imports_of_the_workspace_are_followed_and_nothing_is_written_there(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "shapes.py").write_text("def area(width: float, height: float) -> float:\n    return width * height\n")
    path = tmp_path / "main.py"
    source = "from shapes import area\n\n\ndef room() -> float:\n    return area(3, 4)\n"
    path.write_text(source)
    before = snapshot(tmp_path)
    check = check_edit(source, source.replace("area(3, 4)", "area(3)"), language_id="python", path=str(path),
                       workspace=tmp_path)
    assert check.ran and [p.code for p in check.new_errors] == ["call-arg"], check.new_errors
    assert snapshot(tmp_path) == before  # the user's file is untouched and no cache appeared beside it
    assert not (tmp_path / ".mypy_cache").exists()


def test_not_run_when_the_checker_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(typecheck._checkers, "mypy", MypyChecker(python="/nonexistent/python3"))
    check = check_edit(BEFORE, BEFORE.replace("add(1, 2)", "add(1, '2')"), language_id="python")
    assert not check.ran and check.ok and "could not start" in check.reason
    assert "type check not run" in check.summary()
    # No checker for the language at all: not run either.
    assert not check_edit("a", "b", language_id="rust").ran


def test_typescript_not_run_without_typescript(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CODEASSIST_TYPESCRIPT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no tsc
    check = check_edit("let a = 1;\n", "let a: string = 1;\n", language_id="typescript",
                       path=str(tmp_path / "a.ts"), workspace=tmp_path)
    assert not check.ran and check.ok and "TypeScript was not found" in check.reason


@pytest.mark.skipif(not TYPESCRIPT.is_dir() or not any(Path(p, "node").exists() for p in os.environ["PATH"].split(":")),
                    reason="Node.js and the VS Code extension's node_modules (npm ci in editors/vscode) are needed")
def test_typescript_new_errors_and_tsconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEASSIST_TYPESCRIPT", str(TYPESCRIPT))
    source = "export function add(a: number, b: number): number {\n  return a + b;\n}\nconst bad: string = 1;\n"
    path = tmp_path / "src" / "math.ts"
    path.parent.mkdir()
    path.write_text(source)
    before = snapshot(tmp_path)
    check = check_edit(source, source + "export const y = add(1, 'x');\n", language_id="typescript", path=str(path),
                       workspace=tmp_path)
    assert check.ran and check.checker == "tsc"
    assert [p.code for p in check.new_errors] == ["2345"], check.new_errors  # the old error is not counted
    untyped = source + "export function twice(x) {\n  return x * 2;\n}\n"
    assert check_edit(source, untyped, language_id="typescript", path=str(path), workspace=tmp_path).new_errors == ()
    (tmp_path / "tsconfig.json").write_text('{"compilerOptions": {"strict": true}, "include": ["src"]}\n')
    typecheck.shutdown()  # a new project: tsserver reads the new tsconfig
    strict = check_edit(source, untyped, language_id="typescript", path=str(path), workspace=tmp_path)
    assert [p.code for p in strict.new_errors] == ["7006"], strict.new_errors  # implicit any
    assert {k for k in snapshot(tmp_path) if k != "tsconfig.json"} == set(before)


def test_warm_checks_are_fast() -> None:
    import time

    typecheck.check_text("x: int = 1\n", language_id="python", timeout=120)
    started = time.perf_counter()
    for index in range(3):
        check_edit(BEFORE, BEFORE.replace("add(1, 2)", f"add(1, {index})"), language_id="python")
    assert (time.perf_counter() - started) / 3 < 1.0

"""SAST with real bandit and semgrep-core: withheld, flagged, warned, pre-existing findings ignored."""

from __future__ import annotations

import pytest

from codeassist_lsp.context.languages import language_for
from codeassist_lsp.verify import SecurityPolicy, scan_document, stats, verify_suggestion

PY_DOC = "import os\nimport subprocess\n\ndef run(cmd):\n    \n"
C_DOC = "#include <string.h>\nvoid copy(char *src) {\n  char buf[16];\n  \n}\n"
JS_DOC = "function handle(input) {\n  \n}\n"


def _cursor(document: str, marker: str) -> int:
    return document.index(marker) + len(marker)


def test_insecure_python_is_withheld_by_bandit() -> None:
    verdict = verify_suggestion(PY_DOC, _cursor(PY_DOC, "(cmd):\n    "), "subprocess.call(cmd, shell=True)",
                                language=language_for("python"))
    assert verdict.status == "withheld"
    assert verdict.text == ""
    assert "bandit" in verdict.checks
    assert any(f.tool == "bandit" and f.severity == "high" for f in verdict.findings)


def test_clean_python_passes() -> None:
    verdict = verify_suggestion(PY_DOC, _cursor(PY_DOC, "(cmd):\n    "), "return cmd.strip().split()",
                                language=language_for("python"))
    assert verdict.status == "ok"
    assert verdict.findings == ()
    assert {"syntax", "bandit"} <= set(verdict.checks)


@pytest.mark.parametrize("mode", ["inline", "full"])
def test_insecure_c_is_withheld(mode: str) -> None:
    verdict = verify_suggestion(C_DOC, _cursor(C_DOC, "buf[16];\n  "), "strcpy(buf, src);",
                                language=language_for("c"), mode=mode)
    assert verdict.status == "withheld"
    assert any(f.rule_id == "c.unbounded-string-copy" for f in verdict.findings)
    if mode == "full":
        assert "semgrep" in verdict.checks


def test_insecure_js_is_withheld_and_clean_js_passes() -> None:
    js = language_for("javascript")
    bad = verify_suggestion(JS_DOC, _cursor(JS_DOC, "{\n  "), "return eval(input);", language=js)
    good = verify_suggestion(JS_DOC, _cursor(JS_DOC, "{\n  "), "return input.trim();", language=js)
    assert bad.status == "withheld"
    assert good.status == "ok" and good.text == "return input.trim();"


def test_warn_policy_shows_with_finding() -> None:
    verdict = verify_suggestion(C_DOC, _cursor(C_DOC, "buf[16];\n  "), "strcpy(buf, src);",
                                language=language_for("c"), policy=SecurityPolicy(on_high="warn"))
    assert verdict.status == "flagged"
    assert verdict.text == "strcpy(buf, src);"
    assert verdict.findings and verdict.findings[0].severity == "high"


def test_medium_or_low_finding_is_shown_and_reported() -> None:
    verdict = verify_suggestion(C_DOC, _cursor(C_DOC, "buf[16];\n  "), "int r = rand();", language=language_for("c"))
    assert verdict.status == "flagged"
    assert verdict.text == "int r = rand();"
    assert {f.severity for f in verdict.findings} == {"low"}


def test_pre_existing_finding_does_not_block_a_clean_suggestion() -> None:
    document = "#include <string.h>\nvoid copy(char *src) {\n  char buf[16];\n  strcpy(buf, src);\n  \n}\n"
    offset = _cursor(document, "src);\n  ")
    for mode in ("inline", "full"):
        verdict = verify_suggestion(document, offset, "buf[15] = 0;", language=language_for("c"), mode=mode)
        assert verdict.status == "ok", verdict.reason
    py_document = "import os\n\ndef run(cmd):\n    os.system(cmd)\n    \n"
    verdict = verify_suggestion(py_document, _cursor(py_document, "(cmd)\n    "), "return None",
                                language=language_for("python"))
    assert verdict.status == "ok", verdict.reason


def test_same_line_pre_existing_finding_is_not_counted() -> None:
    document = "int f(void) { return rand(); }\n"
    verdict = verify_suggestion(document, len(document) - 1, " /* ok */", language=language_for("c"))
    assert verdict.findings == ()


def test_scan_document_finds_both_tools() -> None:
    findings = scan_document("import pickle\n\ndef load(data):\n    return pickle.loads(data)\n", "python")
    assert any(f.tool == "bandit" for f in findings)
    js_findings = scan_document("const x = eval(userInput);\n", "javascript")
    assert [f.rule_id for f in js_findings] == ["js.eval-non-literal"]
    assert js_findings[0].line == 0


def test_stats_count_verdicts() -> None:
    before = stats().get("verified", 0)
    verify_suggestion(JS_DOC, _cursor(JS_DOC, "{\n  "), "return 1;", language=language_for("javascript"))
    after = stats()
    assert after["verified"] == before + 1
    assert after["status.ok"] >= 1 and "mean_ms" in after


def test_findings_become_diagnostics() -> None:
    from lsprotocol import types

    from codeassist_lsp.features.diagnostics import findings_to_diagnostics

    text = "// ünï\nconst x = eval(userInput);\n"
    diagnostics = findings_to_diagnostics(text, scan_document(text, "javascript"))
    assert len(diagnostics) == 1
    diagnostic = diagnostics[0]
    assert diagnostic.source == "codeassist"
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.range.start == types.Position(line=1, character=10)

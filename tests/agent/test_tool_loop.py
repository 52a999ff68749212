"""The agent's tool loop: the tools and their limits, reading tool calls, and the loop's budgets and
checks, driven by scripted model answers.

The loop tests script the model's answers (`ScriptedModel`) because what they check needs answers the
real model gives only sometimes or never on demand: broken JSON, garbage, an edit with a syntax error,
a model that never finishes. No test here loads a model; the chat templates are read from the
installed GGUF files' metadata when they are there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from codeassist_lsp.actions.prompts import ActionPrompt
from codeassist_lsp.agent.loop import (
    ChatFormat, LoopBudget, MalformedCall, Message, ToolCall, ToolLoop, chat_format, json_object, parse_tool_call,
)
from codeassist_lsp.agent.run import Agent, find_tests
from codeassist_lsp.agent.tools import ToolLimits, Toolbox, locate, tool_schemas
from codeassist_lsp.agent.workspace import StagedWorkspace
from codeassist_lsp.config import AgentSettings, parse_settings, settings_to_wire
from codeassist_lsp.context.symbols import Definition
from codeassist_lsp.engine.models import installed_model_path

# A small tool-calling template in the Hermes style (written for this test, not any model's):
# tools in the system turn, calls as <tool_call> JSON, results as <tool_response> in a user turn.
HERMES_STYLE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}{{ '<|im_start|>system\\n' + message.content }}"
    "{%- if tools %}{{ '\\n<tools>' }}{% for tool in tools %}{{ '\\n' + tool | tojson }}{% endfor %}"
    "{{ '\\n</tools>\\nCall a tool as <tool_call>\\n{\"name\": ..., \"arguments\": ...}\\n</tool_call>' }}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' and message.tool_calls %}{{ '<|im_start|>assistant' }}"
    "{%- for call in message.tool_calls %}{{ '\\n<tool_call>\\n{\"name\": \"' + call.function.name + '\", "
    "\"arguments\": ' + call.function.arguments | tojson + '}\\n</tool_call>' }}{% endfor %}{{ '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}{{ '<|im_start|>user\\n<tool_response>\\n' + message.content + "
    "'\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


class FakeBackend:
    """What the loop asks of a backend: its chat template and a token count (4 characters a token)."""

    def __init__(self, template: str | None) -> None:
        self.template = template

    def chat_template(self) -> str | None:
        return self.template

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1


class ScriptedModel:
    """A Generate that answers from a script (what the real model cannot be made to answer on demand)."""

    def __init__(self, answers: list[str], template: str | None = HERMES_STYLE, delay_s: float = 0.0) -> None:
        self.answers = list(answers)
        self.prompts: list[ActionPrompt] = []
        self.backend = FakeBackend(template)
        self.delay_s = delay_s

    async def __call__(self, prompt: ActionPrompt, max_tokens: int) -> str:
        self.prompts.append(prompt)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        answer = self.answers.pop(0) if self.answers else '{"name": "list_files", "arguments": {}}'
        # As the engine does: the answer continues the primer (a scripted whole call drops what the
        # primer already wrote) and ends before the first stop string.
        primed = prompt.primer.split("<tool_call>\n", 1)[-1]
        if primed and answer.startswith(primed):
            answer = answer[len(primed):]
        cuts = [answer.find(stop) for stop in prompt.stop if stop and stop in answer]
        return answer[:min(cuts)] if cuts else answer


def call(name: str, **arguments: Any) -> str:
    """A well-formed answer after the <tool_call> primer."""
    return json.dumps({"name": name, "arguments": arguments}) + "\n"


CALC = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return add(x, x)\n"
TEST_CALC = "from calc import add, double\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_double():\n    assert double(4) == 8\n"


def project(tmp_path: Path) -> Path:
    """A small Python project with a bug its tests show, ignored files, and a folder the policy hides."""
    root = tmp_path / "proj"
    (root / "build").mkdir(parents=True)
    (root / "private").mkdir()
    (root / "calc.py").write_text(CALC)
    (root / "report.py").write_text("from calc import double\n\n\ndef report(values):\n"
                                    "    return [double(v) for v in values]\n")
    (root / "test_calc.py").write_text(TEST_CALC)
    (root / ".gitignore").write_text("build/\ngenerated_*.py\n")
    (root / "build" / "out.py").write_text("def add(a, b):\n    return 0\n")
    (root / "generated_table.py").write_text("TABLE = {}\n")
    (root / "private" / "keys.py").write_text("def add_key():\n    return 'k'\n")
    (root / "notes.txt").write_text("add notes\n")
    return root


def disk(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def toolbox(root: Path, **kwargs: Any) -> Toolbox:
    kwargs.setdefault("allows", lambda path: not path.startswith("private/"))
    return Toolbox(StagedWorkspace(root), **kwargs)


# -- the tools -------------------------------------------------------------------------------------

def test_list_files_respects_gitignore_the_policy_and_its_limit(tmp_path: Path) -> None:
    root = project(tmp_path)
    listed = toolbox(root).call("list_files", {}).text
    assert "calc.py (6 lines)" in listed and "report.py" in listed and "test_calc.py" in listed
    for hidden in ("build/out.py", "generated_table.py", "private/keys.py", "notes.txt", ".gitignore"):
        assert hidden not in listed
    for number in range(30):
        (root / f"mod{number:02}.py").write_text("x = 1\n")
    limited = toolbox(root, limits=ToolLimits(max_list_files=5)).call("list_files", {}).text
    assert len(limited.splitlines()) == 6 and "... and 28 more" in limited


def test_read_file_shows_numbered_ranges_cut_at_the_byte_limit(tmp_path: Path) -> None:
    root = project(tmp_path)
    tools = toolbox(root)
    ranged = tools.call("read_file", {"path": "calc.py", "start_line": "5", "end_line": 6}).text
    assert ranged.splitlines() == ["calc.py lines 5-6 of 6:", "5| def double(x):", "6|     return add(x, x)"]
    (root / "long.py").write_text("".join(f"value_{n} = {n}\n" for n in range(500)))
    cut = toolbox(root, limits=ToolLimits(max_read_bytes=200)).call("read_file", {"path": "long.py"})
    assert len(cut.text) < 400 and "read on with start_line=" in cut.text
    missing = tools.call("read_file", {"path": "calcs.py"})
    assert not missing.ok and "Did you mean calc.py" in missing.text
    for hidden in ("private/keys.py", "build/out.py"):
        assert "not a source file" in tools.call("read_file", {"path": hidden}).text


def test_search_text_and_symbols_with_a_hit_limit_and_without_hidden_files(tmp_path: Path) -> None:
    root = project(tmp_path)
    tools = toolbox(root, limits=ToolLimits(max_search_hits=2))
    text = tools.call("search", {"query": "add"}).text
    assert text.count("\n") == 2 and "more hits not shown" in text and "private" not in text
    symbol = tools.call("search", {"query": "add", "kind": "symbol"}).text
    assert symbol.startswith("calc.py:1: def add(a, b)") and "build" not in symbol
    assert "no definition" in tools.call("search", {"query": "nothing_here", "kind": "symbol"}).text
    assert not tools.call("search", {"query": "x", "kind": "regex"}).ok


def test_symbol_search_uses_the_workspace_index_and_the_staged_text(tmp_path: Path) -> None:
    root = project(tmp_path)

    class Index:
        def lookup(self, name: str) -> list[Definition]:
            return [Definition(name, "function", str(root / "report.py"), 3, 4, "def report(values):", ""),
                    Definition(name, "function", str(root / "private" / "keys.py"), 0, 1, "def report():", "")]

    tools = toolbox(root, index=Index())
    assert tools.call("search", {"query": "report", "kind": "symbol"}).text == "report.py:4: def report(values):"
    tools.call("propose_edit", {"path": "report.py", "old_text": "def report(values):", "new_text": "def report(values, scale=1):"})
    assert "def report(values, scale=1)" in tools.call("search", {"query": "report", "kind": "symbol"}).text


def test_propose_edit_stages_in_memory_and_never_writes(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = disk(root)
    tools = toolbox(root)
    result = tools.call("propose_edit", {"path": "calc.py", "old_text": "    return a - b\n", "new_text": "    return a + b\n"})
    assert result.ok and "staged" in result.text and "2|     return a + b" in result.text
    assert tools.workspace.read("calc.py") == CALC.replace("a - b", "a + b")
    assert disk(root) == before


def test_propose_edit_refuses_syntax_errors_ambiguity_tests_and_oversize(tmp_path: Path) -> None:
    root = project(tmp_path)
    tools = toolbox(root, limits=ToolLimits(max_edit_bytes=200))
    broken = tools.call("propose_edit", {"path": "calc.py", "old_text": "def add(a, b):", "new_text": "def add(a, b:"})
    assert not broken.ok and "refused" in broken.text and "syntax" in broken.text
    ambiguous = tools.call("propose_edit", {"path": "calc.py", "old_text": "return", "new_text": "yield"})
    assert "occurs 2 times" in ambiguous.text
    test_edit = tools.call("propose_edit", {"path": "test_calc.py", "old_text": "== 5", "new_text": "== -1"})
    assert "test file" in test_edit.text
    assert "too long" in tools.call("propose_edit", {"path": "calc.py", "old_text": "x" * 150, "new_text": "y" * 100}).text
    assert "needs new_text" in tools.call("propose_edit", {"path": "calc.py", "old_text": "a"}).text
    assert tools.workspace.changed() == {}
    allowed = toolbox(root, edit_tests=True).call("propose_edit", {"path": "test_calc.py", "old_text": "== 5",
                                                                   "new_text": "== 5.0"})
    assert allowed.ok


def test_edit_locates_reindented_and_numbered_copies_of_the_lines() -> None:
    text = "class A:\n    def f(self):\n        return 1\n"
    start, end, new = locate(text, "def f(self):\n    return 1", "def f(self):\n    return 2")
    assert text[:start] + new + text[end:] == "class A:\n    def f(self):\n        return 2\n"
    start, end, new = locate(text, "3|         return 1", "3|         return 3")
    assert text[:start] + new + text[end:] == "class A:\n    def f(self):\n        return 3\n"


def test_run_tests_runs_the_staged_files_in_the_sandbox_a_limited_number_of_times(tmp_path: Path) -> None:
    from codeassist_lsp.agent.run import run_tests

    root = project(tmp_path)
    workspace = StagedWorkspace(root)
    command = find_tests(workspace)
    assert command is not None

    def tests(staged: StagedWorkspace) -> tuple[bool, str, str]:
        run = run_tests(staged, command, staged=True)
        return run.passed, run.summary, run.output

    tools = Toolbox(workspace, tests=tests, limits=ToolLimits(max_test_runs=2))
    failing = tools.call("run_tests", {})
    assert not failing.ok and "FAILED" in failing.text and "assert" in failing.text
    tools.call("propose_edit", {"path": "calc.py", "old_text": "return a - b", "new_text": "return a + b"})
    assert tools.last_tests_passed is None  # the edits changed since the last run
    assert tools.call("run_tests", {}).text.startswith("tests passed: 2 passed")
    assert tools.last_tests_passed is True and (root / "calc.py").read_text() == CALC
    assert "already ran 2 times" in tools.call("run_tests", {}).text
    assert "no tests" in toolbox(root).call("run_tests", {}).text


def test_the_tool_registry_describes_every_tool_as_json_schema() -> None:
    schemas = tool_schemas()
    assert [s["function"]["name"] for s in schemas] == ["list_files", "read_file", "search", "propose_edit",
                                                        "run_tests", "finish"]
    for schema in schemas:
        parameters = schema["function"]["parameters"]
        assert parameters["type"] == "object" and set(parameters["required"]) <= set(parameters["properties"])
        json.dumps(schema)


# -- reading tool calls ----------------------------------------------------------------------------

def test_parses_the_qwen_tool_call_format() -> None:
    answer = '<tool_call>\n{"name": "read_file", "arguments": {"path": "calc.py", "start_line": 2}}\n</tool_call>'
    assert parse_tool_call(answer) == ToolCall("read_file", {"path": "calc.py", "start_line": 2})
    code = "def f():\n    return {\"a\": '}'}\n"
    edit = parse_tool_call("<tool_call>\n" + json.dumps({"name": "propose_edit", "arguments": {
        "path": "a.py", "old_text": "x", "new_text": code}}))  # the stop string cut </tool_call>
    assert edit.arguments["new_text"] == code and edit.repairs == ()


@pytest.mark.parametrize("answer, expected, repair", [
    ("<tool_call>\n{'name': 'read_file', 'arguments': {'path': 'calc.py'}}\n</tool_call>",
     ToolCall("read_file", {"path": "calc.py"}), "single quotes"),
    ('<tool_call>\n{"name": "search", "arguments": {"query": "add", "kind": "symbol",},}\n</tool_call>',
     ToolCall("search", {"query": "add", "kind": "symbol"}), "dropped trailing commas"),
    ('<tool_call>\n{"name": "propose_edit", "arguments": {"path": "a.py", "old_text": "x = 1", "new_text": "x = 2',
     ToolCall("propose_edit", {"path": "a.py", "old_text": "x = 1", "new_text": "x = 2"}), "closed the unfinished JSON"),
    ('<tool_call>\n{"name": "read_file", "arguments": "{\\"path\\": \\"calc.py\\"}"}\n</tool_call>',
     ToolCall("read_file", {"path": "calc.py"}), "arguments given as a string"),
    ('{"function": {"name": "readFile", "arguments": {"file": "calc.py"}}}',
     ToolCall("read_file", {"path": "calc.py"}), "tool 'readFile' read as read_file"),
    ('```json\n{"name": "finish", "summary": "done", "extra": None}\n```',
     ToolCall("finish", {"summary": "done", "extra": None}), "arguments next to the name"),
    ('<tool_call>\n{"name": "propose_edit", "arguments": {"path": "a.py", "old_text": "a\nb", "new_text": "c"}}',
     ToolCall("propose_edit", {"path": "a.py", "old_text": "a\nb", "new_text": "c"}), None),
])
def test_repairs_malformed_calls(answer: str, expected: ToolCall, repair: str | None) -> None:
    parsed = parse_tool_call(answer)
    assert (parsed.name, parsed.arguments) == (expected.name, expected.arguments)
    assert repair is None or repair in parsed.repairs


@pytest.mark.parametrize("answer, message", [
    ("I will now read the file calc.py and fix the bug.", "no tool call"),
    ('<tool_call>\n{"name": read_file, path = calc.py}\n</tool_call>', "not valid JSON"),
    ('{"name": "delete_everything", "arguments": {}}', "There is no tool 'delete_everything'"),
    ('{"arguments": {"path": "calc.py"}}', "no \"name\""),
    ('{"name": "read_file", "arguments": [1, 2]}', "must be a JSON object"),
])
def test_garbage_is_a_malformed_call_with_a_message_for_the_model(answer: str, message: str) -> None:
    with pytest.raises(MalformedCall, match=message.replace("(", r"\(")):
        parse_tool_call(answer)


def test_json_object_keeps_apostrophes_and_braces_inside_strings() -> None:
    assert json_object('noise {"a": "it\'s {not} a brace", "b": [1, 2]} more') == (
        {"a": "it's {not} a brace", "b": [1, 2]}, [])
    assert json_object("{'a': 'don\\'t', 'b': True}")[0] == {"a": "don't", "b": True}
    assert json_object("no object here") == (None, [])


# -- rendering the conversation --------------------------------------------------------------------

def _conversation() -> list[Message]:
    return [Message("system", "SYSTEM-RULES"), Message("user", "Instruction: fix add"),
            Message("assistant", "", call=ToolCall("read_file", {"path": "calc.py"})),
            Message("tool", "1| def add(a, b):", tool="read_file"),
            Message("assistant", "I think"), Message("user", "ERROR-FOR-MODEL")]


def test_a_template_with_tools_renders_them_and_the_calls_in_its_own_format() -> None:
    rendered_format = chat_format(FakeBackend(HERMES_STYLE))
    assert rendered_format.kind == "tools" and rendered_format.primer == '<tool_call>\n{"name": "'
    prompt = rendered_format.render(_conversation()) or ""
    assert '"name": "propose_edit"' in prompt and "<tool_response>\n1| def add(a, b):" in prompt
    assert '<tool_call>\n{"name": "read_file", "arguments": {"path": "calc.py"}}' in prompt
    assert prompt.endswith('ERROR-FOR-MODEL<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "')


def test_without_a_tool_template_the_json_protocol_is_used() -> None:
    plain = chat_format(FakeBackend(None))
    assert plain.kind == "plain" and plain.primer == '{"name": "'
    prompt = plain.render(_conversation()) or ""
    assert "Result of read_file:\n1| def add(a, b):" in prompt and prompt.endswith('### Assistant\n{"name": "')
    no_tools = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}[assistant]"
    chat = chat_format(FakeBackend(no_tools))
    assert chat.kind == "json"
    rendered = chat.render(_conversation()) or ""
    # user turns merged so roles alternate (some templates raise otherwise)
    assert "[user]Result of read_file:" in rendered and rendered.count("[user]") == 3


def _gguf_chat_template(path: Path) -> str | None:
    """tokenizer.chat_template from a GGUF file's metadata (the header only; no model is loaded)."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            return None
        _version, _tensors, entries = struct.unpack("<IQQ", handle.read(20))

        def string() -> str:
            (length,) = struct.unpack("<Q", handle.read(8))
            return handle.read(length).decode("utf-8", "replace")

        for _ in range(entries):
            key = string()
            (kind,) = struct.unpack("<I", handle.read(4))
            if kind == 8:
                value = string()
                if key == "tokenizer.chat_template":
                    return value
            elif kind == 9:
                item, count = struct.unpack("<IQ", handle.read(12))
                for _ in range(count) if item == 8 else ():
                    string()
                if item != 8:
                    handle.seek(sizes[item] * count, 1)
            else:
                handle.seek(sizes[kind], 1)
    return None


@pytest.mark.parametrize("model, kind", [("qwen2.5-coder-1.5b", "tools"), ("gemma-3-270m", "plain")])
def test_the_installed_models_templates_render_the_loop(model: str, kind: str) -> None:
    path = installed_model_path(model)
    if path is None:
        pytest.skip(f"{model} is not installed")
    template = _gguf_chat_template(path)  # the 270M base model has none
    found = chat_format(FakeBackend(template))
    assert found.kind == kind
    prompt = found.render(_conversation()) or ""
    assert "SYSTEM-RULES" in prompt and "1| def add(a, b):" in prompt and "ERROR-FOR-MODEL" in prompt
    if kind == "tools":  # Qwen2.5: its own tool section, calls and responses
        assert "<tools>" in prompt and "<tool_response>\n1| def add(a, b):\n</tool_response>" in prompt
        assert prompt.endswith('<|im_start|>assistant\n<tool_call>\n{"name": "')


# -- the loop, driven by scripted answers ----------------------------------------------------------

def run_loop(root: Path, model: ScriptedModel, budget: LoopBudget | None = None, **kwargs: Any) -> tuple[ToolLoop, Any]:
    loop = ToolLoop(toolbox(root, **kwargs), model, backend=model.backend, budget=budget or LoopBudget())
    return loop, asyncio.run(loop.run("Make add return the sum"))


def test_scripted_model_stops_at_the_step_budget(tmp_path: Path) -> None:
    model = ScriptedModel([call("list_files")] * 10)
    loop, outcome = run_loop(project(tmp_path), model, LoopBudget(max_steps=3))
    assert not outcome.finished and outcome.steps == 3 and len(model.prompts) == 3
    assert "step budget (3)" in outcome.stopped


def test_scripted_model_stops_at_the_token_budget(tmp_path: Path) -> None:
    model = ScriptedModel([call("read_file", path="calc.py")] * 10)
    loop, first = run_loop(project(tmp_path), model, LoopBudget(max_tokens=100_000))
    spent_per_step = first.tokens // first.steps
    model = ScriptedModel([call("read_file", path="calc.py")] * 10)
    loop, outcome = run_loop(project(tmp_path / "b"), model, LoopBudget(max_tokens=int(spent_per_step * 2.5)))
    assert not outcome.finished and "token budget" in outcome.stopped
    assert 1 <= outcome.steps <= 3 and outcome.tokens <= spent_per_step * 2.5


def test_scripted_model_stops_at_the_time_budget_even_mid_answer(tmp_path: Path) -> None:
    model = ScriptedModel([call("list_files")] * 10, delay_s=0.3)
    started = time.monotonic()
    loop, outcome = run_loop(project(tmp_path), model, LoopBudget(deadline=time.monotonic() + 0.5))
    assert "time budget" in outcome.stopped and outcome.steps == 2 and time.monotonic() - started < 2


def test_scripted_model_is_told_a_malformed_call_once_and_it_counts_as_a_step(tmp_path: Path) -> None:
    model = ScriptedModel(["I'll fix it!", call("finish", summary="nothing to do")])
    loop, outcome = run_loop(project(tmp_path), model)
    assert outcome.finished and outcome.steps == 2 and outcome.malformed == 1
    assert "Answer with exactly one tool call" in model.prompts[1].text and '{"name": "read_file"' in model.prompts[1].text
    model = ScriptedModel(["garbage", "more garbage", call("finish", summary="x")])
    loop, outcome = run_loop(project(tmp_path / "b"), model)
    assert not outcome.finished and outcome.steps == 2 and "2 times in a row" in outcome.stopped


def test_scripted_model_repeating_a_call_is_told_to_use_the_result_it_has(tmp_path: Path) -> None:
    # Measured with Qwen2.5-Coder 1.5B on js_fix_test: it searched the same two names until its steps ran out.
    model = ScriptedModel([call("search", query="add", kind="symbol")] * 2 + [call("finish", summary="x")])
    loop, outcome = run_loop(project(tmp_path), model)
    assert outcome.finished and outcome.steps == 3
    assert "You already made this call" in model.prompts[2].text
    assert model.prompts[2].text.count("calc.py:1: def add(a, b)") == 1  # the search ran once


def test_scripted_model_shortens_old_results_to_keep_the_prompt_in_budget(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "big.py").write_text("".join(f"value_{n} = {n}\n" for n in range(400)))
    model = ScriptedModel([call("read_file", path="big.py", start_line=line) for line in range(1, 6)]
                          + [call("finish", summary="read")])
    loop, outcome = run_loop(root, model, LoopBudget(max_prompt_tokens=3000))
    assert outcome.finished
    assert max(FakeBackend(None).count_tokens(p.text) for p in model.prompts) <= 3000
    assert "[older result shortened" in model.prompts[-1].text


def test_scripted_model_edits_are_staged_and_tests_see_them_then_the_agent_checks_and_offers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="codeassist_lsp.agent.run")
    root = project(tmp_path)
    before = disk(root)
    model = ScriptedModel([
        '"operation": "edit", "files": ["calc.py"]}',  # the JSON plan, after its "{" primer
        call("search", query="add", kind="symbol"),
        call("read_file", path="calc.py", start_line=1, end_line=2),
        call("propose_edit", path="calc.py", old_text="return a - b", new_text="return a + b"),
        call("run_tests"),
        call("finish", summary="add returns the sum"),
    ])
    checked: list[list[str]] = []
    original_check = Agent._check

    def spy(agent: Agent) -> None:
        checked.append(sorted(agent.workspace.changed()))
        original_check(agent)

    monkeypatch.setattr(Agent, "_check", spy)
    agent = Agent(StagedWorkspace(root), model, settings=AgentSettings(tool_loop=True))
    result = asyncio.run(agent.run("Make add return the sum of its arguments"))
    assert checked == [["calc.py"]]
    assert sorted(result.changes) == ["calc.py"] and result.changes["calc.py"].new_text.strip() == "+"
    assert result.plan["operation"] == "tool_loop" and result.plan["finished"] and result.plan["steps"] == 5
    assert result.tests_before is not None and not result.tests_before.passed
    assert result.tests_after is not None and result.tests_after.passed
    assert "tests passed: 2 passed" in model.prompts[5].text  # the loop's own run saw the staged edit
    assert any("propose_edit" in line for line in result.transcript)
    assert "step 3/12: propose_edit(path='calc.py'" in caplog.text  # every step goes to the log too
    assert result.summary.startswith("Changed calc.py (add returns the sum)")
    assert disk(root) == before


def test_scripted_model_edit_with_a_syntax_error_is_refused_and_nothing_offered(tmp_path: Path) -> None:
    root = project(tmp_path)
    model = ScriptedModel([
        '"operation": "edit", "files": ["calc.py"]}',
        call("propose_edit", path="calc.py", old_text="def add(a, b):\n    return a - b",
             new_text="def add(a, b)\n    return a + b"),
        call("finish", summary="fixed"),
        call("finish", summary="fixed"),
    ])
    result = asyncio.run(Agent(StagedWorkspace(root), model, settings=AgentSettings(tool_loop=True)).run(
        "Make add return the sum of its arguments"))
    assert "refused" in model.prompts[2].text and "syntax" in model.prompts[2].text
    # A first finish with nothing changed while the tests fail is answered "not finished", once.
    assert "Not finished: nothing is changed yet" in model.prompts[3].text
    assert result.changes == {} and "changed no file" in result.summary


def test_scripted_model_finishing_with_failing_tests_is_offered_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    model = ScriptedModel([
        '"operation": "edit", "files": ["calc.py"]}',
        call("propose_edit", path="calc.py", old_text="return add(x, x)", new_text="return add(x, 1)"),
        call("finish", summary="changed double"),
    ])
    result = asyncio.run(Agent(StagedWorkspace(root), model, settings=AgentSettings(tool_loop=True)).run(
        "Make add return the sum of its arguments"))
    assert result.changes == {} and "tests fail with the change" in result.summary


def test_scripted_model_cut_off_by_its_budget_offers_nothing_unless_its_tests_passed(tmp_path: Path) -> None:
    root = project(tmp_path)
    edit = call("propose_edit", path="calc.py", old_text="return a - b", new_text="return a + b")
    plan = '"operation": "edit", "files": ["calc.py"]}'
    settings = AgentSettings(tool_loop=True, max_steps=2)
    cut = asyncio.run(Agent(StagedWorkspace(root), ScriptedModel([plan, edit, call("list_files")]),
                            settings=settings).run("Make add return the sum"))
    assert cut.changes == {} and "did not finish" in cut.summary and "step budget" in cut.summary
    tested = asyncio.run(Agent(StagedWorkspace(root), ScriptedModel([plan, edit, call("run_tests")]),
                               settings=settings).run("Make add return the sum"))
    assert sorted(tested.changes) == ["calc.py"] and tested.tests_after is not None and tested.tests_after.passed


def test_with_the_tool_loop_on_a_rename_is_still_done_without_the_model(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "calc.py").write_text(CALC.replace("a - b", "a + b"))  # the tests pass before and after
    result = asyncio.run(Agent(StagedWorkspace(root), None, settings=AgentSettings(tool_loop=True)).run(
        "Rename add to plus"))
    assert result.plan["operation"] == "rename" and result.model_calls == 0
    assert sorted(result.changes) == ["calc.py", "test_calc.py"]


def test_the_json_protocol_loop_for_models_without_a_tool_template(tmp_path: Path) -> None:
    model = ScriptedModel(['list_files", "arguments": {}}', "finish\", 'arguments': {'summary': 'ok'}}"],
                          template=None)
    loop, outcome = run_loop(project(tmp_path), model)
    assert outcome.finished and outcome.repaired == 1 and loop.format == ChatFormat("plain", None, '{"name": "', ("\n### ",))
    assert "Answer with exactly one JSON object" in model.prompts[0].text and "propose_edit(path, old_text, new_text)" in model.prompts[0].text


def test_agent_settings_are_read_from_the_wire() -> None:
    settings = parse_settings({"agent": {"toolLoop": True, "maxSteps": 8, "tokenBudget": 20000}})
    assert settings.agent == AgentSettings(tool_loop=True, max_steps=8, token_budget=20000)
    assert settings_to_wire(settings)["agent"] == {"toolLoop": True, "maxSteps": 8, "tokenBudget": 20000}

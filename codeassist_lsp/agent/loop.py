"""The agent's tool loop: the model finds, reads and changes code through tools, within hard budgets.

Each step renders the conversation with the model's own chat template, asks the quality model for one
tool call, runs it (`tools.Toolbox`) and appends the result. A template that renders `tools` (Qwen2.5's
does) gets the tool descriptions through it and the model answers in its own call format
(`<tool_call>{"name": ..., "arguments": ...}</tool_call>`); other models get a strict JSON protocol
in the system message. Broken calls are repaired where that is unambiguous; otherwise the model is
told what was wrong and asked again (a step of its budget). Budgets: steps, tokens (every prompt and
answer), time; the context stays small (file signatures rather than files, old results shortened).
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import attrs

from codeassist_lsp.actions.prompts import ActionPrompt, apply_chat_template, chat_template_of
from codeassist_lsp.agent.tools import TOOLS, Toolbox, tool_schemas
from codeassist_lsp.errors import CodeassistError

log = logging.getLogger(__name__)

MAX_ANSWER_TOKENS = 768
"""One answer: a tool call, and an edit's old and new lines."""
MAX_PROMPT_TOKENS = 3200
"""The rendered conversation; the quality model's context is 4096 tokens by default."""
KEEP_RECENT = 2
"""The latest tool results are shortened last (the model is working with them); the very last never."""
MAX_MALFORMED_IN_A_ROW = 2
"""The model is told once what was wrong with its call; a second broken answer in a row ends the loop."""
SUMMARY_CHARS = 2400
RESULT_CHARS = 6500
"""A tool result as it enters the conversation (the tools' own limits keep most far below)."""

# Asks the quality model for text: (prompt, max_tokens) -> text.
Generate = Callable[[ActionPrompt, int], Awaitable[str]]
Say = Callable[[str], None]


class MalformedCall(CodeassistError):
    """A model answer with no usable tool call; `message` is what the model is told."""


@attrs.frozen
class ToolCall:
    """One tool call read from a model answer, and what had to be repaired to read it."""

    name: str
    arguments: dict[str, Any]
    repairs: tuple[str, ...] = ()


@attrs.frozen
class LoopBudget:
    """Hard limits of one run of the loop."""

    max_steps: int = 12
    max_tokens: int = 40000
    """Prompt and answer tokens summed over every model call (a re-sent prompt counts again)."""
    deadline: float = math.inf
    """time.monotonic() after which no model call starts and a running one is cancelled."""
    max_answer_tokens: int = MAX_ANSWER_TOKENS
    max_prompt_tokens: int = MAX_PROMPT_TOKENS


@attrs.define
class LoopOutcome:
    """How the loop ended: `finished` when the model called finish, else `stopped` says why."""

    finished: bool = False
    stopped: str = ""
    summary: str = ""
    steps: int = 0
    tokens: int = 0
    malformed: int = 0
    repaired: int = 0


# -- reading tool calls ----------------------------------------------------------------------------

_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCED = re.compile(r"```(?:json)?\s*\n(.*?)(?:```|$)", re.S)
_NAME_KEYS = ("name", "tool", "function", "tool_name", "action")
_ARGUMENT_KEYS = ("arguments", "args", "parameters", "params", "input", "action_input")
_TOOL_ALIASES = {"open_file": "read_file", "read": "read_file", "cat": "read_file", "view_file": "read_file",
                 "grep": "search", "find": "search", "search_code": "search", "find_symbol": "search",
                 "edit": "propose_edit", "edit_file": "propose_edit", "replace": "propose_edit",
                 "apply_edit": "propose_edit", "ls": "list_files", "list": "list_files", "list_dir": "list_files",
                 "test": "run_tests", "tests": "run_tests", "pytest": "run_tests", "done": "finish",
                 "submit": "finish", "final_answer": "finish", "stop": "finish"}
_ARGUMENT_ALIASES = {"file": "path", "filename": "path", "file_path": "path", "filepath": "path",
                     "start": "start_line", "end": "end_line", "from_line": "start_line", "to_line": "end_line",
                     "pattern": "query", "text": "query", "name": "query", "symbol": "query", "type": "kind",
                     "old": "old_text", "search": "old_text", "original": "old_text", "old_string": "old_text",
                     "new": "new_text", "replacement": "new_text", "replace": "new_text", "new_string": "new_text",
                     "message": "summary", "result": "summary", "directory": "folder", "dir": "folder"}


def parse_tool_call(text: str, names: Collection[str] = TOOLS) -> ToolCall:
    """The first tool call in a model answer (its <tool_call> format or bare JSON), repaired where small
    models break it; MalformedCall saying what to fix otherwise."""
    match = _TOOL_CALL.search(text)
    fragment = match.group(1) if match else text
    fenced = _FENCED.search(fragment)
    if fenced and "{" in fenced.group(1):
        fragment = fenced.group(1)
    found, repairs = json_object(fragment)
    if found is None:
        raise MalformedCall("Your answer holds no tool call (a JSON object with \"name\" and \"arguments\")."
                            if "{" not in fragment else
                            "Your tool call is not valid JSON (strings in double quotes, quotes and newlines "
                            "inside strings escaped as \\\" and \\n).")
    name, arguments, more = _call_parts(found)
    repairs += more
    if not isinstance(name, str) or not name.strip():
        raise MalformedCall("Your tool call has no \"name\": say which tool to call.")
    tool, renamed = _tool_name(name.strip(), names)
    if tool is None:
        raise MalformedCall(f"There is no tool {name!r}. The tools are: {', '.join(names)}.")
    if renamed:
        repairs.append(renamed)
    if tool in TOOLS:
        arguments, more = _argument_names(arguments, TOOLS[tool].parameters["properties"])
        repairs += more
    return ToolCall(tool, arguments, tuple(repairs))


def json_object(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The first JSON object in text and the repairs it needed (closed braces, trailing commas,
    Python literals, single quotes); (None, []) when there is none."""
    start = text.find("{")
    if start < 0:
        return None, []
    body, closed = _balanced(text[start:])
    repairs = [] if closed else ["closed the unfinished JSON"]
    decoder = json.JSONDecoder(strict=False)  # raw newlines and tabs inside strings are common
    steps: list[tuple[str, Callable[[str], str]]] = [
        ("", lambda s: s),
        ("dropped trailing commas", lambda s: _outside_strings(s, lambda part: re.sub(r",(\s*[}\]])", r"\1", part))),
        ("Python literals", lambda s: _outside_strings(s, _json_literals)),
        ("single quotes", _requote),
    ]
    candidate = body
    for label, repair in steps:
        fixed = repair(candidate)
        if label and fixed == candidate:
            continue
        candidate = fixed
        if label:
            repairs.append(label)
        try:
            found, _end = decoder.raw_decode(candidate)
        except ValueError:
            continue
        return (found, repairs) if isinstance(found, dict) else (None, [])
    return None, []


def _balanced(text: str) -> tuple[str, bool]:
    """The text up to where its first bracket closes (strings respected), or all of it closed by force."""
    stack: list[str] = []
    quote = ""
    escaped = False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if stack and stack[-1] == char:
                stack.pop()
            if not stack:
                return text[:index + 1], True
    tail = text.rstrip()
    if tail.endswith(","):
        tail = tail[:-1]
    return tail + quote + "".join(reversed(stack)), False


def _outside_strings(text: str, change: Callable[[str], str]) -> str:
    """Apply `change` to the parts of JSON-ish text outside string literals."""
    parts = re.split(r'("(?:\\.|[^"\\])*"?)', text, flags=re.S)
    return "".join(part if index % 2 else change(part) for index, part in enumerate(parts))


def _json_literals(part: str) -> str:
    return re.sub(r"\b(True|False|None)\b", lambda m: {"True": "true", "False": "false", "None": "null"}[m.group(1)],
                  part)


def _requote(text: str) -> str:
    """Single-quoted strings as JSON strings; double-quoted ones (which may hold apostrophes) kept."""
    out: list[str] = []
    quote = ""
    escaped = False
    for char in text:
        if not quote:
            if char in "\"'":
                quote = char
                out.append('"')
            else:
                out.append(char)
            continue
        if escaped:
            escaped = False
            if char == "'" and quote == "'":
                out[-1] = "'"  # \' needs no escape in a JSON string
            else:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            out.append(char)
        elif char == quote:
            quote = ""
            out.append('"')
        elif char == '"' and quote == "'":
            out.append('\\"')
        else:
            out.append(char)
    return "".join(out)


def _call_parts(found: dict[str, Any]) -> tuple[Any, dict[str, Any], list[str]]:
    """(name, arguments, repairs) from the shapes models use: ours, OpenAI's, flat keys."""
    repairs: list[str] = []
    call = found
    if isinstance(call.get("tool_calls"), list) and call["tool_calls"] and isinstance(call["tool_calls"][0], dict):
        call = call["tool_calls"][0]
    if isinstance(call.get("function"), dict):
        call = call["function"]
    name = next((call[key] for key in _NAME_KEYS if isinstance(call.get(key), str)), None)
    key = next((key for key in _ARGUMENT_KEYS if key in call), None)
    arguments: Any = call.get(key) if key else None
    if isinstance(arguments, str):
        decoded, more = json_object(arguments) if arguments.strip() else ({}, [])
        if decoded is None:
            raise MalformedCall("The \"arguments\" of your tool call must be a JSON object.")
        arguments = decoded
        repairs += ["arguments given as a string", *more]
    if arguments is None:
        arguments = {k: v for k, v in call.items() if k not in _NAME_KEYS}
        if arguments:
            repairs.append("arguments next to the name")
    if not isinstance(arguments, dict):
        raise MalformedCall("The \"arguments\" of your tool call must be a JSON object.")
    return name, arguments, repairs


def _tool_name(name: str, names: Collection[str]) -> tuple[str | None, str]:
    if name in names:
        return name, ""
    key = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name.split(".")[-1]).lower().replace("-", "_").replace(" ", "_")
    key = _TOOL_ALIASES.get(key, key)
    if key not in names:
        close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.75)
        if not close:
            return None, ""
        key = close[0]
    return key, f"tool {name!r} read as {key}"


def _argument_names(arguments: dict[str, Any], properties: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    renamed: dict[str, Any] = {}
    repairs: list[str] = []
    for key, value in arguments.items():
        target = key if key in properties else _ARGUMENT_ALIASES.get(key.lower(), key)
        if target != key and target in properties and target not in arguments:
            repairs.append(f"argument {key} read as {target}")
            renamed[target] = value
        else:
            renamed[key] = value
    return renamed, repairs


# -- the conversation as a prompt -----------------------------------------------------------------

@attrs.define
class Message:
    """One turn; an assistant turn may carry a tool call, a tool turn a result."""

    role: str
    content: str
    call: ToolCall | None = None
    tool: str = ""
    shortened: bool = False


@attrs.frozen
class ChatFormat:
    """How this model's conversation is rendered: "tools" (its template renders the tools and calls),
    "json" (our protocol in its chat template) or "plain" (no template)."""

    kind: str
    template: str | None = None
    primer: str = ""
    stop: tuple[str, ...] = ()

    def render(self, messages: list[Message]) -> str | None:
        """The prompt for the next answer (ending in the primer); None when the template fails."""
        if self.kind == "tools":
            rendered = render_jinja(self.template or "", [_tools_message(m) for m in messages], tool_schemas())
            return None if rendered is None else rendered + self.primer
        chat = _alternating([_json_message(m) for m in messages])
        rendered = None
        if self.template:
            rendered = (render_jinja(self.template, chat, None) if _is_jinja(self.template) else None) \
                or apply_chat_template(self.template, tuple((m["role"], m["content"]) for m in chat))
        if rendered is None:  # no template, or one that fails on these turns: the protocol works in plain text
            rendered = "".join(f"### {m['role'].capitalize()}\n{m['content']}\n\n" for m in chat) + "### Assistant\n"
        return rendered + self.primer

    def example(self) -> str:
        """One well-formed call in this format, for the model's instructions and error messages."""
        call = '{"name": "read_file", "arguments": {"path": "app.py"}}'
        return f"<tool_call>\n{call}\n</tool_call>" if "<tool_call>" in self.primer else call


def _tools_message(message: Message) -> dict[str, Any]:
    if message.call is not None:
        return {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": message.call.name, "arguments": message.call.arguments}}]}
    if message.tool:
        return {"role": "tool", "name": message.tool, "content": message.content}
    return {"role": message.role, "content": message.content}


def _json_message(message: Message) -> dict[str, Any]:
    if message.call is not None:
        return {"role": "assistant", "content": json.dumps({"name": message.call.name,
                                                            "arguments": message.call.arguments})}
    if message.tool:
        return {"role": "user", "content": f"Result of {message.tool}:\n{message.content}"}
    return {"role": message.role, "content": message.content}


def _alternating(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive turns of one role merged (some templates insist on user/assistant alternating)."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"] and message["role"] != "system":
            merged[-1] = {**merged[-1], "content": merged[-1]["content"] + "\n\n" + message["content"]}
        else:
            merged.append(dict(message))
    return merged


def _is_jinja(template: str) -> bool:
    return "{%" in template or "{{" in template


def render_jinja(template: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str | None:
    """The GGUF's Jinja chat template rendered (sandboxed, as llama-cpp-python renders it), with `tools`;
    None when it cannot be (no jinja, or the template raises on these messages)."""
    formatter = _formatter(template)
    if formatter is None:
        return None
    try:
        return str(formatter(messages=messages, tools=tools).prompt)
    except Exception:  # a template's raise_exception, or a variable it needs that we lack
        log.debug("chat template failed to render", exc_info=True)
        return None


@functools.lru_cache(maxsize=4)
def _formatter(template: str) -> Any:
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError:
        return None
    try:
        # BOS is added when the prompt is tokenised; an EOS after past turns is not needed to read them.
        return Jinja2ChatFormatter(template, eos_token="", bos_token="", add_generation_prompt=True)
    except Exception:  # a template jinja cannot parse
        log.debug("chat template does not parse", exc_info=True)
        return None


@functools.lru_cache(maxsize=4)
def _format_for_template(template: str | None) -> ChatFormat:
    if not template:
        return ChatFormat("plain", None, '{"name": "', ("\n### ",))
    if _is_jinja(template) and "tools" in template:
        probe = [Message("system", "s"), Message("user", "u"),
                 Message("assistant", "", call=ToolCall("list_files", {})), Message("tool", "PROBE-RESULT", tool="list_files")]
        rendered = ChatFormat("tools", template).render(probe)
        if rendered and "list_files" in rendered and "PROBE-RESULT" in rendered and '"propose_edit"' in rendered:
            if "<tool_call>" in rendered:
                # The Hermes/Qwen format: start the answer as a call, up to the tool's name (measured:
                # primed with "<tool_call>\n" alone Qwen2.5-Coder 1.5B ends its turn at once). The
                # generated text has no special tokens, so a call ends at "}}" + newline (a newline never
                # occurs inside a JSON string); otherwise the model chains calls nobody reads.
                return ChatFormat("tools", template, '<tool_call>\n{"name": "', ("}}\n", "</tool_call>"))
            return ChatFormat("tools", template)
    return ChatFormat("json", template, '{"name": "')


def chat_format(backend: Any) -> ChatFormat:
    """How to talk to this model: its template's own tool calls when it has them, else our JSON protocol."""
    return _format_for_template(chat_template_of(backend))


# -- the loop -------------------------------------------------------------------------------------

class ToolLoop:
    """One run of the model driving the tools, until it calls finish or a budget is spent."""

    def __init__(self, toolbox: Toolbox, generate: Generate, *, backend: Any = None,
                 budget: LoopBudget | None = None, say: Say | None = None, has_tests: bool = False,
                 failure: str = "", shown: Collection[str] = ()) -> None:
        """`failure`: what the failing tests said before any change (the task is then to fix them);
        `shown`: files put whole into the first message (those the instruction names, when small)."""
        self.toolbox = toolbox
        self.failure = failure
        self.shown = tuple(shown)
        self._generate = generate
        self.budget = budget or LoopBudget()
        self._say = say or (lambda message: None)
        self.format = chat_format(backend)
        count = getattr(backend, "count_tokens", None)
        # Without a tokenizer (tests), about 4 characters a token.
        self._count: Callable[[str], int] = count if callable(count) else (lambda text: len(text) // 4 + 1)
        self.has_tests = has_tests
        self.outcome = LoopOutcome()
        self.messages: list[Message] = []

    async def run(self, instruction: str) -> LoopOutcome:
        """Step until finish or a budget; the staged edits are in the toolbox's workspace."""
        self.messages = [Message("system", self._system()), Message("user", self._task(instruction))]
        outcome = self.outcome
        malformed_in_a_row = 0
        calls_made: set[tuple[str, str]] = set()
        told_to_edit = False
        while not outcome.finished:
            stop = self._spent()
            if stop:
                outcome.stopped = stop
                break
            prompt = self._fit()
            if isinstance(prompt, str):
                outcome.stopped = prompt
                break
            text, prompt_tokens = prompt
            room = min(self.budget.max_answer_tokens, self.budget.max_tokens - outcome.tokens - prompt_tokens)
            if room < 32:
                outcome.stopped = f"the token budget ({self.budget.max_tokens}) is spent"
                break
            outcome.steps += 1
            step = f"step {outcome.steps}/{self.budget.max_steps}"
            try:
                answer = await asyncio.wait_for(
                    self._generate(ActionPrompt(text, self.format.kind != "plain", self.format.primer,
                                                self.format.stop), room),
                    timeout=self.budget.deadline - time.monotonic() if self.budget.deadline < math.inf else None)
            except TimeoutError:
                outcome.tokens += prompt_tokens
                outcome.stopped = "the time budget is spent"
                break
            outcome.tokens += prompt_tokens + self._count(answer)
            log.debug("agent %s answer: %r", step, answer)
            try:
                call = parse_tool_call(self.format.primer + answer)
            except MalformedCall as error:
                outcome.malformed += 1
                malformed_in_a_row += 1
                self._say(f"{step}: no usable tool call ({error.message}) in {answer[:160]!r}")
                if malformed_in_a_row >= MAX_MALFORMED_IN_A_ROW:
                    outcome.stopped = f"the model's answers held no usable tool call {MAX_MALFORMED_IN_A_ROW} times in a row"
                    break
                self.messages += [Message("assistant", (self.format.primer + answer)[:600]),
                                  Message("user", f"{error.message} Answer with exactly one tool call, like:\n"
                                                  f"{self.format.example()}")]
                continue
            malformed_in_a_row = 0
            if call.repairs:
                outcome.repaired += 1
            key = (call.name, json.dumps(call.arguments, sort_keys=True))
            if key in calls_made and call.name not in ("run_tests", "finish"):
                # Measured: a small model re-reads and re-searches the same things until its steps run out.
                self._say(f"{step}: {_describe_call(call)} again: told to use the result it has")
                self.messages += [Message("assistant", "", call=call),
                                  Message("tool", "You already made this call; its result is above. Do not repeat "
                                                  "it: propose_edit the change now, or finish.", tool=call.name)]
                continue
            calls_made.add(key)
            if call.name == "finish" and self.failure and not self.toolbox.workspace.changed() and not told_to_edit:
                # Measured: with failing tests shown, Qwen2.5-Coder 1.5B read the files and then called
                # finish claiming a fix it never proposed. Once, it is told that nothing changed.
                told_to_edit = True
                self._say(f"{step}: finish with nothing changed while the tests fail: told to propose_edit")
                self.messages += [Message("assistant", "", call=call),
                                  Message("tool", "Not finished: nothing is changed yet and the tests still fail. "
                                                  "Call propose_edit now: old_text is the wrong line copied exactly "
                                                  "from the file, new_text is that line corrected.", tool=call.name)]
                continue
            result = await asyncio.to_thread(self.toolbox.call, call.name, call.arguments)
            first = result.text.splitlines()[0] if result.text else ""
            repaired = f" [repaired: {'; '.join(call.repairs)}]" if call.repairs else ""
            self._say(f"{step}: {_describe_call(call)}{repaired} -> {first[:200]}")
            self.messages += [Message("assistant", "", call=call),
                              Message("tool", _cap(result.text, RESULT_CHARS), tool=call.name)]
            if result.finished:
                outcome.finished = True
                outcome.summary = self.toolbox.summary
        return outcome

    def _spent(self) -> str:
        if self.outcome.steps >= self.budget.max_steps:
            return f"the step budget ({self.budget.max_steps}) is spent"
        if self.outcome.tokens >= self.budget.max_tokens:
            return f"the token budget ({self.budget.max_tokens}) is spent"
        if time.monotonic() >= self.budget.deadline:
            return "the time budget is spent"
        return ""

    def _fit(self) -> tuple[str, int] | str:
        """The rendered prompt and its tokens, shortening the oldest results until it fits; else why not."""
        while True:
            text = self.format.render(self.messages)
            if text is None:
                return "the model's chat template failed to render the conversation"
            tokens = self._count(text)
            if tokens <= self.budget.max_prompt_tokens:
                return text, tokens
            # Shortening a past result changes the prompt from there on, so the model's KV cache
            # must evaluate the rest again: done only when the prompt outgrows its budget.
            if not self._shorten_oldest():
                return f"the conversation no longer fits the prompt budget ({self.budget.max_prompt_tokens} tokens)"

    def _shorten_oldest(self) -> bool:
        results = [i for i, m in enumerate(self.messages) if m.tool and not m.shortened]
        # The latest results first stay whole (the model is working with them), then all but the last.
        older = results[:-KEEP_RECENT] if len(results) > KEEP_RECENT else results[:-1]
        for index in older:
            message = self.messages[index]
            first = message.content.splitlines()[0][:160] if message.content else ""
            message.content = f"{first}\n[older result shortened; call the tool again to see it]"
            message.shortened = True
            call = self.messages[index - 1].call if index > 0 else None
            if call is not None:  # an old edit's lines are in the file now; the call need not repeat them
                self.messages[index - 1].call = attrs.evolve(call, arguments={
                    key: (f"<{len(value)} characters>" if isinstance(value, str) and len(value) > 80 else value)
                    for key, value in call.arguments.items()})
            return True
        return False

    def _system(self) -> str:
        budget = self.budget
        text = ("You change a code workspace as the user instructs, by calling tools, one tool call per answer. "
                "Find the code first (search, read_file), then change it with propose_edit: old_text is a few "
                "whole lines copied exactly from the file (without the line numbers read_file shows), new_text "
                "replaces them. Edits are kept for the user to review; nothing is written until they accept. "
                "Never change the tests unless the instruction says so: they judge your change. "
                + ("Run run_tests after your edits; fix what fails. " if self.has_tests else "")
                + f"Call finish when done. Budget: at most {budget.max_steps} tool calls.")
        if self.format.kind == "tools":
            return text
        tools = "\n".join(f"- {spec.name}({', '.join(_signature(spec.parameters))}): {spec.description}"
                          for spec in TOOLS.values())
        return (f"{text}\n\nTools:\n{tools}\n\nAnswer with exactly one JSON object and nothing else, like:\n"
                f"{self.format.example()}")

    def _task(self, instruction: str) -> str:
        files = self.toolbox.files()
        words = set(re.findall(r"\w+", instruction))
        # Files the instruction names come first: the rest may not fit the summary.
        ordered = sorted(files, key=lambda path: (path.rsplit("/", 1)[-1].rsplit(".", 1)[0] not in words, path))
        parts: list[str] = []
        size = 0
        for path in ordered:
            signatures = self.toolbox.signatures(path)
            lines = self.toolbox.workspace.read(path).count("\n")
            block = f"# {path} ({lines} lines)\n" + "".join(f"  {line}\n" for line in signatures)
            if size + len(block) > SUMMARY_CHARS:
                parts.append(f"... {len(ordered) - len(parts)} more files (list_files shows them)\n")
                break
            parts.append(block)
            size += len(block)
        whole = "".join(f"\n{path}:\n```\n{self.toolbox.workspace.read(path)}```\n" for path in self.shown)
        failing = (f"\nThe tests fail now:\n{self.failure}\nFind the wrong line and fix it with propose_edit, then "
                   "run_tests.\n") if self.failure else ""
        return (f"Instruction: {instruction}\n\nThe workspace has {len(files)} source files; their definitions "
                f"(line: signature; read_file shows the code):\n{''.join(parts)}{whole}{failing}")


def _signature(parameters: dict[str, Any]) -> list[str]:
    required = set(parameters["required"])
    return [name if name in required else f"{name}?" for name in parameters["properties"]]


def _describe_call(call: ToolCall) -> str:
    shown = ", ".join(f"{key}={value!r}" if not isinstance(value, str) or len(value) <= 60
                      else f"{key}=<{len(value)} chars>" for key, value in call.arguments.items())
    return f"{call.name}({shown})"


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[cut]"

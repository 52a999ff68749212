"""Injected faults against the real server process: each is told to the user once, with the fix, while
the other features keep working and nothing of the user's is touched.

Faults are injected through what a user could get wrong too: settings (`model.path`,
`cache.directory`), the environment (`CODEASSIST_CACHE_DIR`, `CODEASSIST_SEMGREP_CORE`, `PYTHONPATH`),
and the files themselves (a truncated or garbage model, a damaged index database, a full tmpfs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeassist_lsp.context.workspace import default_cache_dir
from codeassist_lsp.engine.models import default_model_name, installed_model_path, models_dir
from codeassist_lsp.engine.tiers import quality_model_name
from tests.hardening.support import EDITOR_CAPABILITIES, SERVER_COMMAND, RawServer, open_document

pytestmark = pytest.mark.model

CAPABILITIES = EDITOR_CAPABILITIES
# An insecure line the built-in rule pack flags (python.os-command) with or without bandit and semgrep-core.
SOURCE = ("import os\n\n\ndef run(command):\n    os.system(command)\n\n\n"
          "def add(a, b):\n    \"\"\"The sum of a and b.\"\"\"\n    return ")
END = {"line": SOURCE.count("\n"), "character": len(SOURCE.rsplit("\n", 1)[1])}
FAST = installed_model_path(default_model_name())
CODER = installed_model_path(quality_model_name())
# Both tiers on the fast model, loaded once: for faults where which model answers does not matter.
ON_THE_FAST_MODEL: dict[str, Any] = {"model": {"path": str(FAST)}, "actions": {"model": {"path": str(FAST)},
                                                                               "bestOfN": 1, "maxTokens": 48}}

needs_fast_model = pytest.mark.skipif(FAST is None, reason="the embedded model is not installed")


# -- helpers ---------------------------------------------------------------------------------------

class Session:
    """One server process with a workspace folder holding the user's file, and what it told the user."""

    def __init__(self, tmp_path: Path, options: dict[str, Any], env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        self.workspace = tmp_path / "project"
        self.workspace.mkdir(exist_ok=True)
        self.file = self.workspace / "main.py"
        if not self.file.exists():
            self.file.write_text(SOURCE, encoding="utf-8")
        (self.workspace / "shapes.py").write_text("def square_area(side):\n    return side * side\n", encoding="utf-8")
        self.uri = self.file.as_uri()
        self.on_disk = self.file.read_bytes()
        self.server = RawServer(tmp_path / "server.log", env={"CODEASSIST_CACHE_DIR": str(tmp_path / "cache"),
                                                              **(env or {})}, command=command)
        response = self.server.request("initialize", {
            "processId": None, "rootUri": self.workspace.as_uri(), "capabilities": CAPABILITIES,
            "workspaceFolders": [{"uri": self.workspace.as_uri(), "name": "project"}],
            "initializationOptions": options})
        assert "result" in response, response
        self.server.notify("initialized", {})

    def status(self) -> dict[str, Any]:
        """The codeassist.status report."""
        return self.server.request("workspace/executeCommand", {"command": "codeassist.status"})["result"]

    def wait_loaded(self, timeout: float = 120) -> dict[str, Any]:
        """Status once both tiers have finished loading (or failing to)."""
        wait_until(lambda: (lambda s: s["model"]["state"] != "loading" and s["qualityModel"]["state"] != "loading")(
            self.status()), timeout, "both model tiers to load", self)
        return self.status()

    def open(self, text: str = SOURCE, uri: str | None = None) -> None:
        """didOpen the user's file (or another document)."""
        open_document(self.server, uri or self.uri, text)

    def inline(self, uri: str | None = None, position: dict[str, int] | None = None) -> Any:
        """An inline completion's result (fails on a JSON-RPC error)."""
        response = self.server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri or self.uri}, "position": position or END,
            "context": {"triggerKind": 2}}, timeout=60)
        assert "result" in response, response
        return response["result"]

    def suggestions(self, uri: str | None = None, position: dict[str, int] | None = None) -> list[str]:
        """The inline completion's texts."""
        result = self.inline(uri, position)
        return [item["insertText"] for item in (result or {}).get("items", [])]

    def resolve_docstring(self, line: int = 3) -> dict[str, Any]:
        """List the code actions on `line` and resolve the docstring one; the resolved action."""
        listed = self.server.request("textDocument/codeAction", {
            "textDocument": {"uri": self.uri}, "range": {"start": {"line": line, "character": 4},
                                                        "end": {"line": line, "character": 4}},
            "context": {"diagnostics": []}})
        docstring = [a for a in listed.get("result") or [] if a.get("kind", "").endswith(".docstring")]
        assert docstring, listed
        resolved = self.server.request("codeAction/resolve", docstring[0], timeout=120)
        assert "result" in resolved, resolved
        return resolved["result"]

    def hover(self, line: int = 3, character: int = 6) -> Any:
        """The hover's result on a function name (a model's or a structural explanation)."""
        response = self.server.request("textDocument/hover", {
            "textDocument": {"uri": self.uri}, "position": {"line": line, "character": character}}, timeout=90)
        assert "result" in response, response
        return response["result"]

    def diagnostics(self, timeout: float = 60) -> list[dict[str, Any]]:
        """The first security diagnostics published for the user's file."""
        found: list[dict[str, Any]] = []

        def published() -> bool:
            for note in self.server.notifications:
                if note["method"] == "textDocument/publishDiagnostics" and note["params"]["uri"] == self.uri:
                    found[:] = note["params"]["diagnostics"]
                    return True
            return False

        wait_until(published, timeout, "the security diagnostics", self)
        return found

    def messages(self) -> list[str]:
        """Every window/showMessage text so far."""
        return [n["params"]["message"] for n in self.server.notifications if n["method"] == "window/showMessage"]

    def told(self, *needles: str) -> list[str]:
        """The messages that contain every needle."""
        return [m for m in self.messages() if all(needle in m for needle in needles)]

    def wait_told(self, *needles: str, timeout: float = 60) -> str:
        """The one message containing every needle, once it arrived."""
        wait_until(lambda: self.told(*needles), timeout, f"a message with {needles}", self)
        return self.told(*needles)[0]

    def finish(self) -> None:
        """Shut down cleanly and check that nothing of the user's was touched."""
        assert self.server.shutdown_and_exit() == 0
        assert not self.server.violations, self.server.violations
        edits = [n for n in self.server.notifications if n["method"] == "workspace/applyEdit"]
        assert not edits, edits  # no edit the user did not ask for
        assert self.file.read_bytes() == self.on_disk  # the user's file is untouched

    def close(self) -> None:
        """End the process (a failed test)."""
        self.server.close()


def wait_until(condition: Callable[[], Any], timeout: float, what: str, session: Session | None = None) -> None:
    """Poll `condition` until it holds; fail with the server's log after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            messages = session.messages() if session else []
            log = session.server.log_tail() if session else ""
            raise AssertionError(f"timed out waiting for {what}; messages {messages}; log: {log}")
        time.sleep(0.1)


@pytest.fixture
def session_factory(tmp_path: Path) -> Iterator[Callable[..., Session]]:
    """Start sessions; every one still running at the end is ended."""
    started: list[Session] = []

    def start(options: dict[str, Any], env: dict[str, str] | None = None,
              command: list[str] | None = None) -> Session:
        session = Session(tmp_path, options, env, command)
        started.append(session)
        return session

    yield start
    for session in started:
        session.close()


def flags_os_system(diagnostics: list[dict[str, Any]]) -> bool:
    """Whether the insecure `os.system(command)` line (line 4) carries a finding (bandit's or the pack's)."""
    return any(d["range"]["start"]["line"] == 4 and d["source"] == "codeassist" for d in diagnostics)


def exactly_one(messages: list[str]) -> str:
    """The single message of a list (the user is told once)."""
    assert len(messages) == 1, messages
    return messages[0]


def installed_cache(folder: Path, *models: Path) -> Path:
    """A cache dir whose models/ holds exactly these installed (verified) model files, as links."""
    target = folder / "models"
    target.mkdir(parents=True, exist_ok=True)
    for model in models:
        (target / model.name).symlink_to(model)
        marker = models_dir() / (model.name + ".sha256")
        (target / marker.name).write_text(marker.read_text())
    return folder


# -- the model file --------------------------------------------------------------------------------

def test_model_path_missing_is_told_once_and_the_rest_still_works(session_factory: Callable[..., Session],
                                                                  tmp_path: Path) -> None:
    nowhere = tmp_path / "models" / "nowhere.gguf"
    session = session_factory({"model": {"path": str(nowhere)}})
    assert session.wait_loaded()["model"]["state"] == "error"
    session.open()
    for _ in range(3):
        assert session.inline() is None  # empty, not an error
    message = exactly_one(session.told("nowhere.gguf"))
    assert "does not exist" in message and "codeassist.model.path" in message  # what is wrong, and the fix
    # The security scan needs no model.
    assert flags_os_system(session.diagnostics())
    assert len(session.messages()) == 1, session.messages()
    session.finish()


def test_registry_model_not_installed_names_the_install_command(session_factory: Callable[..., Session]) -> None:
    session = session_factory({"model": {"name": "smollm2-135m-instruct"}})
    assert session.wait_loaded()["model"]["state"] == "error"
    session.open()
    assert session.inline() is None
    exactly_one(session.told("codeassist models install smollm2-135m-instruct"))
    assert len(session.messages()) == 1, session.messages()
    session.finish()


@needs_fast_model
def test_default_model_missing_is_restored_from_its_installed_package(session_factory: Callable[..., Session],
                                                                      tmp_path: Path) -> None:
    # The embedded model ships as a Python package: a deleted file is assembled again, nothing to tell.
    (tmp_path / "cache" / "models").mkdir(parents=True)
    session = session_factory({"actions": {"model": {"name": default_model_name()}}})
    assert session.wait_loaded()["model"]["state"] == "ready"
    assert (tmp_path / "cache" / "models" / FAST.name).stat().st_size == FAST.stat().st_size
    session.open()
    assert session.suggestions()
    assert session.messages() == []
    session.finish()


def _truncated(source: Path, target: Path) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read(source.stat().st_size // 3))


def _garbage(source: Path, target: Path) -> None:
    # A valid GGUF's first bytes, then noise: the same size and name as the real file.
    with open(source, "rb") as src:
        head = src.read(4)
    with open(target, "wb") as dst:
        dst.write(head + os.urandom(source.stat().st_size - 4))


@needs_fast_model
@pytest.mark.parametrize("damage", [_truncated, _garbage], ids=["truncated", "garbage"])
def test_a_damaged_registry_model_names_the_reinstall_command(session_factory: Callable[..., Session],
                                                              tmp_path: Path, damage: Callable[[Path, Path], None]) -> None:
    folder = tmp_path / "cache" / "models"
    folder.mkdir(parents=True)
    damage(FAST, folder / FAST.name)  # the installed file's name, no verification marker
    session = session_factory({})
    assert session.wait_loaded()["model"]["state"] == "error"
    session.open()
    assert session.inline() is None
    message = exactly_one(session.messages())
    assert "sha256" in message and f"codeassist models install {default_model_name()} --force" in message, message
    assert flags_os_system(session.diagnostics())
    session.finish()


@needs_fast_model
@pytest.mark.parametrize("damage", [_truncated, _garbage], ids=["truncated", "garbage"])
def test_a_damaged_model_path_is_told_once(session_factory: Callable[..., Session], tmp_path: Path,
                                           damage: Callable[[Path, Path], None]) -> None:
    broken = tmp_path / "mine.gguf"
    damage(FAST, broken)
    session = session_factory({"model": {"path": str(broken)}, "actions": {"model": {"path": str(broken)}}})
    assert session.wait_loaded()["model"]["state"] == "error"
    session.open()
    for _ in range(2):
        assert session.inline() is None
    message = exactly_one(session.messages())
    assert "mine.gguf" in message and "codeassist.model.path" in message, message
    session.finish()


@needs_fast_model
def test_a_damaged_code_model_falls_back_to_the_fast_one(session_factory: Callable[..., Session],
                                                         tmp_path: Path) -> None:
    broken = tmp_path / "coder.gguf"
    _truncated(FAST, broken)
    session = session_factory({"model": {"path": str(FAST)}, "actions": {"model": {"path": str(broken)},
                                                                          "bestOfN": 1, "maxTokens": 48}})
    report = session.wait_loaded()
    assert report["model"]["state"] == "ready" and report["qualityModel"]["state"] == "fallback", report
    session.open()
    assert session.suggestions()
    assert session.resolve_docstring().get("edit")  # on the fast model
    message = exactly_one(session.messages())
    assert "coder.gguf" in message and "codeassist.actions.model.path" in message, message
    assert "use the completion model meanwhile" in message, message
    session.finish()


@needs_fast_model
# A model file of the user's own (model.path) is read into memory, so even a copy over it in place
# leaves the server running; installed models are memory-mapped and replaced by renaming (_model_params).
@pytest.mark.parametrize("how", ["in-place", "renamed-over", "deleted"])
def test_a_model_file_replaced_while_loaded(session_factory: Callable[..., Session], tmp_path: Path,
                                            how: str) -> None:
    model = tmp_path / "model.gguf"
    shutil.copyfile(FAST, model)
    session = session_factory({**ON_THE_FAST_MODEL, "model": {"path": str(model)},
                               "actions": {"model": {"path": str(model)}}, "cache": {"enabled": False}})
    assert session.wait_loaded()["model"]["state"] == "ready"
    session.open()
    before = session.suggestions()
    assert before
    if how == "in-place":
        # A copy over the file, cut short: a mapped model would die of SIGBUS on its next decode.
        with open(model, "r+b") as handle:
            handle.truncate(4096)
    elif how == "deleted":
        model.unlink()
    else:
        replacement = tmp_path / "model.gguf.new"
        replacement.write_bytes(b"GGUF" + os.urandom(1 << 20))
        os.replace(replacement, model)
    message = session.wait_told("model.gguf", "after it was loaded")
    assert "Restart" in message
    other = "file:///tmp/codeassist-faults/other.py"
    session.open("def multiply(a, b):\n    return ", other)
    for uri, position in ((session.uri, END), (other, {"line": 1, "character": 11})):
        assert session.suggestions(uri, position)  # the model in memory keeps answering
    assert session.resolve_docstring().get("edit")
    assert exactly_one(session.messages()) == message
    session.finish()


@needs_fast_model
def test_without_the_code_model_actions_fall_back_and_say_how_to_install_it(
        session_factory: Callable[..., Session], tmp_path: Path) -> None:
    installed_cache(tmp_path / "cache", FAST)
    session = session_factory({"actions": {"bestOfN": 1, "maxTokens": 48}})
    report = session.wait_loaded()
    assert report["model"]["state"] == "ready"
    assert report["qualityModel"]["state"] == "fallback" and report["qualityModel"]["sharedWithCompletion"]
    session.open()
    assert session.suggestions()
    first = session.resolve_docstring()
    assert first.get("edit"), first
    session.resolve_docstring()
    message = exactly_one(session.messages())
    assert f"codeassist models install {quality_model_name()}" in message, message
    session.finish()


# -- where codeassist writes -----------------------------------------------------------------------

def _a_file_in_the_way(tmp_path: Path) -> Path:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be\n")
    return blocker


@needs_fast_model
def test_completion_cache_folder_unusable(session_factory: Callable[..., Session], tmp_path: Path) -> None:
    # A path under a regular file: unusable whoever runs the test (root ignores chmod).
    directory = _a_file_in_the_way(tmp_path) / "completions"
    session = session_factory({**ON_THE_FAST_MODEL, "cache": {"directory": str(directory)}})
    assert session.wait_loaded()["model"]["state"] == "ready"
    session.open()
    first = session.suggestions()
    assert first and session.suggestions()  # answered again (memory tier or typed-ahead)
    message = exactly_one(session.messages())
    assert str(directory) in message and "codeassist.cache.directory" in message, message
    session.finish()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@needs_fast_model
def test_completion_cache_folder_read_only(session_factory: Callable[..., Session], tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        session = session_factory({**ON_THE_FAST_MODEL, "cache": {"directory": str(locked / "completions")}})
        assert session.wait_loaded()["model"]["state"] == "ready"
        session.open()
        assert session.suggestions()
        assert "codeassist.cache.directory" in exactly_one(session.messages())
        session.finish()
    finally:
        locked.chmod(0o700)


@needs_fast_model
def test_whole_cache_dir_unusable_is_one_message(session_factory: Callable[..., Session], tmp_path: Path) -> None:
    # CODEASSIST_CACHE_DIR under a file: the completion cache, the index and the probe records all fail.
    cache = _a_file_in_the_way(tmp_path) / "cache"
    session = session_factory(ON_THE_FAST_MODEL, env={"CODEASSIST_CACHE_DIR": str(cache)})
    assert session.wait_loaded()["model"]["state"] == "ready"
    session.open()
    assert session.suggestions()
    wait_until(lambda: session.status()["index"]["ready"], 60, "the index, in memory", session)
    message = exactly_one(session.messages())
    assert str(cache) in message, message
    session.finish()


def _tmpfs_wrapper(mount_point: Path, size_kib: int, fill: bool) -> list[str] | None:
    """The server command inside its own mount namespace with a small tmpfs at mount_point (filled up
    before the server starts, or not), or None where this machine allows no such namespace."""
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {mount_point}"],
                           capture_output=True, check=False) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        return None
    script = f'mount -t tmpfs -o size={size_kib}k tmpfs "$0" && mkdir -p "$0/cache" && '
    if fill:
        script += '(dd if=/dev/zero of="$0/fill" bs=1k 2>/dev/null; true) && '
    return ["unshare", "-rm", "sh", "-c", script + 'exec "$@"', str(mount_point), *SERVER_COMMAND]


@needs_fast_model
@pytest.mark.parametrize("when", ["full-at-start", "fills-while-indexing"])
def test_disk_full(session_factory: Callable[..., Session], tmp_path: Path, when: str) -> None:
    # A real full disk: a small tmpfs, mounted in a private mount namespace (unshare), so the test needs
    # no root and leaves no mount behind. Either full before the server starts, or 256 KiB that the
    # workspace index of 300 files fills while it is being built.
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    filling = when == "fills-while-indexing"
    command = _tmpfs_wrapper(mount_point, 256 if filling else 64, fill=not filling)
    if command is None:
        pytest.skip("no private mount namespace (unshare -rm) here to mount a small tmpfs in")
    if filling:
        package = tmp_path / "project" / "generated"
        package.mkdir(parents=True)
        for number in range(300):
            (package / f"module_{number}.py").write_text("".join(
                f"def function_{number}_{k}(value, *, scale={k}):\n    return value * scale\n\n\n"
                for k in range(12)))
    session = session_factory(ON_THE_FAST_MODEL, env={"CODEASSIST_CACHE_DIR": str(mount_point / "cache")},
                              command=command)
    assert session.wait_loaded()["model"]["state"] == "ready"
    session.open()
    first = session.suggestions()
    assert first and session.suggestions()
    wait_until(lambda: session.status()["index"]["ready"], 120, "the index, in memory", session)
    message = exactly_one(session.messages())  # the feedback store, the cache and the index: one disk
    assert "disk is full" in message or "No space left" in message, message
    assert "Free space on that disk" in message, message
    if filling:
        assert "workspace index" in message, message  # the first store to hit the full disk
    session.finish()


@needs_fast_model
def test_damaged_index_database_is_rebuilt(session_factory: Callable[..., Session], tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    old_env = os.environ.get("CODEASSIST_CACHE_DIR")
    os.environ["CODEASSIST_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        index_dir = default_cache_dir(workspace)
    finally:
        if old_env is None:
            del os.environ["CODEASSIST_CACHE_DIR"]
        else:
            os.environ["CODEASSIST_CACHE_DIR"] = old_env
    index_dir.mkdir(parents=True)
    (index_dir / "cache.db").write_bytes(b"this is not an SQLite database " * 200)
    session = session_factory(ON_THE_FAST_MODEL)
    assert session.wait_loaded()["model"]["state"] == "ready"
    wait_until(lambda: session.status()["index"]["ready"], 60, "the rebuilt index", session)
    session.open()
    assert session.suggestions()
    message = exactly_one(session.messages())
    assert "index" in message and "rebuilt" in message, message
    session.finish()
    # The rebuilt database is sound: the next start says nothing.
    again = session_factory(ON_THE_FAST_MODEL)
    assert again.wait_loaded()["model"]["state"] == "ready"
    wait_until(lambda: again.status()["index"]["ready"], 60, "the index", again)
    assert again.messages() == []
    again.finish()


# -- the security scanners -------------------------------------------------------------------------

def _fake_bandit(folder: Path, crash: bool) -> Path:
    """A `bandit` package that shadows the real one on PYTHONPATH: one that cannot be imported (as if
    uninstalled), or one that raises inside every scan. (Bandit runs in process: a segfault in it
    would end the server, so a crash here is an exception.)"""
    package = folder / "bandit"
    (package / "core").mkdir(parents=True)
    if not crash:
        (package / "__init__.py").write_text("raise ImportError(\"No module named 'bandit'\")\n")
        return folder
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "config.py").write_text("class BanditConfig:\n    pass\n")
    (package / "core" / "manager.py").write_text(
        "class BanditManager:\n    def __init__(self, *args, **kwargs):\n"
        "        self.b_ma = self.b_ts = self.metrics = None\n")
    (package / "core" / "node_visitor.py").write_text(
        "class BanditNodeVisitor:\n    def __init__(self, *args):\n        pass\n"
        "    def process(self, data):\n        raise RuntimeError('bandit blew up')\n")
    return folder


@needs_fast_model
@pytest.mark.parametrize("crash", [False, True], ids=["missing", "crashing"])
def test_bandit_missing_or_crashing(session_factory: Callable[..., Session], tmp_path: Path, crash: bool) -> None:
    fakes = _fake_bandit(tmp_path / "fakes", crash)
    session = session_factory(ON_THE_FAST_MODEL, env={"PYTHONPATH": str(fakes)})
    assert session.wait_loaded()["model"]["state"] == "ready"
    session.open()
    # The rule pack still flags the insecure line, suggestions are still shown (not_checked: bandit).
    assert flags_os_system(session.diagnostics())
    assert session.suggestions()
    assert session.resolve_docstring().get("edit")
    assert session.hover()
    message = exactly_one(session.messages())
    assert "bandit" in message and "pip install --force-reinstall bandit" in message, message
    assert ("blew up" in message) == crash
    assert session.status()["verification"].get("not_checked.bandit", 0) >= 1
    session.finish()


def _script(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "semgrep-core"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@needs_fast_model
@pytest.mark.parametrize("fault", ["missing", "exits-2", "segfaults"])
def test_semgrep_core_missing_or_crashing(session_factory: Callable[..., Session], tmp_path: Path,
                                          fault: str) -> None:
    if fault == "missing":
        binary = tmp_path / "nowhere" / "semgrep-core"
    else:
        binary = _script(tmp_path / "bin", "kill -SEGV $$" if fault == "segfaults"
                         else "echo 'fatal: out of cheese' >&2; exit 2")
    session = session_factory(ON_THE_FAST_MODEL, env={"CODEASSIST_SEMGREP_CORE": str(binary)})
    assert session.wait_loaded()["model"]["state"] == "ready"
    session.open()
    # Diagnostics from the in-process pass of the same pack; actions verified by bandit and the pack.
    assert flags_os_system(session.diagnostics())
    assert session.suggestions()  # inline completion never used semgrep-core
    assert session.resolve_docstring().get("edit")
    assert session.hover()
    message = exactly_one(session.messages())
    assert "semgrep-core" in message and "CODEASSIST_SEMGREP_CORE" in message, message
    assert {"missing": "not found", "exits-2": "exited 2", "segfaults": "SIGSEGV"}[fault] in message
    session.finish()


# -- tree-sitter -----------------------------------------------------------------------------------

@needs_fast_model
def test_parse_past_its_time_limit(session_factory: Callable[..., Session]) -> None:
    # 1.6 MB of nested literals on one line (under the 2,000,000 characters that are parsed at all):
    # tree-sitter's Python grammar needs well over the 200 ms limit (400 KB took ~200 ms on a quiet machine).
    huge = "TABLE = [" + "(1, {'a': [2, 3]}), " * 80000 + "]\n\n\ndef add(a, b):\n    return "
    end = {"line": huge.count("\n"), "character": len("    return ")}
    session = session_factory(ON_THE_FAST_MODEL)
    assert session.wait_loaded()["model"]["state"] == "ready"
    big = "file:///tmp/codeassist-faults/generated.py"
    session.open(huge, big)
    session.inline(big, end)  # answered (with or without a suggestion), not an error
    session.server.notify("textDocument/didChange", {"textDocument": {"uri": big, "version": 2}, "contentChanges": [
        {"range": {"start": end, "end": end}, "text": "a"}]})
    session.inline(big, {"line": end["line"], "character": end["character"] + 1})
    session.open()  # other files are parsed as usual
    assert session.suggestions()
    message = exactly_one(session.messages())
    assert "generated.py" in message and "200 ms" in message, message
    session.finish()

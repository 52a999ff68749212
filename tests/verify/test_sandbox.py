"""The sandbox contains escapes: writes outside the scratch copy, sockets, a fork bomb, an endless loop, a memory hog."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeassist_lsp.verify.sandbox import NOBODY, Sandbox, SandboxLimits, SandboxResult, _probe

ISOLATING = [m for m in ("bwrap", "unshare") if not _probe(m)]
LIMITS = SandboxLimits(cpu_s=5, memory_mb=512, processes=16, wall_s=8)


def _run(sandbox: Sandbox, code: str, files: dict[str, str] | None = None) -> tuple[SandboxResult, str]:
    with sandbox.scratch({"escape.py": textwrap.dedent(code), **(files or {})}) as folder:
        result = sandbox.run([sys.executable, "escape.py"], folder)
        return result, folder


def _processes_of(uid: int) -> set[int]:
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture(params=ISOLATING or [pytest.param("bwrap", marks=pytest.mark.skip("no bwrap/unshare here"))])
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    return Sandbox(request.param, LIMITS)


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A world-writable folder outside the scratch copy (permissions alone would not stop a write)."""
    folder = Path(tmp_path_factory.mktemp("outside"))
    victim = folder / "victim.txt"
    victim.write_text("original\n")
    os.chmod(folder, 0o777)
    os.chmod(victim, 0o666)
    yield folder


def test_isolation_is_detected_and_described() -> None:
    sandbox = Sandbox()
    assert sandbox.mechanism in ("bwrap", "unshare", "rlimits")
    if sandbox.mechanism == "rlimits":
        assert "OFF" in sandbox.describe()
    else:
        assert "no network" in sandbox.describe()


def test_code_runs_in_the_scratch_copy_with_a_clean_environment(sandbox: Sandbox) -> None:
    os.environ["HTTPS_PROXY"] = "http://proxy.invalid:3128"
    try:
        result, folder = _run(sandbox, """
            import os
            print(os.getcwd())
            print(sorted(k for k in os.environ if "PROXY" in k.upper() or "TOKEN" in k.upper()))
            open("written.txt", "w").write("fine")
            print(open("written.txt").read())
        """)
    finally:
        del os.environ["HTTPS_PROXY"]
    assert result.ok, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == folder and lines[1] == "[]" and lines[2] == "fine"


def test_writing_outside_the_scratch_copy_fails(sandbox: Sandbox, outside: Path) -> None:
    workspace_file = Path(__file__).resolve()
    before = workspace_file.read_bytes()
    result, _ = _run(sandbox, f"""
        import os
        hits = []
        for path in [{str(outside / 'new.txt')!r}, {str(outside / 'victim.txt')!r}, {str(workspace_file)!r},
                     "/etc/codeassist-escape", os.path.expanduser("~/../codeassist-escape")]:
            try:
                with open(path, "a") as handle:
                    handle.write("pwned")
                hits.append(path)
            except OSError:
                pass
        print(hits)
    """)
    assert result.returncode == 0, result.stderr
    assert not (outside / "new.txt").exists()
    assert (outside / "victim.txt").read_text() == "original\n"
    assert workspace_file.read_bytes() == before
    assert not Path("/etc/codeassist-escape").exists()


def test_homes_are_hidden_with_bwrap() -> None:
    if "bwrap" not in ISOLATING:
        pytest.skip("no bwrap here")
    secret = Path.home() / ".codeassist-sandbox-secret"
    secret.write_text("secret")
    try:
        result, _ = _run(Sandbox("bwrap", LIMITS), f"""
            try:
                print(open({str(secret)!r}).read())
            except OSError as error:
                print("hidden", type(error).__name__)
        """)
    finally:
        secret.unlink()
    assert result.stdout.startswith("hidden"), result.stdout + result.stderr


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    """A TCP server on the host's loopback that records connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
                accepted.append(connection)
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def test_no_network_to_loopback_or_outside(sandbox: Sandbox, listener: tuple[int, list[object]]) -> None:
    port, accepted = listener
    result, _ = _run(sandbox, f"""
        import socket
        for address in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
            try:
                socket.create_connection(address, timeout=2).close()
                print("connected", address)
            except OSError as error:
                print("blocked", address, error.errno)
        try:
            socket.getaddrinfo("example.com", 443)
            print("resolved")
        except OSError:
            print("no dns")
    """)
    assert result.returncode == 0, result.stderr
    assert "connected" not in result.stdout and "resolved" not in result.stdout, result.stdout
    assert accepted == []


def test_a_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    if not sandbox.enforces_process_limit:  # unshare as root with the interpreter under /root: never tried
        pytest.skip(f"{sandbox.mechanism} cannot hold the process limit here: {sandbox.describe()}")
    before = _processes_of(NOBODY) if os.geteuid() == 0 else set()
    started = time.perf_counter()
    result, _ = _run(sandbox, """
        import os
        children = 0
        while True:
            try:
                if os.fork() == 0:
                    children = 0
                else:
                    children += 1
            except OSError:
                pass
    """)
    assert result.timed_out or result.returncode != 0
    assert time.perf_counter() - started < LIMITS.wall_s + 10
    time.sleep(0.5)
    if os.geteuid() == 0:
        assert _processes_of(NOBODY) <= before  # every forked process is gone
    assert subprocess.run(["true"], check=False).returncode == 0  # the machine still forks


def test_an_endless_loop_is_killed(sandbox: Sandbox) -> None:
    started = time.perf_counter()
    result, _ = _run(sandbox, "while True:\n    pass\n")
    assert result.timed_out or result.returncode != 0
    assert time.perf_counter() - started < LIMITS.wall_s + 5


def test_a_memory_hog_fails_inside(sandbox: Sandbox) -> None:
    result, _ = _run(sandbox, """
        blocks = []
        try:
            while True:
                blocks.append(bytearray(64 * 1024 * 1024))
        except MemoryError:
            print("MemoryError after", len(blocks) * 64, "MiB")
    """)
    assert "MemoryError" in result.stdout, result.stdout + result.stderr
    assert int(result.stdout.split()[2]) <= LIMITS.memory_mb


def test_a_background_child_does_not_outlive_the_run(sandbox: Sandbox, outside: Path) -> None:
    marker = f"codeassist-sandbox-sleeper-{os.getpid()}"
    result, _ = _run(sandbox, f"""
        import os, subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(30)", {marker!r}],
                         start_new_session=True)
        print("parent done")
    """)
    assert result.stdout.strip() == "parent done"
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_a_big_file_is_cut_by_the_file_size_limit(sandbox: Sandbox) -> None:
    result, _ = _run(sandbox, """
        try:
            with open("big.bin", "wb") as handle:
                for _ in range(64):
                    handle.write(b"x" * (1024 * 1024))
            print("wrote 64 MiB")
        except OSError as error:
            print("stopped", error.errno)
    """)
    assert "wrote 64 MiB" not in result.stdout


def test_rlimits_mode_still_limits_time_and_memory() -> None:
    sandbox = Sandbox("rlimits", LIMITS)
    assert "OFF" in sandbox.describe()
    started = time.perf_counter()
    result, _ = _run(sandbox, "while True:\n    pass\n")
    assert result.timed_out or result.returncode != 0
    assert time.perf_counter() - started < LIMITS.wall_s + 5
    result, _ = _run(sandbox, "x = bytearray(4 * 1024 ** 3)\n")
    assert result.returncode != 0 and "MemoryError" in result.stderr

"""Run untrusted code (a candidate and its tests) in a scratch copy, with limits, no network, read-only elsewhere.

Every execution stage uses this one module. Isolation, best first:

* ``bwrap`` (bubblewrap): new pid, net, ipc and uts namespaces; the whole file system read-only except the
  scratch copy and a small /tmp; /root and /home hidden (the interpreter's folders bound back, read-only);
  as root, the code runs as ``nobody`` so the process limit holds (the kernel exempts root from it).
* ``unshare`` (util-linux): the same namespaces; every mount remounted read-only except the scratch copy.
* ``rlimits``: no tool works here; resource limits and a clean environment only. Network and file isolation
  are OFF: the status and the log say so.

In every mode: CPU, address-space, file-size, open-file and process-count limits (setrlimit before exec),
a wall-clock timeout after which the whole process group is killed, stdin closed, an environment with no
proxies or credentials, and a working folder that is a scratch copy, never the user's workspace.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs

log = logging.getLogger(__name__)

MECHANISMS = ("bwrap", "unshare", "rlimits")
# The account sandboxed code runs as when codeassist runs as root (RLIMIT_NPROC never applies to root).
NOBODY = 65534
# Folders that hold people's secrets (keys, tokens): hidden in the sandbox when the tool can.
HIDDEN_HOMES = ("/root", "/home")


@attrs.frozen
class SandboxLimits:
    """What one sandboxed run may use."""

    cpu_s: int = 10
    memory_mb: int = 1024
    file_size_mb: int = 16
    processes: int = 32
    open_files: int = 256
    wall_s: float = 10.0
    tmp_mb: int = 64


@attrs.frozen
class SandboxResult:
    """How a sandboxed run ended and what it printed."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    elapsed_ms: float
    isolation: str

    @property
    def ok(self) -> bool:
        """Exit status 0 within the time limit."""
        return self.returncode == 0 and not self.timed_out


def _interpreter_paths() -> list[str]:
    """Folders the sandboxed Python needs to read (venv, base install), resolved."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted({os.path.realpath(p) for p in paths if p})


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _bwrap_args(scratch: str, limits: SandboxLimits, as_root: bool, extra_ro: Sequence[str]) -> list[str]:
    """bubblewrap's arguments up to (not including) the command."""
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try"]
    if not as_root:
        args.append("--unshare-user")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--perms", "1777", "--size", str(limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    needed = [*_interpreter_paths(), *extra_ro]
    for home in HIDDEN_HOMES:
        if not os.path.isdir(home) or _under(scratch, home):
            continue
        args += ["--perms", "0755", "--tmpfs", home]
        made: set[str] = set()
        for path in sorted(p for p in needed if _under(p, home) and p != home):
            parts = Path(path).relative_to(home).parts
            for depth in range(1, len(parts)):
                parent = os.path.join(home, *parts[:depth])
                if parent not in made:
                    made.add(parent)
                    args += ["--perms", "0755", "--dir", parent]
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
    args += ["--bind", scratch, scratch, "--chdir", scratch]
    if as_root:  # setpriv needs these to become nobody; it clears them before the command runs
        args += ["--cap-add", "CAP_SETUID,CAP_SETGID"]
    return args + ["--"]


def _unshare_args(scratch: str, as_root: bool) -> list[str]:
    """unshare + a shell that remounts everything but the scratch copy read-only."""
    script = (
        'set -e; S="$1"; shift; mount --make-rprivate /; mount --bind "$S" "$S"; '
        "for m in $(awk '{print $2}' /proc/self/mounts | sort -u); do "
        'case "$m" in "$S"|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;; '
        '*) mount -o remount,bind,ro "$m" 2>/dev/null || true;; esac; done; '
        'cd "$S"; exec "$@"')
    args = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if not as_root:
        args.append("--map-root-user")
    return args + ["--", "/bin/sh", "-c", script, "sh", scratch]


def _drop_to_nobody_possible() -> bool:
    """Whether `nobody` can read the interpreter without hiding tricks (unshare / rlimits modes)."""
    for path in _interpreter_paths():
        current = Path(path)
        for folder in [current, *current.parents]:
            try:
                if not folder.stat().st_mode & 0o001:
                    return False
            except OSError:
                return False
    return True


def _own_process_count() -> int:
    """Processes of this user now (RLIMIT_NPROC counts them all outside a user namespace)."""
    uid = os.getuid()
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == uid:
                        count += 1
    return count


def _rlimits(limits: SandboxLimits, nproc: int | None) -> list[tuple[int, int]]:
    megabyte = 1024 * 1024
    pairs = [(resource.RLIMIT_CPU, limits.cpu_s), (resource.RLIMIT_AS, limits.memory_mb * megabyte),
             (resource.RLIMIT_FSIZE, limits.file_size_mb * megabyte), (resource.RLIMIT_NOFILE, limits.open_files),
             (resource.RLIMIT_CORE, 0)]
    if nproc is not None:
        pairs.append((resource.RLIMIT_NPROC, nproc))
    return pairs


def _preexec(pairs: list[tuple[int, int]], drop: bool) -> None:
    """In the child before exec: limits, then (rlimits mode as root) nobody."""
    for kind, value in pairs:
        resource.setrlimit(kind, (value, value))
    if drop:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def _probe(mechanism: str) -> str:
    """'' when `mechanism` runs a trivial command here, else why not."""
    if mechanism == "rlimits":
        return ""
    tool = "bwrap" if mechanism == "bwrap" else "unshare"
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    with tempfile.TemporaryDirectory(prefix="codeassist-probe-") as folder:
        sandbox = Sandbox(mechanism, SandboxLimits(wall_s=10))
        try:
            result = sandbox.run([sys.executable, "-I", "-S", "-c", "print('ok')"], folder)
        except OSError as error:
            return str(error)
        if result.ok and result.stdout.strip() == "ok":
            return ""
        return (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1][:200]


@functools.lru_cache(maxsize=8)
def detect_isolation(preferred: str = "auto") -> tuple[str, str]:
    """(mechanism, note): the best isolation that works on this machine; note says what is off, if anything."""
    order = MECHANISMS if preferred in ("auto", "") else (preferred, *[m for m in MECHANISMS if m != preferred])
    failures = []
    for mechanism in order:
        problem = _probe(mechanism)
        if not problem:
            if mechanism == "rlimits":
                note = ("sandbox: no isolation tool works here (" + "; ".join(failures) + "): network and file "
                        "isolation are OFF, only resource limits and a clean environment apply; install bubblewrap")
                log.warning("%s", note)
                return mechanism, note
            if failures:
                log.info("sandbox: using %s (%s)", mechanism, "; ".join(failures))
            return mechanism, ""
        failures.append(f"{mechanism}: {problem}")
    return "rlimits", "sandbox: no isolation at all"


def clean_environment(scratch: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment sandboxed code sees: no proxies, tokens or user paths; HOME and TMPDIR in the scratch."""
    bin_dirs = [os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]
    env = {"PATH": ":".join(dict.fromkeys(bin_dirs)), "HOME": scratch, "TMPDIR": os.path.join(scratch, ".tmp"),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
           "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    if extra:
        env.update(extra)
    return env


class Sandbox:
    """Runs commands in a scratch folder with limits and the best isolation available (see the module doc)."""

    def __init__(self, mechanism: str = "auto", limits: SandboxLimits = SandboxLimits()) -> None:
        self.preferred = mechanism
        self.limits = limits
        self._mechanism = mechanism if mechanism in MECHANISMS else None
        self.note = ""

    @property
    def mechanism(self) -> str:
        """The isolation in use (probed once per process)."""
        if self._mechanism is None:
            self._mechanism, self.note = detect_isolation(self.preferred)
        return self._mechanism

    @property
    def enforces_process_limit(self) -> bool:
        """Whether the process-count limit holds (the kernel exempts root: bwrap runs the code as nobody;
        unshare and rlimits can only when nobody can read the interpreter)."""
        if self.mechanism == "bwrap" or os.geteuid() != 0:
            return True
        return _drop_to_nobody_possible()

    def describe(self) -> str:
        """One line for status: the mechanism and what is off."""
        mechanism = self.mechanism
        if mechanism == "rlimits":
            return self.note or ("sandbox: rlimits only: network and file isolation are OFF (resource limits "
                                 "and a clean environment apply); install bubblewrap")
        limit = "" if self.enforces_process_limit else "; the process limit does not hold (runs as root)"
        return f"sandbox: {mechanism} (no network, read-only outside the scratch copy, limits{limit})"

    @contextlib.contextmanager
    def scratch(self, files: Mapping[str, str] | None = None, copy_from: str | None = None,
                copy_filter: object = None) -> Iterator[str]:
        """A fresh scratch folder (optionally a copy of `copy_from` and then `files`), removed afterwards."""
        folder = tempfile.mkdtemp(prefix="codeassist-sandbox-")
        try:
            if copy_from is not None:
                shutil.copytree(copy_from, folder, dirs_exist_ok=True, symlinks=True,
                                ignore=copy_filter if callable(copy_filter) else None)
            for name, text in (files or {}).items():
                path = Path(folder, name)
                if not path.resolve().is_relative_to(Path(folder).resolve()):
                    raise ValueError(f"scratch file outside the scratch folder: {name}")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            os.makedirs(os.path.join(folder, ".tmp"), exist_ok=True)
            os.chmod(folder, 0o755)
            if os.geteuid() == 0:  # the sandboxed code runs as nobody and writes only here
                for root, dirs, names in os.walk(folder):
                    for name in [*dirs, *names]:
                        os.lchown(os.path.join(root, name), NOBODY, NOBODY)
                os.chown(folder, NOBODY, NOBODY)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def command(self, argv: Sequence[str], scratch: str, limits: SandboxLimits | None = None
                ) -> tuple[list[str], bool, int | None]:
        """(full argv, drop to nobody in preexec, RLIMIT_NPROC for preexec) for `argv` run in `scratch`."""
        limits, mechanism = limits or self.limits, self.mechanism
        as_root = os.geteuid() == 0
        inner = [*argv]
        if mechanism == "bwrap":
            wrap = ["prlimit", f"--nproc={limits.processes}:{limits.processes}", "--"]
            if as_root:
                wrap = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
                        "--bounding-set=-all", "--", *wrap]
            return [*_bwrap_args(scratch, limits, as_root, ()), *wrap, *inner], False, None
        if mechanism == "unshare":
            wrap = ["prlimit", f"--nproc={limits.processes}:{limits.processes}", "--"]
            if as_root and _drop_to_nobody_possible():
                wrap = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *wrap]
            return [*_unshare_args(scratch, as_root), *wrap, *inner], False, None
        if as_root:
            drop = _drop_to_nobody_possible()
            return inner, drop, limits.processes if drop else None
        return inner, False, _own_process_count() + limits.processes

    def run(self, argv: Sequence[str], scratch: str, *, env: Mapping[str, str] | None = None,
            stdin: str | None = None, limits: SandboxLimits | None = None) -> SandboxResult:
        """Run `argv` in `scratch` (made by `scratch()`); the process group is killed at the wall-clock limit."""
        limits = limits or self.limits
        mechanism = self.mechanism
        full, drop, nproc = self.command(argv, scratch, limits)
        pairs = _rlimits(limits, nproc)
        started = time.perf_counter()
        process = subprocess.Popen(
            full, cwd=scratch, env=clean_environment(scratch, env), stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=functools.partial(_preexec, pairs, drop), close_fds=True)
        timed_out = False
        try:
            stdout, stderr = process.communicate(stdin.encode() if stdin else None, timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process.pid)
            try:
                stdout, stderr = process.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a pipe held open by an escaped grandchild
                process.kill()
                stdout, stderr = b"", b""
        finally:
            _kill_group(process.pid)  # leftovers of a run that ended (a background child) go too
        elapsed = (time.perf_counter() - started) * 1000
        limit = 1 << 20  # what a candidate prints is bounded by what we keep
        return SandboxResult(process.returncode, stdout[:limit].decode("utf-8", "replace"),
                             stderr[:limit].decode("utf-8", "replace"), timed_out, elapsed, mechanism)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@functools.lru_cache(maxsize=1)
def default_sandbox() -> Sandbox:
    """The process-wide sandbox with default limits."""
    return Sandbox()

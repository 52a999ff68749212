"""Workspace and organisation policy: what codeassist may send where, and where it stays silent.

Two files apply together, and of any two rules the stricter wins:

* the workspace policy, `.codeassist/policy.toml`, the first found walking up from the workspace
  root (a repository can carry its own rules);
* the admin policy, the file named by the environment variable `CODEASSIST_POLICY` (an
  organisation's rules, set outside the editor).

Keys of a policy file (every key optional; an unknown key makes the file malformed):

* `local_only = true` - no code leaves the machine: a tier whose `engine` is "remote" runs locally
  instead, and a shared cache (`cache.redis.url`) is allowed only on a loopback host.
* `allowed_remote_hosts = ["gpu.internal", "*.corp.example"]` - remote inference servers and the
  shared cache only on hosts matching one of these patterns (fnmatch, case-insensitive, the host
  name alone, loopback names included: list "localhost" for a local server). Others are refused:
  the tier runs locally, the shared cache is off. Both files' lists apply (a host must pass both).
* `[[disable]]` tables - `features` (any of "completion", "actions", "hover"; default all) do
  nothing for documents matching the table: `languages` (LSP languageIds) and `paths` (gitignore
  patterns) narrow it, and both must match when both are given; a table with neither matches
  every document. Paths are relative to the folder holding `.codeassist/` (workspace policy) or
  to the workspace root (admin policy); a pattern without a slash matches the file name anywhere.
* `max_context_tokens = N` - caps `completion.contextTokens` and `actions.contextTokens`.

A policy must never fail open: a file that cannot be read or parsed, or that holds an unknown key
or a wrong type (or a `CODEASSIST_POLICY` naming a missing file), counts as a lockdown - local only,
no remote host, every feature disabled everywhere - and the user is told once what to fix.

The policy is read at initialize and again on every didChangeConfiguration and workspace folder
change; an edit to a policy file takes effect at the next of these (or a restart).
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import ipaddress
import logging
import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import pathspec

from codeassist_lsp.config import Settings

log = logging.getLogger(__name__)

POLICY_ENV = "CODEASSIST_POLICY"
WORKSPACE_POLICY = Path(".codeassist") / "policy.toml"
FEATURES = ("completion", "actions", "hover")
_KEYS = {"local_only", "allowed_remote_hosts", "disable", "max_context_tokens"}
_DISABLE_KEYS = {"features", "languages", "paths"}


class PolicyError(ValueError):
    """A policy file that cannot be read as one (the caller turns it into a lockdown)."""


def is_loopback_host(host: str | None) -> bool:
    """Whether `host` names this machine without leaving it: "localhost" or a loopback address."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: resolving it would trust DNS, so only "localhost" counts


def url_host(url: str) -> str | None:
    """The host name of a URL ("redis://h:6379/0" -> "h"), lowercased; None when it has none."""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


@functools.lru_cache(maxsize=64)
def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    """The compiled patterns (a rule is checked on every keystroke)."""
    return pathspec.GitIgnoreSpec.from_lines(patterns)


@attrs.frozen
class DisableRule:
    """One `[[disable]]` table: these features do nothing for matching documents."""

    features: tuple[str, ...] = FEATURES
    languages: tuple[str, ...] = ()
    """LSP languageIds; empty = any language."""
    paths: tuple[str, ...] = ()
    """gitignore patterns relative to `base`; empty = any path."""
    base: Path | None = None
    """The folder `paths` are relative to (None: only name patterns can match)."""

    def matches(self, feature: str, language_id: str, path: str | None) -> bool:
        """Whether this rule disables `feature` for a document."""
        if feature not in self.features:
            return False
        if self.languages and language_id not in self.languages:
            return False
        return not self.paths or (path is not None and self._path_matches(path))

    def _path_matches(self, path: str) -> bool:
        spec = _spec(self.paths)
        absolute = Path(os.path.abspath(path))
        if self.base is not None:
            try:
                relative = absolute.relative_to(self.base)
            except ValueError:
                relative = None
            if relative is not None:
                return spec.match_file(relative.as_posix())
        # Outside the base: name patterns (no slash) still apply to the file name, like fnmatch.
        name_patterns = [p for p in self.paths if "/" not in p.strip("/")]
        return any(fnmatch.fnmatch(absolute.name, p) for p in name_patterns)

    def describe(self) -> dict[str, Any]:
        """The rule for the status command."""
        return {"features": list(self.features), "languages": list(self.languages), "paths": list(self.paths),
                "base": str(self.base) if self.base else None}


@attrs.frozen
class PolicyFile:
    """What one policy file says (a malformed file reads as a lockdown with its `error`)."""

    source: Path
    local_only: bool = False
    allowed_remote_hosts: tuple[str, ...] | None = None
    """None: any host; () : none."""
    disable: tuple[DisableRule, ...] = ()
    max_context_tokens: int | None = None
    error: str | None = None

    @classmethod
    def lockdown(cls, source: Path, error: str) -> PolicyFile:
        """The strictest reading, for a file that could not be understood."""
        return cls(source, local_only=True, allowed_remote_hosts=(), disable=(DisableRule(),), error=error)


@attrs.frozen
class Policy:
    """The policies in force; every rule of every file applies (the stricter wins)."""

    files: tuple[PolicyFile, ...] = ()

    @property
    def sources(self) -> list[Path]:
        """The files this policy came from."""
        return [f.source for f in self.files]

    @property
    def errors(self) -> list[str]:
        """One message per malformed file, for the user."""
        return [f"The policy {f.source} cannot be used ({f.error}); until it is fixed codeassist runs locked "
                "down: local models only, no shared cache, completion, actions and hover off."
                for f in self.files if f.error]

    @property
    def local_only(self) -> bool:
        """Whether any file forbids code leaving the machine."""
        return any(f.local_only for f in self.files)

    @property
    def max_context_tokens(self) -> int | None:
        """The smallest context cap of any file, or None."""
        caps = [f.max_context_tokens for f in self.files if f.max_context_tokens is not None]
        return min(caps) if caps else None

    def host_allowed(self, host: str | None) -> bool:
        """Whether a remote host passes every file's `allowed_remote_hosts`."""
        for f in self.files:
            if f.allowed_remote_hosts is not None and not (
                    host and any(fnmatch.fnmatchcase(host.lower(), p.lower()) for p in f.allowed_remote_hosts)):
                return False
        return True

    def allows(self, feature: str, language_id: str, path: str | None) -> bool:
        """Whether `feature` ("completion", "actions", "hover") may run for this document."""
        return not any(rule.matches(feature, language_id or "", path) for f in self.files for rule in f.disable)

    def apply(self, settings: Settings) -> tuple[Settings, list[str]]:
        """Settings tightened to this policy (the input is left as it was), and one message per override."""
        tightened = copy.deepcopy(settings)
        messages: list[str] = []
        origin = ", ".join(str(s) for s in self.sources)
        for section, model in (("model", tightened.model), ("actions.model", tightened.actions.model)):
            if model.engine != "remote":
                continue
            host = url_host(model.remote.url or "")
            if self.local_only:
                why = "local_only is set"
            elif not self.host_allowed(host):
                why = f"{host or 'its host'} is not in allowed_remote_hosts"
            else:
                continue
            model.engine = "local"
            messages.append(f"Policy ({origin}): {section}.engine 'remote' ({model.remote.url}) is not allowed "
                            f"because {why}; the local model is used instead.")
        redis = getattr(tightened.cache, "redis", None)
        redis_url = getattr(redis, "url", None)
        if redis_url:
            host = url_host(redis_url)
            why = ("local_only allows a shared cache only on a loopback host" if self.local_only
                   and not is_loopback_host(host) else
                   f"{host or 'its host'} is not in allowed_remote_hosts" if not self.host_allowed(host) else None)
            if why is not None:
                redis.url = None  # type: ignore[union-attr]
                messages.append(f"Policy ({origin}): the shared cache on {host} is off because {why}.")
        cap = self.max_context_tokens
        if cap is not None:
            for name, owner in (("completion.contextTokens", tightened.completion),
                                ("actions.contextTokens", tightened.actions)):
                if owner.context_tokens > cap:
                    messages.append(f"Policy ({origin}): {name} {owner.context_tokens} is capped at "
                                    f"max_context_tokens = {cap}.")
                    owner.context_tokens = cap
        return tightened, messages

    def describe(self) -> dict[str, Any]:
        """The policy in force, for the status command."""
        host_lists = [list(f.allowed_remote_hosts) for f in self.files if f.allowed_remote_hosts is not None]
        return {
            "sources": [str(s) for s in self.sources],
            "localOnly": self.local_only,
            "allowedRemoteHosts": host_lists or None,  # a host must match one pattern of every list
            "disable": [rule.describe() for f in self.files for rule in f.disable],
            "maxContextTokens": self.max_context_tokens,
            "errors": self.errors,
        }


def find_workspace_policy(workspace_root: Path) -> Path | None:
    """`.codeassist/policy.toml` in the workspace root or the nearest folder above it that has one."""
    folder = workspace_root.resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / WORKSPACE_POLICY
        if path.is_file():
            return path
    return None


def load_policy(workspace_root: Path | None) -> Policy:
    """The workspace policy (walking up from `workspace_root`) and the admin policy ($CODEASSIST_POLICY)."""
    files: list[PolicyFile] = []
    root = Path(workspace_root).resolve() if workspace_root is not None else None
    if root is not None:
        found = find_workspace_policy(root)
        if found is not None:
            files.append(read_policy_file(found, base=found.parent.parent))
    admin = os.environ.get(POLICY_ENV, "").strip()
    if admin:
        files.append(read_policy_file(Path(admin).expanduser(), base=root))
    return Policy(tuple(files))


def read_policy_file(path: Path, *, base: Path | None) -> PolicyFile:
    """One policy file; a lockdown when it cannot be read or understood (never fail open)."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
        return _parse(path, data, base)
    except (OSError, tomllib.TOMLDecodeError, PolicyError, UnicodeDecodeError) as error:
        log.warning("policy %s is malformed, locking down: %s", path, error)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return PolicyFile.lockdown(path, reason)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(f"{key} must be a list of strings")
    return tuple(value)


def _parse(path: Path, data: dict[str, Any], base: Path | None) -> PolicyFile:
    unknown = set(data) - _KEYS
    if unknown:
        raise PolicyError(f"unknown key {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}")
    local_only = data.get("local_only", False)
    if not isinstance(local_only, bool):
        raise PolicyError("local_only must be true or false")
    hosts = _strings(data["allowed_remote_hosts"], "allowed_remote_hosts") if "allowed_remote_hosts" in data else None
    cap = data.get("max_context_tokens")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise PolicyError("max_context_tokens must be a positive integer")
    tables = data.get("disable", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise PolicyError("disable must be [[disable]] tables")
    rules = []
    for table in tables:
        unknown = set(table) - _DISABLE_KEYS
        if unknown:
            raise PolicyError(f"unknown key {', '.join(sorted(unknown))} in [[disable]]")
        features = _strings(table["features"], "disable.features") if "features" in table else FEATURES
        wrong = [f for f in features if f not in FEATURES]
        if wrong:
            raise PolicyError(f"disable.features: unknown feature {', '.join(wrong)} (known: {', '.join(FEATURES)})")
        paths = _strings(table.get("paths", []), "disable.paths")
        try:
            pathspec.GitIgnoreSpec.from_lines(paths)
        except Exception as error:  # pathspec raises several types for a bad pattern
            raise PolicyError(f"disable.paths: {error}") from error
        rules.append(DisableRule(features=features, languages=_strings(table.get("languages", []), "disable.languages"),
                                 paths=paths, base=base))
    return PolicyFile(path, local_only=local_only, allowed_remote_hosts=hosts, disable=tuple(rules),
                      max_context_tokens=cap)


__all__ = ["FEATURES", "POLICY_ENV", "DisableRule", "Policy", "PolicyFile", "is_loopback_host", "load_policy",
           "read_policy_file"]

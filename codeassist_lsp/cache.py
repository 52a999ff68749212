"""The multi-level completion cache: an in-memory LRU in front of a persistent disk tier.

A key is the model identity + every decoding parameter + a hash of the exact prompt tokens, so a
changed model or setting can never be answered with text produced under the old one. Tiers share
one small interface (`CacheTier`); a distributed tier (Redis) plugs in as one more class.
A tier that cannot be used (unwritable or corrupt directory) is dropped with one warning: the
cache is an optimisation, never a reason for a completion to fail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from codeassist_lsp.config import CacheSettings
from codeassist_lsp.errors import StorageUnavailable, report_unavailable

log = logging.getLogger(__name__)

KEY_VERSION = 2  # bump when what a key covers changes


@attrs.frozen
class CachedCompletion:
    """The model's raw output for one prompt (shaping and verification run again on a hit)."""

    text: str
    finish_reason: str
    generated_tokens: int = 0

    def to_json(self) -> str:
        """Plain JSON: the disk tier never unpickles anything."""
        return json.dumps({"text": self.text, "finish_reason": self.finish_reason,
                           "generated_tokens": self.generated_tokens})

    @classmethod
    def from_json(cls, raw: str) -> CachedCompletion:
        """Read what to_json wrote."""
        data = json.loads(raw)
        return cls(text=str(data["text"]), finish_reason=str(data["finish_reason"]),
                   generated_tokens=int(data.get("generated_tokens", 0)))


def completion_key(model_id: str, params: Mapping[str, Any], prompt: Sequence[str | None]) -> str:
    """sha256 over model identity, decoding parameters and the exact prompt.

    The prompt is given as the strings its tokens are made of, so a lookup needs no tokenising:
    the model's tokenizer maps equal strings to equal tokens.
    """
    digest = hashlib.sha256()
    digest.update(f"v{KEY_VERSION}\0{model_id}\0".encode())
    digest.update(json.dumps(params, sort_keys=True, default=repr).encode())
    for part in prompt:
        data = b"" if part is None else part.encode("utf-8", "surrogatepass")
        # Length-prefixed so that no split of the same characters into parts collides.
        digest.update(b"\0none" if part is None else f"\0text{len(data)}\0".encode() + data)
    return digest.hexdigest()


class CacheUnavailable(Exception):
    """A tier could not be opened or used."""


class CacheTier(Protocol):
    """One level of the cache. Implementations raise CacheUnavailable when they stop working."""

    name: str

    def get(self, key: str) -> CachedCompletion | None:
        """The stored completion, or None."""
        ...

    def set(self, key: str, value: CachedCompletion) -> None:
        """Store a completion."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...


class MemoryTier:
    """A bounded LRU in process memory (thread-safe: the LSP loop and the model thread both use it)."""

    name = "memory"

    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max(1, max_entries)
        self._entries: OrderedDict[str, CachedCompletion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedCompletion | None:
        """The entry, marked most recently used."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: CachedCompletion) -> None:
        """Store, evicting the least recently used beyond max_entries."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()


def _private(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:
        log.debug("could not chmod %s", path, exc_info=True)


class DiskTier:
    """diskcache (SQLite) under the user cache dir: persistent, size-capped, private to the user."""

    name = "disk"

    def __init__(self, directory: Path, size_limit_bytes: int) -> None:
        self.directory = directory
        try:
            import diskcache

            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _private(directory, 0o700)
            self._cache = diskcache.Cache(
                str(directory), size_limit=size_limit_bytes, eviction_policy="least-recently-stored",
                # Completions are small: keep every value inside the database, never as loose files.
                disk_min_file_size=1 << 20,
            )
            # Prove the tier works now rather than on the first keystroke.
            self._cache.set("__probe__", "ok")
            if self._cache.get("__probe__") != "ok":
                raise CacheUnavailable("the probe entry did not read back")
            self._cache.delete("__probe__")
        except CacheUnavailable:
            raise
        except Exception as error:  # sqlite3.DatabaseError, OSError, PermissionError, ...
            raise CacheUnavailable(f"{type(error).__name__}: {error}") from error
        for entry in directory.iterdir():
            if entry.is_file():
                _private(entry, 0o600)

    def get(self, key: str) -> CachedCompletion | None:
        """The stored completion, or None (an unreadable entry counts as a miss)."""
        try:
            raw = self._cache.get(key)
        except Exception as error:
            raise CacheUnavailable(f"{type(error).__name__}: {error}") from error
        if raw is None:
            return None
        try:
            return CachedCompletion.from_json(raw)
        except (ValueError, KeyError, TypeError):
            return None

    def set(self, key: str, value: CachedCompletion) -> None:
        """Store a completion (evicts the oldest beyond the size cap)."""
        try:
            self._cache.set(key, value.to_json())
        except Exception as error:
            raise CacheUnavailable(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        """Close the database."""
        try:
            self._cache.close()
        except Exception:
            log.debug("closing the disk cache failed", exc_info=True)


@attrs.define
class CacheStats:
    """Lookups and where they were answered."""

    lookups: int = 0
    hits: dict[str, int] = attrs.Factory(dict)
    stores: int = 0

    @property
    def hit_rate(self) -> float:
        """Share of lookups answered by any tier."""
        return sum(self.hits.values()) / self.lookups if self.lookups else 0.0


class CompletionCache:
    """Tiers searched in order; a hit in a lower tier is copied into the tiers above it."""

    def __init__(self, tiers: Sequence[CacheTier]) -> None:
        self.tiers: list[CacheTier] = list(tiers)
        self.stats = CacheStats()

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> CompletionCache:
        """Memory tier, plus the disk tier when enabled and usable (else one warning)."""
        tiers: list[CacheTier] = [MemoryTier(settings.memory_entries)]
        if settings.disk:
            directory = Path(settings.directory).expanduser() if settings.directory else default_directory()
            try:
                tiers.append(DiskTier(directory, settings.disk_size_mb * 1024 * 1024))
            except CacheUnavailable as error:
                log.warning("completion disk cache disabled: %s is not usable (%s)", directory, error)
                report_unavailable(disk_cache_problem(directory, error))
        return cls(tiers)

    @property
    def tier_names(self) -> list[str]:
        """The tiers in use, fastest first."""
        return [tier.name for tier in self.tiers]

    def get(self, key: str) -> tuple[CachedCompletion, str] | None:
        """(completion, tier name) for a hit, else None."""
        self.stats.lookups += 1
        for depth, tier in enumerate(list(self.tiers)):
            try:
                value = tier.get(key)
            except CacheUnavailable as error:
                self._drop(tier, error)
                continue
            if value is not None:
                self.stats.hits[tier.name] = self.stats.hits.get(tier.name, 0) + 1
                for upper in self.tiers[:depth]:
                    self._store(upper, key, value)
                return value, tier.name
        return None

    def set(self, key: str, value: CachedCompletion) -> None:
        """Store in every tier."""
        self.stats.stores += 1
        for tier in list(self.tiers):
            self._store(tier, key, value)

    def _store(self, tier: CacheTier, key: str, value: CachedCompletion) -> None:
        try:
            tier.set(key, value)
        except CacheUnavailable as error:
            self._drop(tier, error)

    def _drop(self, tier: CacheTier, error: Exception) -> None:
        if tier in self.tiers:
            self.tiers.remove(tier)
            log.warning("completion cache tier %s failed (%s); continuing without it", tier.name, error)
            tier.close()
            if isinstance(tier, DiskTier):
                report_unavailable(disk_cache_problem(tier.directory, error))

    def close(self) -> None:
        """Close every tier."""
        for tier in self.tiers:
            tier.close()


def disk_cache_problem(directory: Path, error: Exception) -> StorageUnavailable:
    """The user's view of a disk tier that failed: what it costs and how to fix it."""
    return StorageUnavailable(
        f"The completion cache in {directory} cannot be used ({error}); completions are cached in memory only.",
        hint="Free space on that disk or make the folder writable, or set codeassist.cache.directory to another "
             "folder (codeassist.cache.disk false turns the disk cache off).")


def default_directory() -> Path:
    """<user cache dir>/completions."""
    from codeassist_lsp.engine.models import cache_dir

    return cache_dir() / "completions"

"""The multi-level completion cache: an in-memory LRU, a persistent disk tier, a team's Redis.

A key is the model identity + every decoding parameter + a hash of the exact prompt tokens, so a
changed model or setting can never be answered with text produced under the old one. Tiers share
one small interface (`CacheTier`). A tier that cannot be used (unwritable or corrupt directory) is
dropped with one warning: the cache is an optimisation, never a reason for a completion to fail.
The Redis tier rides out outages itself (misses without network calls while it backs off).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import attrs

from codeassist_lsp.config import CacheSettings, RedisSettings
from codeassist_lsp.errors import ComponentUnavailable, StorageUnavailable, report_unavailable

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


class SharedCacheUnavailable(ComponentUnavailable):
    """The team's shared completion cache (Redis) cannot be used; the memory and disk tiers go on."""

    component = "redis"


class RedisTier:
    """A completion cache shared by a team's editors on one Redis server (values only, never prompts).

    Lookups run on the keystroke path, so an outage costs at most one `timeoutMs`: after an error the
    tier answers misses without any network call until a backoff elapses (1 s, doubling to 30 s),
    then the next call tries once more. It never raises CacheUnavailable for an outage (that would
    drop it for good); a refused password turns it off for the session instead.
    """

    name = "redis"

    def __init__(self, settings: RedisSettings, *, backoff_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if not settings.url:
            raise ValueError("RedisTier needs cache.redis.url")
        parts = urlsplit(settings.url)
        self.where = f"{parts.hostname}:{parts.port or 6379}"  # for messages: never credentials
        self.password_env = settings.password_env
        self.prefix = settings.prefix
        self.ttl_seconds = settings.ttl_seconds
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic start of the current outage
        self._retry_at = 0.0  # while down, no call touches the network before this
        self._backoff = backoff_s
        self._outages = 0
        self.disabled = False
        password = None
        if settings.password_env:
            password = os.environ.get(settings.password_env)
            if not password:
                self._turn_off(SharedCacheUnavailable(
                    f"The shared completion cache at {self.where} is not used: the environment variable "
                    f"{settings.password_env} named by codeassist.cache.redis.passwordEnv is not set; "
                    "completions are not shared with your team.",
                    hint=f"Set {settings.password_env} to the Redis password where the editor starts, "
                         "then restart the language server."))
        # A refused password or a user without rights to GET/SET: no retry will fix it.
        self._refusals = (redis.AuthenticationError, redis.exceptions.NoPermissionError)
        timeout = settings.timeout_ms / 1000
        self._client = redis.Redis(
            host=parts.hostname or "localhost", port=parts.port or 6379, db=int(parts.path.strip("/") or 0),
            username=unquote(parts.username) if parts.username else None, password=password,
            ssl=parts.scheme == "rediss",  # certificates and host name verified (redis-py's defaults)
            socket_timeout=timeout, socket_connect_timeout=timeout,
            # redis-py retries 3 times with sleeps by default: on the keystroke path one try is all we can afford.
            retry=Retry(NoBackoff(), 0),
        )

    @classmethod
    def open(cls, settings: RedisSettings) -> RedisTier:
        """A tier that has answered a PING, or one in an outage that retries later; CacheUnavailable when
        it is turned off (no password, password refused): it has told the user why already."""
        tier = cls(settings)
        if not tier.disabled:
            tier._call(tier._client.ping)
        if tier.disabled:
            tier.close()
            raise CacheUnavailable(f"the shared cache at {tier.where} is turned off")
        return tier

    @property
    def available(self) -> bool:
        """Whether the next call would reach the server (not turned off, not inside a backoff)."""
        return not self.disabled and (self._down_since is None or time.monotonic() >= self._retry_at)

    def get(self, key: str) -> CachedCompletion | None:
        """The shared completion, or None (also while Redis is down or off, without waiting on it)."""
        raw = self._call(self._client.get, self.prefix + key)
        if not isinstance(raw, bytes):
            return None
        try:
            return CachedCompletion.from_json(raw.decode())
        except (ValueError, KeyError, TypeError):  # another writer's value under our prefix
            return None

    def set(self, key: str, value: CachedCompletion) -> None:
        """Share a completion for ttlSeconds, unless its text holds a secret (a key, a token)."""
        if not self.available or _holds_secret(value.text):
            return
        self._call(self._client.set, self.prefix + key, value.to_json(), ex=self.ttl_seconds)

    def close(self) -> None:
        """Close the connections."""
        try:
            self._client.close()
        except Exception:
            log.debug("closing the Redis client failed", exc_info=True)

    def _call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one command, or return None at once while off or backing off; never raises."""
        if self.disabled:
            return None
        retrying = False
        if self._down_since is not None:
            with self._lock:
                now = time.monotonic()
                if self._down_since is not None:
                    if now < self._retry_at:
                        return None
                    # This call is the retry: the calls that come while it runs answer misses.
                    self._retry_at = now + self._backoff
                    retrying = True
        try:
            result = command(*args, **kwargs)
        except self._refusals as error:
            if self.password_env:
                fix = (f"Put the right password in the environment variable {self.password_env} "
                       "(codeassist.cache.redis.passwordEnv) and restart the language server, or unset "
                       "codeassist.cache.redis.url.")
            else:
                fix = ("Set codeassist.cache.redis.passwordEnv to the name of an environment variable that holds "
                       "the Redis password, or unset codeassist.cache.redis.url.")
            self._turn_off(SharedCacheUnavailable(
                f"The shared completion cache at {self.where} refused codeassist ({error}); "
                "completions are not shared with your team.", hint=fix))
            return None
        except Exception as error:  # ConnectionError, TimeoutError, SSL, OOM...: a cache must never fail a completion
            self._failed(error, retrying)
            return None
        if self._down_since is not None:
            self._recovered()
        return result

    def _failed(self, error: Exception, retrying: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if self._down_since is not None and not retrying:
                return  # a call that was already under way when the outage began
            new_outage = self._down_since is None
            if new_outage:
                self._down_since, self._backoff = now, self.backoff_s
                self._outages += 1
            else:
                self._backoff = min(self._backoff * 2, self.max_backoff_s)
            self._retry_at = now + self._backoff
            first = self._outages == 1
        if not new_outage:
            log.debug("shared completion cache at %s still down (%s); next try in %.0f s",
                      self.where, error, self._backoff)
        elif first:  # the user hears once; the log gets one warning per outage
            report_unavailable(SharedCacheUnavailable(
                f"The shared completion cache at {self.where} cannot be reached ({type(error).__name__}: {error}); "
                "completions are not shared with your team meanwhile (the memory and disk caches still work) "
                "and codeassist tries again by itself.",
                hint="Start the Redis server or check the network and TLS setup, or unset codeassist.cache.redis.url "
                     "to turn the shared cache off."))
        else:
            log.warning("shared completion cache at %s unreachable again (%s: %s); memory and disk only, "
                        "retrying in %.0f s", self.where, type(error).__name__, error, self._backoff)

    def _recovered(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down_for = time.monotonic() - self._down_since
            self._down_since, self._backoff = None, self.backoff_s
        log.info("shared completion cache at %s is back after %.1f s; completions are shared again",
                 self.where, down_for)

    def _turn_off(self, problem: SharedCacheUnavailable) -> None:
        with self._lock:
            if self.disabled:
                return
            self.disabled = True
        problem.component = "redis-auth"  # a different fix from an outage: its own message
        report_unavailable(problem)


_secret_check_missing = False


def _holds_secret(text: str) -> bool:
    """Whether a completion must stay off the shared tier; when the check cannot run, yes (fail closed)."""
    global _secret_check_missing
    try:
        from codeassist_lsp.redact import contains_secret

        return contains_secret(text)
    except Exception:
        if not _secret_check_missing:
            _secret_check_missing = True
            log.warning("the secret check (codeassist_lsp.redact) could not run; completions it cannot check "
                        "are not shared through Redis", exc_info=True)
        return True


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
        """Memory tier, then the disk tier when enabled and usable (else one warning), then Redis when set."""
        tiers: list[CacheTier] = [MemoryTier(settings.memory_entries)]
        if settings.disk:
            directory = Path(settings.directory).expanduser() if settings.directory else default_directory()
            try:
                tiers.append(DiskTier(directory, settings.disk_size_mb * 1024 * 1024))
            except CacheUnavailable as error:
                log.warning("completion disk cache disabled: %s is not usable (%s)", directory, error)
                report_unavailable(disk_cache_problem(directory, error))
        if settings.redis.url:
            try:
                tiers.append(RedisTier.open(settings.redis))
            except CacheUnavailable as error:
                log.debug("completion cache without Redis: %s", error)  # the tier told the user why
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

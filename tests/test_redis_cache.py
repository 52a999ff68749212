"""The shared Redis tier against a real redis-server: sharing, TTL, secrets, outages, auth, settings."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codeassist_lsp.cache import CachedCompletion, CompletionCache, RedisTier
from codeassist_lsp.config import CacheSettings, RedisSettings, parse_settings
from codeassist_lsp.errors import ComponentUnavailable, InvalidSettings, listen_for_unavailable

redis = pytest.importorskip("redis")

REDIS_SERVER = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed "
                                "(editors/install-test-deps.sh installs Debian's redis-server)")

PASSWORD_ENV = "CODEASSIST_TEST_REDIS_PASSWORD"
AWS_KEY_LINE = "client = boto3.client('s3', aws_access_key_id='AKIAZ7Q4M2XW9RT3KD5B')\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process on a loopback port, without persistence; can be killed and restarted."""

    def __init__(self, directory: Path, password: str | None = None, certificate: Path | None = None) -> None:
        self.directory = directory
        self.password = password
        self.certificate = certificate  # TLS only (rediss://), its key beside it as key.pem
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.certificate else 'redis'}://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        """A plain redis-py client to look at what the tier stored."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2)

    def start(self) -> None:
        assert REDIS_SERVER is not None
        port = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.certificate),
                "--tls-key-file", str(self.certificate.with_name("key.pem")), "--tls-auth-clients", "no",
                ] if self.certificate else ["--port", str(self.port)]
        args = [REDIS_SERVER, *port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "redis.log").read_text() if (self.directory / "redis.log").exists() else ""
                    raise RuntimeError(f"redis-server did not start on port {self.port}: {log[-2000:]}") from None
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    running = RedisServer(tmp_path)
    running.start()
    yield running
    running.kill()


@pytest.fixture
def told() -> Iterator[list[ComponentUnavailable]]:
    """What the server's edge would tell the user."""
    heard: list[ComponentUnavailable] = []
    listen_for_unavailable(heard.append)
    yield heard
    listen_for_unavailable(None)


def _cache(tmp_path: Path, name: str, redis_settings: RedisSettings, disk: bool = True) -> CompletionCache:
    """One editor's cache: its own memory and disk tiers, the team's Redis."""
    return CompletionCache.from_settings(CacheSettings(directory=str(tmp_path / name), disk=disk, redis=redis_settings))


def _redis_tier(cache: CompletionCache) -> RedisTier:
    tier = cache.tiers[-1]
    assert isinstance(tier, RedisTier)
    return tier


def _count_commands(tier: RedisTier) -> list[tuple[Any, ...]]:
    """Record every command the tier sends (each one is a network round trip or a connect attempt)."""
    sent: list[tuple[Any, ...]] = []
    client = tier._client
    execute = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return execute(*args, **options)

    client.execute_command = counting  # type: ignore[method-assign]
    return sent


def test_two_editors_share_a_completion_through_redis(tmp_path: Path, server: RedisServer) -> None:
    settings = RedisSettings(url=server.url, ttl_seconds=120, prefix="team-a:")
    first, second = _cache(tmp_path, "editor-1", settings), _cache(tmp_path, "editor-2", settings)
    assert first.tier_names == second.tier_names == ["memory", "disk", "redis"]
    value = CachedCompletion("os.path.expanduser('~')\n", "stop", 7)
    first.set("k1", value)
    assert second.get("k1") == (value, "redis")
    assert second.get("k1") == (value, "memory")  # promoted into the upper tiers
    # Only the completion is stored, under the prefix, with the TTL.
    raw = server.client()
    assert raw.keys("*") == [b"team-a:k1"]
    assert CachedCompletion.from_json(raw.get("team-a:k1").decode()) == value
    assert 0 < raw.ttl("team-a:k1") <= 120
    first.close()
    second.close()


def test_a_completion_holding_a_secret_stays_out_of_redis(tmp_path: Path, server: RedisServer) -> None:
    cache = _cache(tmp_path, "editor", RedisSettings(url=server.url))
    cache.set("secret", CachedCompletion(AWS_KEY_LINE, "stop"))
    cache.set("plain", CachedCompletion("return 1\n", "stop"))
    assert server.client().keys("*") == [b"codeassist:plain"]
    assert cache.get("secret") is not None  # the private tiers keep it
    cache.close()


def test_an_outage_never_fails_or_slows_a_lookup_and_the_tier_comes_back(
        tmp_path: Path, server: RedisServer, told: list[ComponentUnavailable], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="codeassist_lsp")
    cache = _cache(tmp_path, "editor", RedisSettings(url=server.url))
    tier = _redis_tier(cache)
    tier.backoff_s, tier.max_backoff_s = 0.2, 0.8
    cache.set("kept", CachedCompletion("return 1\n", "stop"))
    sent = _count_commands(tier)

    server.kill()
    assert cache.get("kept") == (CachedCompletion("return 1\n", "stop"), "memory")
    assert cache.get("new-1") is None  # reaches Redis, finds it gone: the outage starts
    assert len(sent) == 1 and not tier.available
    for index in range(50):  # inside the backoff: misses without a single command
        assert cache.get(f"new-{index}") is None
        cache.set(f"stored-{index}", CachedCompletion("pass\n", "stop"))
    assert len(sent) == 1
    assert cache.get("stored-3") == (CachedCompletion("pass\n", "stop"), "memory")
    assert cache.tier_names == ["memory", "disk", "redis"]  # still in the chain
    assert [problem.component for problem in told] == ["redis"]
    assert "not shared with your team" in told[0].for_user()

    server.start()  # same port
    server.client().set("codeassist:from-a-teammate", CachedCompletion("x = 1\n", "stop").to_json())
    deadline = time.monotonic() + 15
    while cache.get("from-a-teammate") is None:
        assert time.monotonic() < deadline, "the Redis tier did not come back after the server restarted"
        time.sleep(0.05)
    assert cache.get("from-a-teammate") == (CachedCompletion("x = 1\n", "stop"), "memory")
    assert tier.available and any("is back" in record.getMessage() for record in caplog.records)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning for the outage, however many lookups it answered
    assert len(told) == 1
    cache.close()


def test_a_second_outage_backs_off_longer_and_logs_once_more(
        tmp_path: Path, server: RedisServer, told: list[ComponentUnavailable], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="codeassist_lsp")
    cache = _cache(tmp_path, "editor", RedisSettings(url=server.url), disk=False)
    tier = _redis_tier(cache)
    tier.backoff_s, tier.max_backoff_s = 0.05, 0.2
    sent = _count_commands(tier)
    for outage in range(2):
        server.kill()
        assert cache.get(f"a-{outage}") is None
        backoffs = []
        for attempt in range(4):  # every retry that fails doubles the wait, up to the cap
            while not tier.available:
                time.sleep(0.01)
            before = len(sent)
            assert cache.get(f"b-{outage}-{attempt}") is None
            assert len(sent) == before + 1  # exactly one retry per backoff
            backoffs.append(tier._backoff)
        assert backoffs == [0.1, 0.2, 0.2, 0.2]
        server.start()
        deadline = time.monotonic() + 15
        while tier._down_since is not None:
            assert time.monotonic() < deadline
            cache.get("probe")
            time.sleep(0.02)
    assert len(told) == 1  # the user hears once; the log once per outage
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    cache.close()


def test_redis_down_when_the_cache_opens(tmp_path: Path, told: list[ComponentUnavailable]) -> None:
    cache = _cache(tmp_path, "editor", RedisSettings(url=f"redis://127.0.0.1:{_free_port()}"))
    assert cache.tier_names == ["memory", "disk", "redis"] and not _redis_tier(cache).available
    cache.set("k", CachedCompletion("return 1\n", "stop"))
    assert cache.get("k") == (CachedCompletion("return 1\n", "stop"), "memory")
    assert [problem.component for problem in told] == ["redis"]
    cache.close()


def test_password_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guarded = RedisServer(tmp_path, password="correct horse battery staple")
    guarded.start()
    try:
        monkeypatch.setenv(PASSWORD_ENV, "correct horse battery staple")
        settings = RedisSettings(url=guarded.url, password_env=PASSWORD_ENV)
        first, second = _cache(tmp_path, "editor-1", settings), _cache(tmp_path, "editor-2", settings)
        first.set("k", CachedCompletion("return 1\n", "stop"))
        assert second.get("k") == (CachedCompletion("return 1\n", "stop"), "redis")
        first.close()
        second.close()
    finally:
        guarded.kill()


@pytest.mark.parametrize("password", ["wrong", None])
def test_a_refused_password_turns_the_tier_off_with_one_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, told: list[ComponentUnavailable],
        caplog: pytest.LogCaptureFixture, password: str | None) -> None:
    caplog.set_level(logging.WARNING, logger="codeassist_lsp")
    guarded = RedisServer(tmp_path, password="correct horse battery staple")
    guarded.start()
    try:
        if password is None:
            monkeypatch.delenv(PASSWORD_ENV, raising=False)
        else:
            monkeypatch.setenv(PASSWORD_ENV, password)
        cache = _cache(tmp_path, "editor", RedisSettings(url=guarded.url, password_env=PASSWORD_ENV))
        assert cache.tier_names == ["memory", "disk"]
        cache.set("k", CachedCompletion("return 1\n", "stop"))
        assert cache.get("k") == (CachedCompletion("return 1\n", "stop"), "memory")
        assert len(told) == 1 and PASSWORD_ENV in told[0].for_user()
        assert "correct horse" not in told[0].for_user()
        assert len([record for record in caplog.records if record.levelno >= logging.WARNING]) == 1
        cache.close()
    finally:
        guarded.kill()


def test_no_password_when_redis_requires_one(tmp_path: Path, told: list[ComponentUnavailable]) -> None:
    guarded = RedisServer(tmp_path, password="correct horse battery staple")
    guarded.start()
    try:
        cache = _cache(tmp_path, "editor", RedisSettings(url=guarded.url))
        assert cache.tier_names == ["memory", "disk"]
        assert len(told) == 1 and "passwordEnv" in told[0].for_user()
        cache.close()
    finally:
        guarded.kill()


@pytest.mark.parametrize("url", ["redis://:hunter2@team-cache:6379/0", "rediss://alice:hunter2@team-cache",
                                 "redis://team-cache:6379?password=hunter2"])
def test_a_password_in_the_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidSettings) as raised:
        parse_settings({"cache": {"redis": {"url": url}}})
    message = raised.value.for_user()
    assert "must not contain a password" in message and "passwordEnv" in message
    assert "hunter2" not in message


def test_redis_settings_on_the_wire() -> None:
    settings = parse_settings({"cache": {"redis": {"url": "rediss://team-cache:6380/2", "passwordEnv": "TEAM_REDIS",
                                                   "ttlSeconds": 600, "timeoutMs": 50, "prefix": "acme:"}}})
    assert settings.cache.redis == RedisSettings(url="rediss://team-cache:6380/2", password_env="TEAM_REDIS",
                                                 ttl_seconds=600, timeout_ms=50, prefix="acme:")
    assert RedisSettings().url is None and RedisSettings().timeout_ms == 100
    for bad in ({"url": "http://team-cache"}, {"url": "redis://team-cache/x"}, {"ttlSeconds": 0}):
        with pytest.raises(InvalidSettings):
            parse_settings({"cache": {"redis": bad}})


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_rediss_verifies_the_server_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                told: list[ComponentUnavailable]) -> None:
    certificate = tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(certificate)], check=True, capture_output=True)
    secure = RedisServer(tmp_path, certificate=certificate)
    secure.start()
    try:
        settings = RedisSettings(url=secure.url)
        untrusted = _cache(tmp_path, "editor-0", settings)  # a self-signed certificate nobody trusts
        assert not _redis_tier(untrusted).available
        assert [problem.component for problem in told] == ["redis"] and "certificate" in told[0].message.lower()
        untrusted.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # the team's CA, trusted the usual way
        first, second = _cache(tmp_path, "editor-1", settings), _cache(tmp_path, "editor-2", settings)
        first.set("k", CachedCompletion("return 1\n", "stop"))
        assert second.get("k") == (CachedCompletion("return 1\n", "stop"), "redis")
        first.close()
        second.close()
    finally:
        secure.kill()

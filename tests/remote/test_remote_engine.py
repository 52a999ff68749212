"""The remote engine against real inference servers (llama_cpp.server, llama-server when built),
and its faults against a scripted server (only for what a real one cannot do on demand)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from codeassist_lsp.config import RemoteSettings, parse_settings
from codeassist_lsp.engine.base import CancelFlag, GenerationRequest
from codeassist_lsp.engine.remote import FailoverBackend, RemoteBackend, RemoteUnavailable
from codeassist_lsp.errors import ComponentUnavailable, listen_for_unavailable
from codeassist_lsp.service import CompletionService
from tests.remote.servers import LlamaCppServer, ScriptedServer, free_port, wait_until_up

pytestmark = pytest.mark.model

DOCUMENT = "import math\n\n\ndef circle_area(radius):\n    return "
DOCUMENTS = [DOCUMENT, "def add(a, b):\n    return ", "names = ['ada', 'grace']\nfor name in "]


@pytest.fixture(scope="module")
def llama_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """llama-cpp-python's OpenAI-compatible server on the embedded model."""
    server = LlamaCppServer(model_path, log=tmp_path_factory.mktemp("llama-server") / "server.log").start()
    yield server
    server.kill()


def _settings(url: str, *, both_remote: bool = True, **completion: Any) -> Any:
    # A generous first-byte limit: a loaded test machine evaluates a first prompt slowly.
    remote = {"engine": "remote", "name": "gemma-3-270m",
              "remote": {"url": url, "model": "gemma-3-270m", "timeoutMs": 60000}}
    return parse_settings({
        "model": remote,
        "actions": {"model": remote if both_remote else {"name": "gemma-3-270m"}},
        # Whole answers, as the model writes them: no time budget may cut one short under load.
        "completion": {"lineBudgetMs": 0, "blockBudgetMs": 0, "guessBelow": 0, "answerWithinMs": 0, **completion},
        "cache": {"enabled": False}, "feedback": {"enabled": False}, "speculation": {"mode": "off"},
    })


def _local_settings() -> Any:
    return parse_settings({
        "model": {"name": "gemma-3-270m"}, "actions": {"model": {"name": "gemma-3-270m"}},
        "completion": {"lineBudgetMs": 0, "blockBudgetMs": 0, "guessBelow": 0, "answerWithinMs": 0},
        "cache": {"enabled": False}, "feedback": {"enabled": False}, "speculation": {"mode": "off"},
    })


def _complete(service: CompletionService, text: str) -> str:
    return service.complete(text, len(text), path="/tmp/remote_test.py", language_id="python").text


def _request(backend: Any, text: str, max_tokens: int = 16, **extra: Any) -> GenerationRequest:
    return GenerationRequest(prompt_tokens=tuple(backend.tokenize(text)), max_tokens=max_tokens, **extra)


@pytest.fixture
def told() -> Any:
    """What report_unavailable told the user, in order."""
    messages: list[ComponentUnavailable] = []
    listen_for_unavailable(messages.append)
    yield messages
    listen_for_unavailable(None)


def test_a_remote_tier_answers_as_the_same_model_does_locally(llama_server: LlamaCppServer) -> None:
    remote = CompletionService(_settings(llama_server.url))
    local = CompletionService(_local_settings())
    try:
        backend = remote.wait_until_loaded(60)
        assert backend.remote and backend.model_id.startswith("remote:gemma-3-270m@127.0.0.1")
        local.wait_until_loaded(60)
        answers = [(_complete(remote, text), _complete(local, text)) for text in DOCUMENTS]
    finally:
        remote.close()
        local.close()
    # Same model, same greedy decoding, same prompt text: the same suggestions, up to a near tie that
    # another thread count's float rounding decides differently (seen once: "radius" vs "radius ** 2").
    assert all(r for r, _ in answers), answers
    assert sum(r == loc or loc.startswith(r) or r.startswith(loc) for r, loc in answers) == len(answers), answers
    assert sum(r == loc for r, loc in answers) >= len(answers) - 1, answers


def test_a_killed_server_falls_back_to_the_local_model_and_comes_back(
        model_path: Path, tmp_path: Path, told: list[ComponentUnavailable]) -> None:
    server = LlamaCppServer(model_path, log=tmp_path / "server.log").start()
    service = CompletionService(_settings(server.url, both_remote=False))
    try:
        backend = service.wait_until_loaded(60)
        assert backend.remote and _complete(service, DOCUMENT)
        served = backend.remote_backend.requests
        # A long answer is streaming when the server dies.
        job = service.worker.submit(_request(backend, DOCUMENT, max_tokens=400))
        time.sleep(0.5)
        server.kill()
        with pytest.raises(RemoteUnavailable):
            job.future.result(timeout=30)
        assert len(told) == 1 and "not answering" in told[0].message
        # Every later request is answered, by the local model.
        assert not backend.remote
        assert _complete(service, DOCUMENT)
        assert _complete(service, DOCUMENTS[1])
        assert len(told) == 1  # told once
        # The server is back on the same port: the tier goes back to it by itself.
        server = LlamaCppServer(model_path, port=server.port, log=tmp_path / "server.log").start()
        deadline = time.monotonic() + 60
        while not backend.remote:
            assert time.monotonic() < deadline, "the tier did not go back to the server"
            time.sleep(0.2)
        assert _complete(service, DOCUMENT)
        assert backend.remote_backend.requests > served + 1
    finally:
        service.close()
        server.kill()


@pytest.mark.parametrize("mode", ["http500", "malformed", "stall"])
def test_a_failing_server_is_told_once_and_the_local_model_answers(
        mode: str, backend: Any, told: list[ComponentUnavailable]) -> None:
    with ScriptedServer(mode) as server:
        tier = FailoverBackend(RemoteBackend(RemoteSettings(url=server.url, model="gemma-3-270m"), "completion"),
                               None, borrowed=backend)
        try:
            with pytest.raises(RemoteUnavailable) as raised:
                tier.run(_request(tier, DOCUMENT), CancelFlag())
            assert server.url in raised.value.message
            assert len(told) == 1
            # The next request is the local model's: its tokens, its answer.
            assert tier.active is backend
            result = tier.run(_request(tier, DOCUMENT), CancelFlag())
            assert result.text
            tier.run(_request(tier, DOCUMENTS[1]), CancelFlag())
            assert len(told) == 1
        finally:
            tier.close()


def test_a_stream_that_never_ends_is_cut_at_the_token_limit() -> None:
    with ScriptedServer("endless") as server:
        remote = RemoteBackend(RemoteSettings(url=server.url), "completion")
        try:
            result = remote.run(_request(remote, DOCUMENT, max_tokens=16), CancelFlag())
            assert result.finish_reason == "length" and result.generated_tokens <= 16 + 8
            assert server.disconnects.wait(10), "the client kept the endless stream open"
        finally:
            remote.close()


def test_a_superseded_request_closes_its_stream(told: list[ComponentUnavailable]) -> None:
    with ScriptedServer("slow") as server:
        remote = RemoteBackend(RemoteSettings(url=server.url), "completion")
        cancel = CancelFlag()
        outcome: list[Any] = []
        runner = threading.Thread(target=lambda: outcome.append(
            remote.run(_request(remote, DOCUMENT, max_tokens=1000), cancel)))
        try:
            runner.start()
            time.sleep(0.4)
            cancel.cancel("superseded")
            runner.join(10)
            assert outcome and outcome[0].finish_reason == "cancelled"
            # The server learns it at its next token: it stops generating.
            assert server.disconnects.wait(10)
            assert not told  # a cancel is no outage
        finally:
            remote.close()


def test_secrets_are_masked_before_the_prompt_leaves_and_the_key_comes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_LLM_KEY", "sk-team-0123456789")
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    source = f'GITHUB_TOKEN = "{token}"\n\n\ndef fetch(url):\n    return '
    with ScriptedServer("ok") as server:
        remote = RemoteBackend(RemoteSettings(url=server.url, model="qwen2.5-coder-7b-instruct",
                                              api_key_env="TEAM_LLM_KEY"), "completion")
        try:
            assert remote.prompt_format == "fim"  # the registry's family: Qwen2.5-Coder's FIM tokens
            prefix, suffix, middle = remote.fim_tokens() or (0, 0, 0)
            tokens = [prefix, *remote.tokenize(source), suffix, *remote.tokenize("\nprint(fetch('x'))\n"), middle]
            result = remote.run(GenerationRequest(prompt_tokens=tuple(tokens), max_tokens=8), CancelFlag())
            assert result.text == "x = 1\n"
            body, headers = server.bodies[-1], server.headers[-1]
            assert token not in body["prompt"] and "GITHUB_TOKEN = " in body["prompt"]
            assert body["prompt"].startswith("<|fim_prefix|>") and "<|fim_suffix|>" in body["prompt"]
            assert body["model"] == "qwen2.5-coder-7b-instruct"
            assert headers.get("Authorization") == "Bearer sk-team-0123456789"
            assert "sk-team" not in repr(remote.describe())
        finally:
            remote.close()


def test_a_missing_api_key_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEAM_LLM_KEY", raising=False)
    with pytest.raises(RemoteUnavailable, match="TEAM_LLM_KEY"):
        RemoteBackend(RemoteSettings(url="http://127.0.0.1:9", api_key_env="TEAM_LLM_KEY"), "completion")


def _llama_server_binary() -> Path | None:
    from codeassist_lsp.engine.models import cache_dir

    built = cache_dir() / "peer" / "bin" / "llama-server"
    found = shutil.which("llama-server")
    return built if built.exists() else (Path(found) if found else None)


@pytest.mark.skipif(_llama_server_binary() is None, reason="llama-server is not built (benchmarks/build_peer.sh)")
def test_llama_server_infill_gets_the_related_snippets_as_input_extra(tmp_path: Path) -> None:
    import subprocess

    from codeassist_lsp.engine.models import resolve_model_path

    model, _spec = resolve_model_path("qwen2.5-coder-1.5b", None)
    port = free_port()
    process = subprocess.Popen([str(_llama_server_binary()), "-m", str(model), "--host", "127.0.0.1",
                                "--port", str(port), "-c", "4096", "-t", "1", "-np", "1"],
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "wb"))
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", timeout=120)
        remote = RemoteBackend(RemoteSettings(url=f"http://127.0.0.1:{port}", protocol="llama-infill",
                                              model="qwen2.5-coder-1.5b"), "quality")
        prefix_id, suffix_id, middle_id = remote.fim_tokens() or (0, 0, 0)
        header = "# geometry.py\nTAU = 6.283185307179586\n\n"
        head = header + "def circumference(radius):\n    return "
        tokens = (prefix_id, *remote.tokenize(head), suffix_id, *remote.tokenize("\n"), middle_id)
        request = GenerationRequest(prompt_tokens=tokens, max_tokens=12, related=(("geometry.py", "TAU = 6.283185307179586\n"),),
                                    header_chars=len(header), stop=("\n",))
        path, body = remote._body(request)
        assert path == "/infill" and body["input_extra"][0]["filename"] == "geometry.py"
        assert body["input_prefix"].startswith("def circumference")
        result = remote.run(request, CancelFlag())
        assert "radius" in result.text, result.text
        remote.close()
    finally:
        process.kill()
        process.wait(10)


async def test_over_lsp_both_tiers_on_the_server_and_the_status_says_so(llama_server: LlamaCppServer) -> None:
    from lsprotocol import types

    from tests.lsp.helpers import end_position, initialize, inline_params, open_document, running_server, wait_for_model

    remote = {"engine": "remote", "remote": {"url": llama_server.url, "model": "gemma-3-270m", "timeoutMs": 60000}}
    options = {"model": remote, "actions": {"model": remote}, "cache": {"disk": False},
               "completion": {"lineBudgetMs": 0, "guessBelow": 0, "answerWithinMs": 0}}
    async with running_server(options) as (client, _result):
        report = await wait_for_model(client)
        assert report["model"]["state"] == "ready", report["model"]
        assert report["model"]["engine"] == "remote" and report["model"]["remote"]["state"] == "up"
        assert report["model"]["remote"]["url"] == llama_server.url
        uri = "file:///tmp/remote_lsp/area.py"
        open_document(client, uri, DOCUMENT)
        answer = await client.text_document_inline_completion_async(inline_params(uri, end_position(DOCUMENT)))
        assert answer is not None and answer.items and answer.items[0].insert_text.strip()
        deadline = time.monotonic() + 60
        while True:  # the quality tier connects when the model thread is first idle
            report = await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="codeassist.status", arguments=[]))
            if report["qualityModel"]["state"] != "loading" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert report["qualityModel"]["engine"] == "remote", report["qualityModel"]
        assert report["model"]["remote"]["requests"] >= 1


def test_a_request_superseded_while_the_server_reads_its_prompt_lets_it_finish_the_prompt() -> None:
    # Closing it at once would throw the server's prompt work away; the next keystroke's request
    # waits for the first token instead, and then finds that prompt in the server's cache.
    with ScriptedServer("prompt") as server:
        remote = RemoteBackend(RemoteSettings(url=server.url), "completion")
        first, second = CancelFlag(), CancelFlag()
        outcomes: list[Any] = []
        runner = threading.Thread(target=lambda: outcomes.append(
            remote.run(_request(remote, DOCUMENT, max_tokens=100), first)))
        try:
            runner.start()
            time.sleep(0.3)
            first.cancel("superseded")  # a newer keystroke
            follower = threading.Thread(target=lambda: outcomes.append(
                remote.run(_request(remote, DOCUMENT + "x", max_tokens=2), second)))
            follower.start()
            runner.join(10)
            follower.join(10)
            assert [o.finish_reason for o in outcomes][:1] == ["cancelled"]
            assert len(server.arrivals) == 2 and server.first_events
            # The second request was sent only after the server answered the first.
            assert server.arrivals[1] >= server.first_events[0]
        finally:
            remote.close()


def test_a_request_the_client_cancels_closes_at_once_even_before_the_first_token() -> None:
    with ScriptedServer("prompt") as server:
        remote = RemoteBackend(RemoteSettings(url=server.url), "completion")
        cancel = CancelFlag()
        outcome: list[Any] = []
        runner = threading.Thread(target=lambda: outcome.extend(
            (remote.run(_request(remote, DOCUMENT, max_tokens=100), cancel), time.monotonic())))
        try:
            runner.start()
            time.sleep(0.3)
            cancel.cancel("client cancelled the request")
            runner.join(10)
            assert outcome and outcome[0].finish_reason == "cancelled"
            server.disconnects.wait(5)
            # Given up before the server's first token (the server learns it when it writes that token).
            assert not server.first_events or outcome[1] < server.first_events[0]
        finally:
            remote.close()


def test_a_chat_only_server_gets_the_actions_prompt_as_messages_with_the_primer_continued() -> None:
    from codeassist_lsp.actions.prompts import build_prompt, prompt_tokens
    from codeassist_lsp.context.languages import language_for

    with ScriptedServer("chat") as server:
        remote = RemoteBackend(RemoteSettings(url=server.url, protocol="openai-chat", model="team-coder"), "quality")
        try:
            prompt = build_prompt(remote, language=language_for("python"), user="Explain: def add(a, b): return a + b",
                                  primer="This function", plain="")
            assert prompt.chat
            result = remote.run(GenerationRequest(prompt_tokens=tuple(prompt_tokens(remote, prompt)), max_tokens=32,
                                                  tier="quality"), CancelFlag())
            assert result.text == "Adds two numbers."
            body = server.bodies[-1]
            roles = [m["role"] for m in body["messages"]]
            assert roles == ["system", "user", "assistant"], body["messages"]
            assert body["messages"][1]["content"] == "Explain: def add(a, b): return a + b"
            assert body["messages"][2]["content"] == "This function"
            assert body["continue_final_message"] is True and body["model"] == "team-coder"
        finally:
            remote.close()


def test_chat_protocol_against_a_real_server(llama_server: LlamaCppServer) -> None:
    from codeassist_lsp.actions.prompts import build_prompt, prompt_tokens
    from codeassist_lsp.context.languages import language_for

    remote = RemoteBackend(RemoteSettings(url=llama_server.url, protocol="openai-chat", model="gemma-3-270m",
                                          timeout_ms=60000), "quality")
    try:
        prompt = build_prompt(remote, language=language_for("python"), user="Say hello.", primer="", plain="")
        result = remote.run(GenerationRequest(prompt_tokens=tuple(prompt_tokens(remote, prompt)), max_tokens=12,
                                              tier="quality"), CancelFlag())
        assert result.text.strip() and result.finish_reason in ("stop", "length")
    finally:
        remote.close()


def test_the_completion_tier_refuses_the_chat_protocol() -> None:
    from codeassist_lsp.errors import InvalidSettings

    with pytest.raises(InvalidSettings, match="cannot serve inline completion"):
        parse_settings({"model": {"engine": "remote", "remote": {"url": "http://x:1", "protocol": "openai-chat"}}})


def test_tls_is_verified_and_a_team_ca_bundle_is_trusted(tmp_path: Path, told: list[ComponentUnavailable]) -> None:
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    with ScriptedServer("ok", tls=(cert, key)) as server:
        assert server.url.startswith("https://")
        untrusted = RemoteBackend(RemoteSettings(url=server.url), "completion")
        with pytest.raises(RemoteUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            untrusted.run(_request(untrusted, DOCUMENT), CancelFlag())
        untrusted.close()
        trusted = RemoteBackend(RemoteSettings(url=server.url, ca_bundle=str(cert)), "completion")
        try:
            assert trusted.run(_request(trusted, DOCUMENT), CancelFlag()).text == "x = 1\n"
        finally:
            trusted.close()


def test_a_prewarm_reads_the_prompt_without_asking_for_an_unbounded_answer() -> None:
    # llama_cpp.server reads max_tokens 0 as "up to the context size": a prewarm asks for one token.
    with ScriptedServer("ok") as server:
        remote = RemoteBackend(RemoteSettings(url=server.url), "completion")
        try:
            remote.run(GenerationRequest(prompt_tokens=tuple(remote.tokenize(DOCUMENT)), max_tokens=0,
                                         kind="prewarm"), CancelFlag())
            assert server.bodies[-1]["max_tokens"] == 1
        finally:
            remote.close()

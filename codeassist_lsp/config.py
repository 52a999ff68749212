"""Typed settings: camelCase on the wire, every field defaulted, invalid input reported once."""

from __future__ import annotations

import os
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from codeassist_lsp.errors import InvalidSettings


@attrs.define
class RemoteSettings:
    """An inference server the tier sends its prompts to (`engine = "remote"`); secrets are masked first."""

    url: str | None = None
    """The server's base URL, e.g. http://gpu-box:8080 (llama-server), http://gpu-box:8000 (vLLM)."""
    protocol: str = "openai"
    """"openai" (`/v1/completions`: vLLM, llama-server, llama_cpp.server, Ollama), "llama-infill"
    (llama-server's `/infill`, related snippets as `input_extra`; other prompts via `/completion`) or
    "openai-chat" (`/v1/chat/completions` only; for the quality tier of a server that only chats)."""
    model: str | None = None
    """The model name the server knows; also picks FIM tokens and chat template from our registry
    (e.g. "qwen2.5-coder-1.5b" or an id containing "qwen2.5-coder")."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (sent as a Bearer token); never the key itself."""
    verify_tls: bool = True
    """Check the server's certificate for https URLs."""
    ca_bundle: str | None = None
    """A PEM file of CA certificates to trust instead of the system's (a team's own CA)."""
    timeout_ms: int = 0
    """Longest wait for the server's first byte (and between two bytes); 0 = by tier (completion 5,000 ms, quality 30,000 ms)."""
    fim_tokens: list[str] = attrs.Factory(list)
    """[prefix, suffix, middle] FIM token strings for a model our registry does not know."""
    chat_template: str | None = None
    """The chat template name (e.g. "chatml", "gemma", "llama3") for a model our registry does not know."""
    fallback: bool = True
    """When the server is down, answer with the local model of this tier (if installed) until it is back."""


@attrs.define
class ModelSettings:
    """Which model runs and how it is loaded."""

    engine: str = "local"
    """"local" (llama.cpp in this process) or "remote" (the inference server in `remote`)."""
    remote: RemoteSettings = attrs.Factory(RemoteSettings)
    """The inference server, when `engine` is "remote"."""
    name: str = "auto"
    """A model of the registry (`codeassist models list`), or "auto": for inline completion the code
    model when it is fast enough on this machine (a GPU, or its measured decode speed), else the fast
    embedded model; for actions (`actions.model`) the code model when installed, else the completion model."""
    path: str | None = None
    """A GGUF file; overrides `name` when set."""
    context_size: int = 4096
    """Tokens of KV cache (llama.cpp n_ctx)."""
    threads: int = 0
    """CPU threads for decoding; 0 = number of cores."""
    gpu_layers: int = -1
    """Layers offloaded to the GPU: -1 = all when the build has a GPU backend, else 0."""
    batch_size: int = 512
    """Prompt tokens evaluated per llama_decode call."""


@attrs.define
class CompletionSettings:
    """Inline completion as you type."""

    enabled: bool = True
    debounce_ms: int = 0
    """Wait this long after a keystroke before generating (the prompt is evaluated meanwhile). 0: generate
    at once; a newer keystroke stops the generation within one token, so waiting only adds latency."""
    max_tokens: int = 24
    """Tokens generated for a single-line suggestion."""
    max_block_tokens: int = 96
    """Tokens generated for a multi-line (block) suggestion."""
    max_block_lines: int = 8
    line_budget_ms: int = 250
    """Generation time for a line suggestion; past it the whole words so far are shown (0 = no limit)."""
    block_budget_ms: int = 300
    """Generation time for a block; past it the complete lines so far are shown and the rest is
    generated on, for typed-ahead and the next request (0 = no limit)."""
    answer_within_ms: int = 1500
    """A request the model has not answered within this time is answered empty; the model goes on, so
    the next request reuses its work (the first request after opening a file evaluates a whole
    prompt: ~2 s on 2 CPU cores). 0 = wait for the model."""
    guess_below: float = 0.5
    """A token the model chooses with less probability than this is a guess: the suggestion shows at
    once up to it, and the rest is generated on for typed-ahead and the next request, as at the time
    budget (0 = off; 0.5 measured faster in the pause replay)."""
    context_tokens: int = 1536
    """Prompt budget for inline completion."""
    prewarm: bool = True
    """Evaluate the document prefix on open and when typing pauses."""
    disabled_languages: list[str] = attrs.Factory(list)
    """LSP languageIds where no suggestions are made."""
    acceptance_threshold: float = 0.2
    """Show a suggestion only when its estimated chance of being accepted whole (a logistic model of its
    confidence, length and kind, fitted offline and refitted on your own outcomes) is at least this;
    0 = show all. 0.2 is chosen on the acceptance replay's fit files (the highest keeping 90 % of
    their accepted characters); on the held-out files it shows 1.7x as often taken, 91 % of the characters."""


@attrs.define
class ContextSettings:
    """What the model is shown besides the code around the cursor."""

    index_workspace: bool = True
    """Index workspace definitions with tree-sitter (persisted under the cache dir)."""
    exclude: list[str] = attrs.Factory(list)
    """Extra gitignore-style patterns the index skips."""


@attrs.define
class SecuritySettings:
    """Verification of suggestions before they are shown."""

    enabled: bool = True
    on_high_severity: str = "withhold"
    """"withhold" (default) or "warn": show high-severity suggestions flagged in the log."""
    diagnostics: bool = True
    """Publish security findings of open documents as diagnostics (on open and save)."""


@attrs.define
class ActionsSettings:
    """Code actions (generate, fix, refactor, docstring, explain) and hover explanations."""

    enabled: bool = True
    """Offer the model's code actions (the list itself never waits for the model)."""
    hover: bool = True
    """Explain the function, class or call under the mouse on hover."""
    hover_debounce_ms: int = 250
    """Wait this long after a hover before asking the model (editors send many)."""
    best_of_n: int = attrs.field(default=8, validator=[attrs.validators.ge(1), attrs.validators.le(8)])
    """Most candidates for "generate from comment" (1-8; 1 = greedy only): as many as the measured speed fits
    in `bestOfNBudgetMs` are generated, the invalid ones filtered, the rest ranked by tests passed, then
    agreement between candidates, then the score."""
    best_of_n_budget_ms: int = 2500
    """No candidate is started that would end after this (the first always runs); keeps generate near 3 s."""
    side_by_side: bool = True
    """Generate the sampled best-of-N candidates side by side on a local model (one batch per step for all of
    them, the prompt evaluated once): more candidates in the budget (a GPU decodes 8 nearly as fast as 1)."""
    run_tests: bool = True
    """Test stage for generated Python: the docstring's doctests/examples, `# assert` examples in the comment
    and the workspace's pytest tests that import the function, run in a sandbox; results in the action's title."""
    sandbox: str = attrs.field(default="auto", validator=attrs.validators.in_(("auto", "bwrap", "unshare", "rlimits")))
    """How the test stage isolates code: "auto" (bubblewrap, else unshare, else "rlimits": resource limits only,
    network and file isolation OFF, said in status and the log)."""
    temperature: float = 0.7
    """Sampling temperature of the extra best-of-N candidates (the first is greedy)."""
    max_tokens: int = 192
    """Tokens generated for code (generate, fix, refactor, docstring)."""
    explain_max_tokens: int = 160
    """Tokens generated for an explanation."""
    hover_max_tokens: int = 64
    """Tokens generated for a hover explanation."""
    context_tokens: int = 2048
    """Prompt budget for actions (the code around the target and related definitions)."""
    type_check: bool = True
    """Type-check action edits (mypy for Python; tsserver for TypeScript when Node and TypeScript are found):
    an edit that adds type errors is not offered, and a quick fix only when its diagnostic is gone after it."""
    hover_budget_ms: int = 5000
    """Hover asks the quality model when its measured speed answers within this (2 cores: 3-4.5 s);
    else the hover is a structural summary pointing at the Explain action."""
    model: ModelSettings = attrs.Factory(ModelSettings)
    """The quality tier: the model for every action and hover (`name`, `path`, `gpuLayers`, `contextSize`...)."""


@attrs.define
class SpeculationSettings:
    """Speculative decoding: guessed tokens verified by the model in one batch (greedy output unchanged)."""

    mode: str = "auto"
    """"auto" (the draft model when `draft.path` is set, else prompt lookup), "prompt-lookup",
    "draft-model" or "off". Sampled (temperature > 0) requests never speculate."""
    max_draft_tokens: int = 8
    """Most tokens guessed per verification batch; the actual number adapts to the acceptance rate."""
    min_draft_tokens: int = 1
    """Fewest tokens guessed per batch while guessing at all."""
    ngram_max: int = 3
    """Longest n-gram prompt lookup matches (it tries the longest first)."""
    ngram_min: int = 1
    """Shortest n-gram prompt lookup matches."""


@attrs.define
class DraftSettings:
    """A smaller model with the same vocabulary that drafts tokens for the main model."""

    path: str | None = None
    """A GGUF file (e.g. Qwen2.5-Coder-0.5B for a Qwen2.5-Coder-7B model); unset = no draft model."""
    gpu_layers: int = -1
    """Layers of the draft offloaded to the GPU: -1 = all when the build has a GPU backend."""


def _check_redis_url(instance: object, attribute: object, url: str | None) -> None:
    """A shared cache URL: redis:// or rediss://, and never a password (it would sit in settings files)."""
    if url is None:
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError("cache.redis.url is not a valid URL (expected redis://host:6379/0)") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("cache.redis.url must be redis://host[:port][/db] or rediss://... for TLS")
    # Never echo the URL back: it may hold the very password being refused.
    if parts.password is not None or "password" in parts.query.lower():
        raise ValueError("cache.redis.url must not contain a password: put it in an environment variable "
                         "and name that variable in cache.redis.passwordEnv")
    database = parts.path.strip("/")
    if parts.query or (database and not database.isdigit()):
        raise ValueError("cache.redis.url takes no ?options and its path is the database number: redis://host:6379/0")


@attrs.define
class RedisSettings:
    """A completion cache shared by a team's editors on one Redis server (off unless `url` is set)."""

    url: str | None = attrs.field(default=None, validator=_check_redis_url)
    """redis://host:6379/0, or rediss://... for TLS (certificates verified); unset = no shared cache.
    A password is refused here: see `password_env`."""
    password_env: str | None = None
    """Name of the environment variable that holds the Redis password (AUTH); unset = no password."""
    ttl_seconds: int = attrs.field(default=3600, validator=attrs.validators.ge(1))
    """How long a shared completion lives in Redis."""
    timeout_ms: int = attrs.field(default=100, validator=attrs.validators.ge(1))
    """Connect and read timeout: a lookup runs on the keystroke path, so a slow server counts as down."""
    prefix: str = "codeassist:"
    """Namespace of the keys in Redis (several teams or tools can share one server)."""


@attrs.define
class CacheSettings:
    """The completion cache: memory, then disk, keyed on model + decoding parameters + the exact prompt."""

    enabled: bool = True
    memory_entries: int = 512
    """Completions kept in the in-memory LRU tier."""
    disk: bool = True
    """Keep completions on disk across restarts (under the user cache dir, 0700/0600)."""
    disk_size_mb: int = 64
    """Size cap of the disk tier; least recently stored entries are evicted beyond it."""
    directory: str | None = None
    """Where the disk tier lives; unset = <cache dir>/completions."""
    typed_ahead: bool = True
    """When the user types the start of the suggestion being shown, answer with the rest (no model call)."""
    redis: RedisSettings = attrs.Factory(RedisSettings)
    """A third tier after memory and disk, shared with the team (completions only, never prompts)."""


@attrs.define
class FeedbackSettings:
    """Acceptance tracking: what happened to each shown suggestion, kept on this machine (no code text)."""

    enabled: bool = True
    """Infer and store each suggestion's outcome (accepted, typed, partial, rejected) with its features."""
    directory: str | None = None
    """Where the store (SQLite, 0600) lives; unset = <cache dir>/feedback."""
    max_records: int = 20000
    """Outcomes kept; the oldest are dropped beyond it."""
    retention_days: int = 90
    """Outcomes older than this are dropped (0 = no age limit)."""


@attrs.define
class AgentSettings:
    """The agent command (`codeassist.agent`): how the model takes part in changing the workspace."""

    tool_loop: bool = False
    """For changes the deterministic refactorings cannot do, the model drives tools (list, read, search,
    propose an edit, run the tests, finish) instead of rewriting whole files; off until it is measured."""
    max_steps: int = attrs.field(default=12, validator=[attrs.validators.ge(1), attrs.validators.le(50)])
    """Most model answers (one tool call each) in one run of the tool loop."""
    token_budget: int = attrs.field(default=40000, validator=attrs.validators.ge(1000))
    """Most tokens (every prompt and answer, summed over the model calls) one run of the tool loop may use."""


@attrs.define
class Settings:
    """Everything the server can be told through initializationOptions or didChangeConfiguration."""

    model: ModelSettings = attrs.Factory(ModelSettings)
    completion: CompletionSettings = attrs.Factory(CompletionSettings)
    context: ContextSettings = attrs.Factory(ContextSettings)
    security: SecuritySettings = attrs.Factory(SecuritySettings)
    actions: ActionsSettings = attrs.Factory(ActionsSettings)
    speculation: SpeculationSettings = attrs.Factory(SpeculationSettings)
    draft: DraftSettings = attrs.Factory(DraftSettings)
    cache: CacheSettings = attrs.Factory(CacheSettings)
    feedback: FeedbackSettings = attrs.Factory(FeedbackSettings)
    agent: AgentSettings = attrs.Factory(AgentSettings)
    engine: str = "llama"
    """"llama" (in-process llama.cpp) or "fake" (deterministic, for protocol tests only)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for cls in (RemoteSettings, ModelSettings, CompletionSettings, ContextSettings, SecuritySettings, ActionsSettings, SpeculationSettings,
                DraftSettings, RedisSettings, CacheSettings, FeedbackSettings, AgentSettings, Settings):
        overrides = {a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls)}
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **overrides)
        )
        converter.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, converter, **overrides))
    return converter


CONVERTER = _make_converter()


def parse_settings(raw: Any) -> Settings:
    """Read settings from the wire; raise InvalidSettings with every problem named."""
    # Neovim encodes an empty Lua table ({}) as a JSON list: no settings, not an error.
    if raw is None or raw == []:
        return Settings()
    if not isinstance(raw, dict):
        raise InvalidSettings(f"codeassist settings must be an object, got {type(raw).__name__}.")
    # Editors often nest our settings under the section name.
    if set(raw) == {"codeassist"} and isinstance(raw["codeassist"], dict):
        raw = raw["codeassist"]
    try:
        settings = CONVERTER.structure(raw, Settings)
        if settings.security.on_high_severity not in ("withhold", "warn"):
            raise ValueError(f"security.onHighSeverity must be 'withhold' or 'warn', "
                             f"not {settings.security.on_high_severity!r}")
        if settings.speculation.mode not in ("auto", "prompt-lookup", "draft-model", "off"):
            raise ValueError(f"speculation.mode must be 'auto', 'prompt-lookup', 'draft-model' or 'off', "
                             f"not {settings.speculation.mode!r}")
        if settings.engine not in ("llama", "fake"):
            raise ValueError(f"engine must be 'llama' or 'fake', not {settings.engine!r}")
        for section, model in (("model", settings.model), ("actions.model", settings.actions.model)):
            _check_engine(section, model)
        return settings
    except Exception as error:  # cattrs raises ExceptionGroups with one leaf per field
        problems = "; ".join(_describe(error))
        raise InvalidSettings(
            f"Invalid codeassist settings ({problems}).", hint="Using the defaults instead."
        ) from error


def _check_engine(section: str, model: ModelSettings) -> None:
    if model.engine not in ("local", "remote"):
        raise ValueError(f"{section}.engine must be 'local' or 'remote', not {model.engine!r}")
    remote = model.remote
    if model.engine == "remote":
        if not remote.url or not remote.url.startswith(("http://", "https://")):
            raise ValueError(f"{section}.remote.url must be an http:// or https:// URL when {section}.engine is 'remote'")
        if "@" in remote.url.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError(f"{section}.remote.url must not hold credentials; name an environment variable "
                             f"in {section}.remote.apiKeyEnv instead")
    if remote.protocol not in ("openai", "openai-chat", "llama-infill"):
        raise ValueError(f"{section}.remote.protocol must be 'openai', 'openai-chat' or 'llama-infill', "
                         f"not {remote.protocol!r}")
    if remote.protocol == "openai-chat" and section == "model" and model.engine == "remote":
        raise ValueError("model.remote.protocol 'openai-chat' cannot serve inline completion (it needs raw "
                         "completions for fill-in-the-middle); use 'openai' or 'llama-infill'")
    if remote.fim_tokens and len(remote.fim_tokens) != 3:
        raise ValueError(f"{section}.remote.fimTokens must be [prefix, suffix, middle]")


def _describe(error: BaseException) -> list[str]:
    if isinstance(error, BaseExceptionGroup):
        notes: list[str] = []
        for sub in error.exceptions:
            notes.extend(_describe(sub))
        return notes
    return [str(error)]


def settings_to_wire(settings: Settings) -> dict[str, Any]:
    """The settings as the client would send them (camelCase)."""
    return CONVERTER.unstructure(settings)  # type: ignore[no-any-return]


def effective_threads(settings: ModelSettings) -> int:
    """Threads to use: the setting, or every core."""
    return settings.threads if settings.threads > 0 else (os.cpu_count() or 2)

"""A deterministic engine for protocol edge-case tests only (never the test of a feature)."""

from __future__ import annotations

import os
import time

from codeassist_lsp.engine.base import CancelFlag, GenerationRequest, GenerationResult, PartialCallback


class FakeBackend:
    """Bytes are tokens; the 'model' always continues with a fixed line, one byte per step."""

    model_id = "fake"
    prompt_format = "prefix"
    stop: tuple[str, ...] = ()
    CONTINUATION = "fake_completion()\n    return None\n"

    def __init__(self) -> None:
        # Slow steps make cancellation and preemption observable in protocol tests.
        self.step_seconds = float(os.environ.get("CODEASSIST_FAKE_STEP_MS", "2")) / 1000

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """One token per UTF-8 byte."""
        return ([0] if add_bos else []) + list(text.encode("utf-8"))

    def count_tokens(self, text: str) -> int:
        """Bytes in text."""
        return len(text.encode("utf-8"))

    def fim_tokens(self) -> tuple[int, int, int] | None:
        """The fake model has no FIM tokens."""
        return None

    def adds_bos(self) -> bool:
        """A BOS (0) is added."""
        return True

    def bos(self) -> int:
        """The BOS token id."""
        return 0

    def run(self, request: GenerationRequest, cancel: CancelFlag,
            on_partial: PartialCallback | None = None) -> GenerationResult:
        """Emit CONTINUATION byte by byte, honouring stops, limits and cancellation."""
        result = GenerationResult(prompt_tokens=len(request.prompt_tokens))
        delay = request.not_before - time.monotonic()
        if delay > 0 and cancel.wait(delay):
            result.finish_reason = "cancelled"
            return result
        for char in self.CONTINUATION[: request.max_tokens]:
            if cancel.is_set:
                result.finish_reason = "cancelled"
                return result
            time.sleep(self.step_seconds)
            result.text += char
            result.generated_tokens += 1
            cut = request.stop_check(result.text) if request.stop_check else None
            if cut is not None:
                result.text = result.text[:cut]
                return result
        result.finish_reason = "length"
        return result

    def close(self) -> None:
        """Nothing to free."""

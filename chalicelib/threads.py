"""Work handed to threads keeps the invocation's context (contextvars): its meter, its log's
correlation id. Standard library only: the door to AWS and everything above it use it."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_context(function: Callable[..., T]) -> Callable[..., T]:
    """`function`, run in a copy of the caller's context: threads that work for an invocation are
    metered and logged with it (each call its own copy, so threads can run them at once)."""
    context = contextvars.copy_context()

    def run(*args: Any) -> T:
        return context.copy().run(function, *args)

    return run

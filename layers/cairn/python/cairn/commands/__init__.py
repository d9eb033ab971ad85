"""load -> decide -> append for a decider, with a warm per-stream state cache."""

from cairn.commands.cache import StateCache
from cairn.commands.decider import Decider
from cairn.commands.runtime import (
    CommandContext,
    CommandResult,
    CommandRuntime,
    RetriesExhaustedError,
    StreamNotFoundError,
)

__all__ = [
    "CommandContext",
    "CommandResult",
    "CommandRuntime",
    "Decider",
    "RetriesExhaustedError",
    "StateCache",
    "StreamNotFoundError",
]

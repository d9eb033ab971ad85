"""The shape of a context's pure domain, as the runtime needs it.

Domain modules import only pydantic and the stdlib, so they expose plain functions; the
service's composition root wraps them in a ``Decider``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

S = TypeVar("S")
C = TypeVar("C")


def _dump(state: Any) -> dict[str, Any]:
    if isinstance(state, BaseModel):
        return state.model_dump(mode="json")
    raise TypeError("state is not a pydantic model: give the Decider a state_to_dict")


@dataclass(frozen=True)
class Decider(Generic[C, S]):
    initial_state: Callable[[], S]
    decide: Callable[[C, S], Iterable[BaseModel]]
    evolve: Callable[[S, BaseModel], S]
    state_schema_version: int = 1
    state_to_dict: Callable[[S], dict[str, Any]] = _dump
    state_from_dict: Callable[[dict[str, Any]], S] | None = None
    is_new: Callable[[S], bool] | None = None  # True for a stream that has no events yet

    def fold(self, state: S, events: Iterable[BaseModel]) -> S:
        evolve = self.evolve
        for event in events:
            state = evolve(state, event)
        return state

    def restore(self, raw: dict[str, Any]) -> S:
        if self.state_from_dict is not None:
            return self.state_from_dict(raw)
        initial = self.initial_state()
        if isinstance(initial, BaseModel):
            return type(initial).model_validate(raw)
        raise TypeError("give the Decider a state_from_dict")

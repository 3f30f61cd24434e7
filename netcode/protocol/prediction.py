"""Client-side prediction with server reconciliation, and host-side input intake.

Pure: no I/O. The client applies its own inputs immediately (no waiting one
RTT to see its character move), tags each with a sequence number and keeps
the ones the host has not confirmed yet. When authoritative state arrives with
"the last input I processed was N", the client drops inputs up to N and
re-simulates the rest on top of the authoritative state (Gambetta, "Client-
Side Prediction and Server Reconciliation"; the Overwatch/Quake model).

Inputs ride on the unreliable channel, so every packet carries the last few
unconfirmed inputs (:meth:`Predictor.pending_inputs`): one lost packet costs
nothing. The host's :class:`InputReceiver` removes the redundancy and yields
each input once, in order.

Input sequence numbers are plain non-negative ints that never wrap (2**63
inputs at 60 Hz is longer than anyone plays); on the wire a pending input is
the 2-element array ``[seq, input]``.

Non-finite numbers: a NaN or infinite float anywhere in an input or a state
(scanned through dicts, lists, tuples, sets and dataclass fields) would
poison every state simulated from it, so it is refused before anything
changes: :meth:`Predictor.push` raises :class:`~netcode.errors.EncodeError`
(the game's own input, which would be sent), :meth:`Predictor.reconcile` and
:meth:`InputReceiver.receive` raise :class:`~netcode.errors.DecodeError`
(data from the network: drop that packet), and a non-finite initial state is
a :class:`~netcode.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from ..errors import ConfigError, DecodeError, EncodeError

__all__ = ["InputReceiver", "Predictor"]

S = TypeVar("S")
In = TypeVar("In")

_ATOMS = (str, bytes, bytearray, int, type(None))  # hold no float: skipped at once


def _has_non_finite(value: object) -> bool:
    """True if a NaN or infinite float is in ``value``, or in any dict key or value,
    list/tuple/set/frozenset/deque item or dataclass field inside it.

    Iterative with a visited set, so deep or cyclic structures cost one visit
    per object and never hit the recursion limit. Other objects are opaque.
    """
    stack = [value]
    seen: dict[int, object] = {}  # holds each container, so its id cannot be reused meanwhile
    while stack:
        v = stack.pop()
        if isinstance(v, float | complex):
            if not (math.isfinite(v.real) and math.isfinite(v.imag)):
                return True
            continue
        if isinstance(v, _ATOMS) or id(v) in seen:
            continue
        seen[id(v)] = v
        if isinstance(v, Mapping):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset | deque):
            stack.extend(v)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.extend(getattr(v, f.name, None) for f in dataclasses.fields(v))
    return False


class Predictor(Generic[S, In]):
    """Predicted local state = authoritative state + unconfirmed inputs.

    ``apply(state, input) -> state`` is the game's own simulation step; it must
    not mutate ``state`` (it is re-run from the same authoritative state on
    every reconciliation). Keep it deterministic: the same inputs on the same
    state give the same result on client and host.
    """

    def __init__(
        self,
        state: S,
        apply: Callable[[S, In], S],
        *,
        first_seq: int = 0,
        # Limits
        max_pending: int = 1024,
    ) -> None:
        if type(first_seq) is not int or type(max_pending) is not int:
            raise ConfigError("first_seq and max_pending must be ints")
        if first_seq < 0 or max_pending < 1:
            raise ConfigError("first_seq must be >= 0 and max_pending >= 1")
        if _has_non_finite(state):
            raise ConfigError("the initial state holds a NaN or infinite float")
        self._apply = apply
        self._state = state
        self._authoritative = state
        self._pending: deque[tuple[int, In]] = deque()
        self._next_seq = first_seq
        self._max_pending = max_pending
        self._last_acked: int | None = None
        self.dropped_inputs = 0
        self.reconciliations = 0

    @property
    def state(self) -> S:
        """The predicted state: what to draw for the local player."""
        return self._state

    @property
    def authoritative(self) -> S:
        """The last authoritative state received."""
        return self._authoritative

    @property
    def last_acked(self) -> int | None:
        """The newest input sequence the host has confirmed processing."""
        return self._last_acked

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def push(self, inp: In) -> int:
        """Apply a local input now, remember it until confirmed; returns its sequence.

        Raises :class:`EncodeError` (nothing changes) if ``inp`` holds a NaN or
        infinite float.
        """
        if _has_non_finite(inp):
            raise EncodeError(f"input ({type(inp).__name__}) holds a NaN or infinite float")
        seq = self._next_seq
        self._next_seq += 1
        self._state = self._apply(self._state, inp)
        self._pending.append((seq, inp))
        if len(self._pending) > self._max_pending:
            # The host has not confirmed anything for a long time; the oldest
            # inputs are past saving (redundancy only resends the newest).
            self._pending.popleft()
            self.dropped_inputs += 1
        return seq

    def pending_inputs(self, max_n: int | None = None) -> list[tuple[int, In]]:
        """The newest ``max_n`` unconfirmed inputs, oldest first (all if None)."""
        if max_n is None or max_n >= len(self._pending):
            return list(self._pending)
        if max_n <= 0:
            return []
        return list(self._pending)[-max_n:]

    def reconcile(self, state: S, last_processed_input_seq: int | None) -> S:
        """Adopt authoritative ``state`` and replay inputs the host has not processed.

        ``last_processed_input_seq`` is None when the host has processed no
        input yet. A state confirming an older input than one already
        confirmed is out of date and ignored. Returns the new predicted state.

        Raises :class:`DecodeError` (nothing changes) for a sequence never sent
        or a state holding a NaN or infinite float.
        """
        last = last_processed_input_seq
        if last is not None and (type(last) is not int or not 0 <= last < self._next_seq):
            raise DecodeError(f"last processed input {last!r:.40} was never sent")
        if _has_non_finite(state):
            raise DecodeError("authoritative state holds a NaN or infinite float")
        if last is not None:
            if self._last_acked is not None and last < self._last_acked:
                return self._state
            self._last_acked = last
            while self._pending and self._pending[0][0] <= last:
                self._pending.popleft()
        self._authoritative = state
        for _, inp in self._pending:
            state = self._apply(state, inp)
        self._state = state
        self.reconciliations += 1
        return state


class InputReceiver(Generic[In]):
    """Host side: turns redundant input batches into each input once, in order.

    An input whose sequence is not newer than the last one yielded is a
    duplicate (already delivered by an earlier packet) and dropped. A gap is
    not waited for: inputs that never arrived in any packet are lost, counted
    in ``lost``, and the client's prediction is corrected by reconciliation.
    """

    def __init__(self, *, max_batch: int = 64, max_gap: int = 3600) -> None:
        if type(max_batch) is not int or type(max_gap) is not int or max_batch < 1 or max_gap < 1:
            raise ConfigError(
                f"max_batch and max_gap must be ints >= 1, got {max_batch!r}, {max_gap!r}"
            )
        self._last: int | None = None
        self._max_batch = max_batch
        self._max_gap = max_gap
        self.lost = 0
        self.duplicates = 0

    @property
    def last_processed(self) -> int | None:
        """The newest input sequence yielded: send it back with the authoritative state."""
        return self._last

    def receive(self, inputs: object) -> list[tuple[int, In]]:
        """New inputs of one packet (``[[seq, input], ...]``), in sequence order.

        Raises :class:`DecodeError` for a malformed batch, a batch over
        ``max_batch`` items, a sequence more than ``max_gap`` ahead (which
        would make every later input look like a duplicate), or an input
        holding a NaN or infinite float. The whole packet is then refused.
        """
        batch = self._parse(inputs)
        fresh: list[tuple[int, In]] = []
        for seq, inp in sorted(batch.items()):
            if self._last is not None and seq <= self._last:
                self.duplicates += 1
                continue
            if self._last is not None:
                self.lost += seq - self._last - 1
            self._last = seq
            fresh.append((seq, inp))
        return fresh

    def _parse(self, inputs: object) -> dict[int, In]:
        if not isinstance(inputs, list | tuple) or len(inputs) > self._max_batch:
            raise DecodeError(f"inputs must be an array of at most {self._max_batch} items")
        batch: dict[int, In] = {}
        for item in inputs:
            if not isinstance(item, list | tuple) or len(item) != 2:
                raise DecodeError(f"an input must be a [seq, input] pair, got {item!r:.60}")
            seq, inp = item
            if type(seq) is not int or seq < 0:
                raise DecodeError(f"input seq must be an int >= 0, got {seq!r}")
            if self._last is not None and seq - self._last > self._max_gap:
                raise DecodeError(f"input seq {seq} is more than {self._max_gap} ahead")
            if _has_non_finite(inp):
                raise DecodeError(f"input {seq} holds a NaN or infinite float")
            batch.setdefault(seq, inp)
        return batch

    def reset(self) -> None:
        """Forget the last sequence (e.g. the client reconnected and restarts at 0)."""
        self._last = None

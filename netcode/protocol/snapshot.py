"""Snapshots of game entities, delta-compressed against the last acked baseline.

Pure: no I/O. This is the Quake 3 model: the sender keeps a ring of the
snapshots it sent, keyed by packet sequence; each new snapshot is encoded as a
delta from the newest one the receiver has acknowledged (only new entities,
changed fields, removed entities and removed fields), or as a full snapshot
when no usable baseline is acked. The receiver keeps a ring of the snapshots
it reconstructed, keyed the same way, and refuses a delta whose baseline it no
longer holds (:class:`~netcode.errors.DeltaBaselineMissing`).

State is plain data: ``{entity_id: {field_name: value}}`` where an entity id
is an ``int`` (not ``bool``) or a ``str``, a field name is a ``str`` and a value
is anything msgpack can carry (None, bool, int, float, str, bytes, lists and
str/int-keyed dicts of those). Use lists, not tuples: msgpack gives lists back
(the sender stores tuples as lists so both ends compare equal). NaN never
compares equal, so a NaN field is resent every snapshot.

Payload (a msgpack-able dict; docs/STATE_SYNC.md is the normative text):

* ``"e"``: ``{id: {field: value}}``. Full snapshot: every entity with every
  field. Delta: entities absent from the baseline with every field, entities
  present in both with only the fields whose value changed (a quantized field
  the baseline entity also had is sent as the integer difference). Always
  present.
* ``"b"``: the baseline's packet sequence (0..65535). Present only in deltas.
* ``"r"``: ``[id, ...]`` entities of the baseline that no longer exist. Deltas
  only, omitted when empty.
* ``"x"``: ``{id: [field, ...]}`` fields removed from entities that still
  exist. Deltas only, omitted when empty.

Quantization (``quantize={"x": 0.01}``) sends a float field as the integer
``round(value / step)`` (within +-2**62) and the receiver returns ``n * step``;
in a delta it is sent relative to the baseline's integer when there is one. It
must be configured identically on both ends and it applies to every entity's
field of that name, which must then hold a finite number.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, TypeAlias

from ..errors import ConfigError, DecodeError, DeltaBaselineMissing, EncodeError
from .sequence import SEQ_MASK, SequenceBuffer, seq_diff, seq_greater_than

__all__ = [
    "Entities",
    "EntityId",
    "SnapshotReceiver",
    "SnapshotSender",
    "apply_delta",
    "check_entities",
    "encode_delta",
    "encode_full",
]

EntityId: TypeAlias = int | str
# A union because Mapping is invariant in its key: a game's dict[int, dict[str, float]]
# must type-check without casts.
Entities: TypeAlias = (
    Mapping[int, Mapping[str, Any]]
    | Mapping[str, Mapping[str, Any]]
    | Mapping[EntityId, Mapping[str, Any]]
)
# Internal wire-form state: never mutated once stored in a ring, so snapshots
# share unchanged entity dicts instead of copying them every tick.
_Wire: TypeAlias = dict[EntityId, dict[str, Any]]

DEFAULT_RING_SIZE = 64
DEFAULT_MAX_ENTITIES = 4096
_PAYLOAD_KEYS = frozenset({"b", "e", "r", "x"})


def _is_id(value: object) -> bool:
    return (type(value) is int) or isinstance(value, str)


# Immutable msgpack scalars: shared, never copied or compared recursively (fast path).
_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
_MISSING = object()
_STR = frozenset({str})
# Quantized integers stay within +-2**62 so a difference of two still fits msgpack's int64.
_QUANT_LIMIT = 1 << 62


def _copy(value: Any) -> Any:
    """Deep copy of containers (tuples become lists, as after msgpack); scalars as is."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
    """Equality that also requires equal types (``1``, ``1.0`` and ``True`` differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return bool(a == b)


def _unchanged(old: Any, new: Any) -> bool:
    """:func:`_same` with the common cases (identical or equal scalars) inlined."""
    if old is new:
        return True
    t = type(new)
    if type(old) is not t:
        return False
    return bool(old == new) if t in _SCALARS else _same(old, new)


def _same_scalar_types(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """For ``old == new``: True if every value is a scalar of the same type in both."""
    for key, value in new.items():
        t = type(value)
        if t is not type(old[key]) or t not in _SCALARS:
            return False
    return True


def encode_full(state: _Wire) -> dict[str, Any]:
    """Payload carrying every entity and field of ``state`` (wire form)."""
    return {"e": {eid: dict(fields) for eid, fields in state.items()}}


def encode_delta(
    baseline: _Wire, state: _Wire, baseline_seq: int, relative: Collection[str] = ()
) -> dict[str, Any]:
    """Payload turning ``baseline`` into ``state``: only what differs.

    Fields named in ``relative`` (the quantized ones, integers in wire form)
    are sent as the difference from the baseline's value when the entity had
    that field: a moving position costs a 1-3 byte step instead of a 5-9 byte
    coordinate.
    """
    changed: dict[EntityId, dict[str, Any]] = {}
    removed_fields: dict[EntityId, list[str]] = {}
    for eid, fields in state.items():
        old = baseline.get(eid)
        if old is None:
            changed[eid] = dict(fields)
            continue
        if old == fields and _same_scalar_types(old, fields):
            continue  # the common case, checked at C speed
        diff = {k: v for k, v in fields.items() if not _unchanged(old.get(k, _MISSING), v)}
        if diff:
            for name in relative:
                if name in diff and name in old:
                    diff[name] -= old[name]
            changed[eid] = diff
        gone = [k for k in old if k not in fields]
        if gone:
            removed_fields[eid] = gone
    payload: dict[str, Any] = {"b": baseline_seq, "e": changed}
    removed = [eid for eid in baseline if eid not in state]
    if removed:
        payload["r"] = removed
    if removed_fields:
        payload["x"] = removed_fields
    return payload


def apply_delta(
    baseline: _Wire, payload: Mapping[str, Any], relative: Collection[str] = ()
) -> _Wire:
    """The state a delta payload describes, given its baseline (both wire form).

    The payload must have passed :func:`_check_payload`; ``baseline`` is not
    modified and unchanged entity dicts are shared with it. ``relative`` must
    be what the sender used with :func:`encode_delta`.
    """
    state = dict(baseline)
    for eid in payload.get("r", ()):
        if eid not in state:
            raise DecodeError(f"snapshot delta removes unknown entity {eid!r}")
        del state[eid]
    for eid, names in payload.get("x", {}).items():
        if eid not in state:
            raise DecodeError(f"snapshot delta removes fields of unknown entity {eid!r}")
        state[eid] = {k: v for k, v in state[eid].items() if k not in names}
    for eid, fields in payload["e"].items():
        old = state.get(eid)
        if old is None:
            state[eid] = dict(fields)
            continue
        entity = {**old, **fields}
        for name in relative:
            if name in fields and name in old:
                entity[name] = _add_step(eid, name, old[name], fields[name])
        state[eid] = entity
    return state


def _add_step(eid: EntityId, name: str, base: object, step: object) -> int:
    if type(base) is not int or type(step) is not int:
        raise DecodeError(f"entity {eid!r}: relative field {name!r} is not an int")
    value = base + step
    if not -_QUANT_LIMIT <= value <= _QUANT_LIMIT:
        raise DecodeError(f"entity {eid!r}: quantized field {name!r} out of range")
    return value


def _check_payload(payload: object, max_entities: int) -> Mapping[str, Any]:
    """Structure check of a payload from the network; raises :class:`DecodeError`."""
    if not isinstance(payload, dict):
        raise DecodeError(f"snapshot payload must be a map, got {type(payload).__name__}")
    unknown = payload.keys() - _PAYLOAD_KEYS
    if unknown:
        raise DecodeError(f"snapshot payload has unknown keys {sorted(map(str, unknown))}")
    entities = payload.get("e")
    if not isinstance(entities, dict) or len(entities) > max_entities:
        raise DecodeError(f"snapshot 'e' must be a map of at most {max_entities} entities")
    for eid, fields in entities.items():
        _check_id(eid)
        if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
            raise DecodeError(f"snapshot entity {eid!r}: fields must be a str-keyed map")
    if "b" not in payload:
        if "r" in payload or "x" in payload:
            raise DecodeError("snapshot 'r'/'x' are only allowed in a delta (with 'b')")
        return payload
    base = payload["b"]
    if type(base) is not int or not 0 <= base <= SEQ_MASK:
        raise DecodeError(f"snapshot 'b' must be an int in 0..65535, got {base!r}")
    removed = payload.get("r", [])
    if not isinstance(removed, list):
        raise DecodeError("snapshot 'r' must be an array of entity ids")
    for eid in removed:
        _check_id(eid)
    removed_fields = payload.get("x", {})
    if not isinstance(removed_fields, dict):
        raise DecodeError("snapshot 'x' must be a map of entity id -> field names")
    for eid, names in removed_fields.items():
        _check_id(eid)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DecodeError(f"snapshot 'x' of {eid!r} must be an array of field names")
    return payload


def _check_id(eid: object) -> None:
    if not _is_id(eid):
        raise DecodeError(f"entity id must be an int or a str, got {eid!r}")


class _Quantizer:
    """Float fields <-> integer multiples of a step, identical on both ends."""

    __slots__ = ("_fields", "_steps")

    def __init__(self, steps: Mapping[str, float] | None) -> None:
        steps = dict(steps or {})
        for name, step in steps.items():
            if not isinstance(name, str) or not (isinstance(step, int | float) and step > 0):
                raise ConfigError(f"quantize: step of {name!r} must be a number > 0")
            if not math.isfinite(step):
                raise ConfigError(f"quantize: step of {name!r} must be finite")
        self._steps = steps
        self._fields = frozenset(steps)

    @property
    def fields(self) -> frozenset[str]:
        """Names of the quantized fields (sent relative to the baseline in deltas)."""
        return self._fields

    def to_wire(self, entities: Entities) -> _Wire:
        """Copy of ``entities`` in wire form (validated, quantized, tuples as lists).

        Raises :class:`EncodeError` (a ValueError) for anything that is not an
        ``{int | str: {str: value}}`` map or a quantized field that is not a number.
        """
        steps = self._steps
        out: _Wire = {}
        if not isinstance(entities, Mapping):
            raise EncodeError(f"entities must be a map id -> fields, got {type(entities).__name__}")
        for eid, fields in entities.items():
            if type(eid) is not int and not isinstance(eid, str):
                raise EncodeError(f"entity id must be an int or a str, got {eid!r:.60}")
            if type(fields) is not dict and not isinstance(fields, Mapping):
                raise EncodeError(f"entity {eid!r}: fields must be a map, got {fields!r:.60}")
            if not _STR.issuperset(map(type, fields)):
                raise EncodeError(f"entity {eid!r}: field names must be str, got {list(fields)!r}")
            entity = {k: v if type(v) in _SCALARS else _copy(v) for k, v in fields.items()}
            for name, step in steps.items():
                value = entity.get(name, _MISSING)
                if value is _MISSING:
                    continue
                if type(value) is float or type(value) is int:  # inlined: hot loop
                    try:
                        n = round(value / step)
                        if -_QUANT_LIMIT <= n <= _QUANT_LIMIT:
                            entity[name] = n
                            continue
                    except (OverflowError, ValueError):
                        pass
                _quantize(eid, name, value, step)  # raises the precise error
            out[eid] = entity
        return out

    def from_wire(self, state: _Wire) -> dict[EntityId, dict[str, Any]]:
        """Fresh copy of a wire-form state for the game (it may mutate it freely)."""
        steps = self._steps
        out: dict[EntityId, dict[str, Any]] = {}
        for eid, fields in state.items():
            entity = {k: v if type(v) in _SCALARS else _copy(v) for k, v in fields.items()}
            for name, step in steps.items():
                value = entity.get(name, _MISSING)
                if value is _MISSING:
                    continue
                if type(value) is not int:
                    raise DecodeError(f"entity {eid!r}: quantized field {name!r} is not an int")
                entity[name] = value * step
            out[eid] = entity
        return out


def _quantize(eid: EntityId, name: str, value: object, step: float) -> int:
    if type(value) is not float and type(value) is not int:
        raise EncodeError(f"entity {eid!r}: quantized field {name!r} must be a number")
    try:
        n = round(value / step)
    except (OverflowError, ValueError):
        raise EncodeError(f"entity {eid!r}: quantized field {name!r} must be finite") from None
    if not -_QUANT_LIMIT <= n <= _QUANT_LIMIT:
        raise EncodeError(f"entity {eid!r}: quantized field {name!r} is out of range")
    return n


def check_entities(entities: object) -> None:
    """Raise :class:`EncodeError` unless ``entities`` is ``{int | str: {str: value}}``.

    For callers that must refuse a bad snapshot before it reaches a sender,
    e.g. in the game's thread before handing it to a network thread, or when no
    peer is connected yet (so no sender runs). Values are not checked here:
    ``wire.check_payload`` does that.
    """
    _PLAIN.to_wire(entities)  # type: ignore[arg-type]


def _check_ring_size(ring_size: int) -> None:
    if (
        type(ring_size) is not int
        or ring_size < 2
        or (ring_size & (ring_size - 1))
        or ring_size > 32768
    ):
        raise ConfigError(f"ring_size must be a power of two in 2..32768, got {ring_size!r}")


_PLAIN = _Quantizer(None)


class SnapshotSender:
    """Encodes snapshots for ONE receiver, as deltas from its newest acked snapshot.

    ``encode(seq, entities)`` with the packet sequence the payload will travel
    under (``ReliabilityEndpoint.next_seq``), then ``on_ack(seq)`` for every
    sequence the peer acks (``ReliabilityEndpoint.take_acked()``; sequences of
    non-snapshot packets are ignored). A baseline is only used if it is fewer
    than ``ring_size`` sequences old, which guarantees a receiver with the
    same ``ring_size`` still holds it.
    """

    def __init__(
        self,
        *,
        ring_size: int = DEFAULT_RING_SIZE,
        quantize: Mapping[str, float] | None = None,
    ) -> None:
        _check_ring_size(ring_size)
        self._ring: SequenceBuffer[_Wire] = SequenceBuffer(ring_size)
        self._quantizer = _Quantizer(quantize)
        self._acked: int | None = None
        self.full_count = 0
        self.delta_count = 0

    def encode(self, seq: int, entities: Entities) -> dict[str, Any]:
        """The payload for ``entities`` sent as packet ``seq``; remembers it as a baseline."""
        seq &= SEQ_MASK
        state = self._quantizer.to_wire(entities)
        base_seq = self.baseline_for(seq)
        if base_seq is None:
            payload = encode_full(state)
            self.full_count += 1
        else:
            baseline = self._ring.get(base_seq)
            assert baseline is not None  # baseline_for checked it
            payload = encode_delta(baseline, state, base_seq, self._quantizer.fields)
            self.delta_count += 1
        self._ring.insert(seq, state)
        return payload

    def baseline_for(self, seq: int) -> int | None:
        """The baseline a snapshot sent as ``seq`` would use, or None (full snapshot)."""
        acked = self._acked
        if acked is None or acked not in self._ring:
            return None
        if not 0 < seq_diff(seq, acked) < self._ring.size:
            return None
        return acked

    def on_ack(self, seq: int) -> None:
        """The receiver acked packet ``seq``; newer acked snapshots become the baseline."""
        if seq in self._ring and (self._acked is None or seq_greater_than(seq, self._acked)):
            self._acked = seq

    def sent(self, seq: int) -> dict[EntityId, dict[str, Any]] | None:
        """What the receiver reconstructs for ``seq`` (after quantization), if still held."""
        state = self._ring.get(seq)
        return None if state is None else self._quantizer.from_wire(state)

    def reset(self) -> None:
        """Forget every baseline (e.g. the peer reconnected): the next snapshot is full."""
        self._ring.clear()
        self._acked = None


class SnapshotReceiver:
    """Reconstructs full snapshots from full or delta payloads of ONE sender."""

    def __init__(
        self,
        *,
        ring_size: int = DEFAULT_RING_SIZE,
        quantize: Mapping[str, float] | None = None,
        max_entities: int = DEFAULT_MAX_ENTITIES,
    ) -> None:
        _check_ring_size(ring_size)
        if type(max_entities) is not int or max_entities < 1:
            raise ConfigError(f"max_entities must be an int >= 1, got {max_entities!r}")
        self._ring: SequenceBuffer[_Wire] = SequenceBuffer(ring_size)
        self._quantizer = _Quantizer(quantize)
        self._max_entities = max_entities

    def decode(self, seq: int, payload: object) -> dict[EntityId, dict[str, Any]]:
        """Full entities of the snapshot sent as packet ``seq`` (a fresh, mutable copy).

        Raises :class:`DecodeError` for a malformed payload and
        :class:`DeltaBaselineMissing` when the baseline is not held (then call
        ``ReliabilityEndpoint.discard_received(seq)`` so it is not acked).
        """
        if type(seq) is not int or not 0 <= seq <= SEQ_MASK:
            raise DecodeError(f"snapshot seq must be an int in 0..65535, got {seq!r}")
        checked = _check_payload(payload, self._max_entities)
        if "b" in checked:
            base_seq: int = checked["b"]
            if not seq_greater_than(seq, base_seq):
                raise DecodeError(f"snapshot {seq} has a baseline {base_seq} that is not older")
            baseline = self._ring.get(base_seq)
            if baseline is None:
                raise DeltaBaselineMissing(f"snapshot {seq}: baseline {base_seq} is not held")
            state = apply_delta(baseline, checked, self._quantizer.fields)
        else:
            state = {eid: dict(fields) for eid, fields in checked["e"].items()}
        if len(state) > self._max_entities:
            raise DecodeError(f"snapshot {seq} has more than {self._max_entities} entities")
        result = self._quantizer.from_wire(state)  # validates quantized fields before storing
        self._ring.insert(seq, state)
        return result

    def has(self, seq: int) -> bool:
        """True if the snapshot of ``seq`` is held (usable as a baseline)."""
        return seq in self._ring

    def reset(self) -> None:
        self._ring.clear()

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

Limits (:class:`netcode.config.Limits`, docs/STATE_SYNC.md 4.6): a snapshot
holds at most ``max_snapshot_entities`` entities of at most
``max_entity_fields`` fields each, ``max_snapshot_fields`` fields in all (an
array/map value counts one more per element, recursively) and
``max_snapshot_bytes`` of msgpack in its ``"e"`` map (what a full snapshot
carries). The sender refuses a bigger state (:class:`EncodeError`), the
receiver refuses a payload or a reconstruction over them (:class:`DecodeError`).
Every lookup is by dict or set, so decoding one payload costs
O(payload + limits), and the receiver retains at most ``ring_size`` snapshots
within the limits; unchanged entity dicts are shared between them, not copied.

Quantization (``quantize={"x": 0.01}``) sends a float field as the integer
``round(value / step)`` (within +-2**62) and the receiver returns ``n * step``;
in a delta it is sent relative to the baseline's integer when there is one. It
must be configured identically on both ends and it applies to every entity's
field of that name, which must then hold a finite number.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, Final, TypeAlias

import msgpack

from ..config import Limits
from ..errors import ConfigError, DecodeError, DeltaBaselineMissing, EncodeError
from . import wire
from .sequence import SEQ_MASK, SequenceBuffer, seq_diff, seq_greater_than
from .snapframe import FragmentAssembler, SnapshotFrame, check_fragment, map_header

__all__ = [
    "Entities",
    "EntityId",
    "SnapshotEncoder",
    "SnapshotFrame",
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
_DEFAULT_LIMITS: Final = Limits()
_PAYLOAD_KEYS = frozenset({"b", "e", "f", "r", "x"})


def _is_id(value: object) -> bool:
    return (type(value) is int) or isinstance(value, str)


# Immutable msgpack scalars: shared, never copied or compared recursively (fast path).
_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
_MISSING = object()
_STR = frozenset({str})
# Quantized integers stay within +-2**62 so a difference of two still fits msgpack's int64.
_QUANT_LIMIT = 1 << 62


class _Copier:
    """Deep copies of array/map field values (tuples become lists, as after msgpack).

    Counts the containers and elements it copies, which count as fields toward
    ``max_snapshot_fields`` (a list of 1,000 items costs what 1,001 fields do:
    a one-entry dict is 184 B of Python, more than a float field),
    and refuses nesting deeper than ``max_depth`` with ``error`` rather than
    recursing without end on a game's self-referencing list.
    """

    __slots__ = ("_error", "_max_depth", "elements")

    def __init__(self, max_depth: int, error: type[Exception]) -> None:
        self._max_depth = max_depth
        self._error = error
        self.elements = 0

    def entity(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Copy of an entity's fields; scalars are shared (immutable)."""
        return {k: v if type(v) in _SCALARS else self.copy(v, 1) for k, v in fields.items()}

    def copy(self, value: Any, depth: int) -> Any:
        if type(value) in _SCALARS:
            return value
        if depth > self._max_depth:
            raise self._error(
                f"snapshot field value nested deeper than max_depth={self._max_depth}"
            )
        if isinstance(value, list | tuple):
            self.elements += 1 + len(value)  # itself and its elements
            return [self.copy(v, depth + 1) for v in value]
        if isinstance(value, dict):
            self.elements += 1 + len(value)  # itself and its elements
            return {k: self.copy(v, depth + 1) for k, v in value.items()}
        return value  # not msgpack-able: the size check or the wire codec refuses it


def _check_totals(state: _Wire, fields: int, limits: Limits, error: type[Exception]) -> None:
    """Raise ``error`` unless a whole snapshot (``fields`` counted by the caller) fits.

    The encoded size is measured, not estimated: ``max_snapshot_bytes`` is what a
    full snapshot of ``state`` carries, and it bounds strings and keys (up to
    ``max_str_len`` each) that counts cannot. One C-speed ``packb`` of at most
    ``max_snapshot_bytes``.
    """
    if len(state) > limits.max_snapshot_entities:
        raise error(
            f"snapshot has {len(state)} entities, more than "
            f"max_snapshot_entities={limits.max_snapshot_entities}"
        )
    if fields > limits.max_snapshot_fields:
        raise error(
            f"snapshot has {fields} fields (arrays/maps in values and their elements "
            f"included), more than max_snapshot_fields={limits.max_snapshot_fields}"
        )
    try:
        # packb() would allocate a 256 KiB buffer per call; grow from 4 KiB instead.
        size = len(msgpack.Packer(buf_size=4096).pack(state))
    except (TypeError, ValueError, OverflowError) as exc:
        raise error(f"snapshot cannot be encoded: {exc}") from None
    if size > limits.max_snapshot_bytes:
        raise error(
            f"snapshot of {size} bytes (full encoding) exceeds "
            f"max_snapshot_bytes={limits.max_snapshot_bytes}"
        )


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
    be what the sender used with :func:`encode_delta`. Removing an entity or a
    field the baseline lacks is a :class:`DecodeError` (a sender never does).

    Cost: one shallow copy of ``baseline`` plus, per entity the payload names,
    a new dict of its fields; removals are set lookups, never list scans.
    """
    state = dict(baseline)
    for eid in payload.get("r", ()):
        if eid not in state:
            raise DecodeError(f"snapshot delta removes unknown entity {eid!r}")
        del state[eid]
    for eid, names in payload.get("x", {}).items():
        old = state.get(eid)
        if old is None:
            raise DecodeError(f"snapshot delta removes fields of unknown entity {eid!r}")
        gone = set(names)
        if not gone <= old.keys():
            raise DecodeError(f"snapshot delta removes unknown fields of entity {eid!r}")
        state[eid] = {k: v for k, v in old.items() if k not in gone}
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


def _check_payload(payload: object, limits: Limits) -> Mapping[str, Any]:
    """Structure check of a payload from the network; raises :class:`DecodeError`.

    O(payload): every count is checked against ``limits`` before anything is
    built from it (no entity can hold more fields than ``max_entity_fields``, so
    neither can an ``"e"`` entry or an ``"x"`` list).
    """
    if type(payload) is not dict:
        raise DecodeError(f"snapshot payload must be a map, got {type(payload).__name__}")
    unknown = payload.keys() - _PAYLOAD_KEYS
    if unknown:
        raise DecodeError(f"snapshot payload has unknown keys {sorted(map(str, unknown))}")
    max_entities, max_fields = limits.max_snapshot_entities, limits.max_entity_fields
    entities = payload.get("e")
    if type(entities) is not dict or len(entities) > max_entities:
        raise DecodeError(f"snapshot 'e' must be a map of at most {max_entities} entities")
    for eid, fields in entities.items():
        _check_id(eid)
        if type(fields) is not dict or not _STR.issuperset(map(type, fields)):
            raise DecodeError(f"snapshot entity {eid!r}: fields must be a str-keyed map")
        if len(fields) > max_fields:
            raise DecodeError(
                f"snapshot entity {eid!r}: more than max_entity_fields={max_fields} fields"
            )
    if "b" not in payload:
        if "r" in payload or "x" in payload:
            raise DecodeError("snapshot 'r'/'x' are only allowed in a delta (with 'b')")
        if "f" in payload:
            check_fragment(payload["f"])
        return payload
    if "f" in payload:
        raise DecodeError("snapshot 'f' (fragment) is only allowed in a full snapshot")
    base = payload["b"]
    if type(base) is not int or not 0 <= base <= SEQ_MASK:
        raise DecodeError(f"snapshot 'b' must be an int in 0..65535, got {base!r}")
    _check_removals(payload.get("r", []), payload.get("x", {}), max_entities, max_fields)
    return payload


def _check_removals(
    removed: object, removed_fields: object, max_entities: int, max_fields: int
) -> None:
    if type(removed) is not list or len(removed) > max_entities:
        raise DecodeError(f"snapshot 'r' must be an array of at most {max_entities} entity ids")
    for eid in removed:
        _check_id(eid)
    if type(removed_fields) is not dict or len(removed_fields) > max_entities:
        raise DecodeError(
            f"snapshot 'x' must be a map of at most {max_entities} entity id -> field names"
        )
    for eid, names in removed_fields.items():
        _check_id(eid)
        if type(names) is not list or not _STR.issuperset(map(type, names)):
            raise DecodeError(f"snapshot 'x' of {eid!r} must be an array of field names")
        if len(names) > max_fields:
            raise DecodeError(
                f"snapshot 'x' of {eid!r}: more than max_entity_fields={max_fields} names"
            )


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

    @property
    def steps(self) -> Mapping[str, float]:
        return self._steps

    def to_wire(self, entities: Entities, limits: Limits) -> _Wire:
        """Copy of ``entities`` in wire form (validated, quantized, tuples as lists).

        Raises :class:`EncodeError` (a ValueError) for anything that is not an
        ``{int | str: {str: value}}`` map, a quantized field that is not a number,
        or a snapshot over ``limits`` (what a receiver would refuse).
        """
        steps = self._steps
        if not isinstance(entities, Mapping):
            raise EncodeError(f"entities must be a map id -> fields, got {type(entities).__name__}")
        if len(entities) > limits.max_snapshot_entities:  # before copying any of it
            raise EncodeError(
                f"snapshot has {len(entities)} entities, more than "
                f"max_snapshot_entities={limits.max_snapshot_entities}"
            )
        copier = _Copier(limits.max_depth, EncodeError)
        out: _Wire = {}
        fields_total = 0
        for eid, fields in entities.items():
            entity = _entity_to_wire(eid, fields, copier, limits.max_entity_fields)
            fields_total += len(entity)
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
        _check_totals(out, fields_total + copier.elements, limits, EncodeError)
        return out

    def from_wire(
        self, state: _Wire, limits: Limits, *, check: bool = False
    ) -> dict[EntityId, dict[str, Any]]:
        """Fresh copy of a wire-form state for the game (it may mutate it freely).

        With ``check``, raise :class:`DecodeError` for a state over ``limits``:
        the receiver's one pass over a reconstructed snapshot both copies and
        measures it.
        """
        steps = self._steps
        copier = _Copier(limits.max_depth, DecodeError)
        out: dict[EntityId, dict[str, Any]] = {}
        fields_total = 0
        for eid, fields in state.items():
            if check and len(fields) > limits.max_entity_fields:
                raise DecodeError(
                    f"snapshot entity {eid!r}: {len(fields)} fields, more than "
                    f"max_entity_fields={limits.max_entity_fields}"
                )
            fields_total += len(fields)
            if _SCALARS.issuperset(map(type, fields.values())):
                entity = dict(fields)  # the common case, at C speed
            else:
                entity = copier.entity(fields)
            for name, step in steps.items():
                value = entity.get(name, _MISSING)
                if value is _MISSING:
                    continue
                if type(value) is not int:
                    raise DecodeError(f"entity {eid!r}: quantized field {name!r} is not an int")
                entity[name] = value * step
            out[eid] = entity
        if check:
            _check_totals(state, fields_total + copier.elements, limits, DecodeError)
        return out


def _entity_to_wire(
    eid: object, fields: object, copier: _Copier, max_fields: int
) -> dict[str, Any]:
    """One entity of a game's snapshot, checked and copied (not yet quantized)."""
    if type(eid) is not int and not isinstance(eid, str):
        raise EncodeError(f"entity id must be an int or a str, got {eid!r:.60}")
    if type(fields) is not dict and not isinstance(fields, Mapping):
        raise EncodeError(f"entity {eid!r}: fields must be a map, got {fields!r:.60}")
    if not _STR.issuperset(map(type, fields)):
        raise EncodeError(f"entity {eid!r}: field names must be str, got {list(fields)!r:.80}")
    if len(fields) > max_fields:
        raise EncodeError(
            f"entity {eid!r}: {len(fields)} fields, more than max_entity_fields={max_fields}"
        )
    if _SCALARS.issuperset(map(type, fields.values())):
        return dict(fields)  # the common case, at C speed
    return copier.entity(fields)


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


def check_entities(entities: object, limits: Limits = _DEFAULT_LIMITS) -> None:
    """Raise :class:`EncodeError` unless ``entities`` is a sendable snapshot.

    That is ``{int | str: {str: value}}`` within ``limits`` (entities, fields per
    entity and in all, encoded size): exactly what :meth:`SnapshotSender.encode`
    refuses. For callers that must refuse a bad snapshot before it reaches a
    sender, e.g. in the game's thread before handing it to a network thread, or
    when no peer is connected yet (so no sender runs). Values must be msgpack-able;
    their depth and string lengths are ``wire.check_payload``'s job.
    """
    _PLAIN.to_wire(entities, limits)  # type: ignore[arg-type]


def _check_ring_size(ring_size: int) -> None:
    if (
        type(ring_size) is not int
        or ring_size < 2
        or (ring_size & (ring_size - 1))
        or ring_size > 32768
    ):
        raise ConfigError(f"ring_size must be a power of two in 2..32768, got {ring_size!r}")


def _check_limits(limits: object) -> Limits:
    if not isinstance(limits, Limits):
        raise ConfigError(f"limits must be a netcode.config.Limits, got {type(limits).__name__}")
    return limits


_PLAIN = _Quantizer(None)


class SnapshotEncoder:
    """Turns a game's entities into a :class:`SnapshotFrame` once per tick.

    Validates and quantizes like :class:`SnapshotSender` (same ``quantize`` and
    ``limits`` as every sender it feeds), and checks every value is sendable,
    so no sender re-validates what it encodes. Safe to call from any thread.
    """

    def __init__(
        self, *, quantize: Mapping[str, float] | None = None, limits: Limits = _DEFAULT_LIMITS
    ) -> None:
        self._limits = _check_limits(limits)
        self._quantizer = _Quantizer(quantize)

    def frame(self, entities: Entities) -> SnapshotFrame:
        """Raises :class:`EncodeError` for a malformed map or one over the limits."""
        state = self._quantizer.to_wire(entities, self._limits)
        _check_values(state, self._limits)
        return SnapshotFrame(state, self._quantizer.fields)


def _check_values(state: _Wire, limits: Limits) -> None:
    """What :meth:`_Quantizer.to_wire` leaves to check for the receiver's decoder: str
    lengths, and arrays/maps in values in full (int ranges and types fail the size
    measurement's msgpack encoding already). One pass over scalar fields."""
    max_chars = limits.max_str_len // 4  # below this even 4-byte UTF-8 fits
    for fields in state.values():
        for name, value in fields.items():
            if len(name) > max_chars:
                wire.check_payload(name, limits)
            t = type(value)
            if t is str:
                if len(value) > max_chars:
                    wire.check_payload(value, limits)
            elif t is list or t is dict:
                wire.check_payload(value, limits)


class SnapshotSender:
    """Encodes snapshots for ONE receiver, as deltas from its newest acked snapshot.

    ``encode(seq, entities)`` with the packet sequence the payload will travel
    under (``ReliabilityEndpoint.next_seq``), then ``on_ack(seq)`` for every
    sequence the peer acks (``ReliabilityEndpoint.take_acked()``; sequences of
    non-snapshot packets are ignored). A baseline is only used if it is fewer
    than ``ring_size`` sequences old, which guarantees a receiver with the
    same ``ring_size`` still holds it. ``limits`` must equal the receiver's:
    a snapshot over them is refused here rather than dropped there.
    """

    def __init__(
        self,
        *,
        ring_size: int = DEFAULT_RING_SIZE,
        quantize: Mapping[str, float] | None = None,
        limits: Limits = _DEFAULT_LIMITS,
    ) -> None:
        _check_ring_size(ring_size)
        self._limits = _check_limits(limits)
        self._ring: SequenceBuffer[_Wire] = SequenceBuffer(ring_size)
        self._quantizer = _Quantizer(quantize)
        self._acked: int | None = None
        # Fragmented full snapshots: frame seq -> its fragments' seqs not yet acked,
        # and fragment seq -> frame seq. Pruned with the ring.
        self._unacked_parts: dict[int, set[int]] = {}
        self._frame_of: dict[int, int] = {}
        self.full_count = 0
        self.delta_count = 0

    def encode_frame(self, seq: int, frame: SnapshotFrame, max_part_bytes: int) -> list[bytes]:
        """Packed payloads for ``frame``, the first sent as packet ``seq``, the next as
        ``seq + 1``, ... (several only for a full snapshot over ``max_part_bytes``).

        The frame's state becomes the baseline candidate ``seq``, once acked (every
        fragment acked, for a fragmented one).
        """
        seq &= SEQ_MASK
        base_seq = self.baseline_for(seq)
        if base_seq is None:
            parts = frame.full(max_part_bytes)
            self.full_count += 1
        else:
            baseline = self._ring.get(base_seq)
            assert baseline is not None  # baseline_for checked it
            parts = [frame.delta(baseline, base_seq)]
            self.delta_count += 1
        self._ring.insert(seq, frame.state)
        self._prune_parts()
        if len(parts) > 1:
            part_seqs = {(seq + i) & SEQ_MASK for i in range(len(parts))}
            self._unacked_parts[seq] = part_seqs
            for part in part_seqs:
                self._frame_of[part] = seq
        return parts

    def _prune_parts(self) -> None:
        for frame_seq in [f for f in self._unacked_parts if f not in self._ring]:
            for part in self._unacked_parts.pop(frame_seq):
                self._frame_of.pop(part, None)

    def encode(self, seq: int, entities: Entities) -> dict[str, Any]:
        """The payload for ``entities`` sent as packet ``seq``; remembers it as a baseline.

        Raises :class:`EncodeError` for a malformed map or one over the limits
        (nothing is remembered then).
        """
        seq &= SEQ_MASK
        state = self._quantizer.to_wire(entities, self._limits)
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
        frame_seq = self._frame_of.pop(seq, None)
        if frame_seq is not None:  # a fragment: the frame counts once all are acked
            remaining = self._unacked_parts.get(frame_seq)
            if remaining is None:
                return
            remaining.discard(seq)
            if remaining:
                return
            del self._unacked_parts[frame_seq]
            seq = frame_seq
        if seq in self._ring and (self._acked is None or seq_greater_than(seq, self._acked)):
            self._acked = seq

    def sent(self, seq: int) -> dict[EntityId, dict[str, Any]] | None:
        """What the receiver reconstructs for ``seq`` (after quantization), if still held."""
        state = self._ring.get(seq)
        return None if state is None else self._quantizer.from_wire(state, self._limits)

    def reset(self) -> None:
        """Forget every baseline (e.g. the peer reconnected): the next snapshot is full."""
        self._ring.clear()
        self._acked = None
        self._unacked_parts.clear()
        self._frame_of.clear()


def _same_id(a: EntityId, b: EntityId) -> bool:
    return a is b or (type(a) is type(b) and a == b)


class _GameCopies:
    """The receiver's last step: wire-form state -> a fresh, dequantized copy for the game,
    checked against the limits. Memoized per entity dict: a delta shares unchanged
    entity dicts with its baseline, so only entities that changed are dequantized
    and measured again; the rest cost one shallow copy. Holds one snapshot's worth.
    """

    __slots__ = ("_cache", "_limits", "_packer", "_steps")

    def __init__(self, steps: Mapping[str, float], limits: Limits) -> None:
        self._steps = steps
        self._limits = limits
        # packb() would allocate a 256 KiB buffer per call: one small reused packer.
        self._packer = msgpack.Packer(buf_size=1024, use_bin_type=True)
        # id(wire entity) -> (wire entity, id, game entity, scalar-only, fields, bytes)
        self._cache: dict[int, tuple[dict[str, Any], EntityId, dict[str, Any], bool, int, int]] = {}

    def build(self, state: _Wire) -> dict[EntityId, dict[str, Any]]:
        """Raise :class:`DecodeError` for a state over the limits; nothing is kept then."""
        limits = self._limits
        if len(state) > limits.max_snapshot_entities:
            raise DecodeError(
                f"snapshot has {len(state)} entities, more than "
                f"max_snapshot_entities={limits.max_snapshot_entities}"
            )
        cache, fresh = self._cache, {}
        out: dict[EntityId, dict[str, Any]] = {}
        nbytes, fields_total = len(map_header(len(state))), 0
        for eid, fields in state.items():
            hit = cache.get(id(fields))
            if hit is None or hit[0] is not fields or not _same_id(hit[1], eid):
                hit = self._entry(eid, fields)
            fresh[id(fields)] = hit
            fields_total += hit[4]
            nbytes += hit[5]
            if hit[3]:
                out[eid] = dict(hit[2])
            else:  # arrays/maps in values: the game gets its own copies of those too
                out[eid] = _Copier(limits.max_depth, DecodeError).entity(hit[2])
        if fields_total > limits.max_snapshot_fields:
            raise DecodeError(
                f"snapshot has {fields_total} fields (arrays/maps in values and their elements "
                f"included), more than max_snapshot_fields={limits.max_snapshot_fields}"
            )
        if nbytes > limits.max_snapshot_bytes:
            raise DecodeError(
                f"snapshot of {nbytes} bytes (full encoding) exceeds "
                f"max_snapshot_bytes={limits.max_snapshot_bytes}"
            )
        self._cache = fresh
        return out

    def _entry(
        self, eid: EntityId, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], EntityId, dict[str, Any], bool, int, int]:
        limits = self._limits
        if len(fields) > limits.max_entity_fields:
            raise DecodeError(
                f"snapshot entity {eid!r}: {len(fields)} fields, more than "
                f"max_entity_fields={limits.max_entity_fields}"
            )
        copier = _Copier(limits.max_depth, DecodeError)
        scalar = _SCALARS.issuperset(map(type, fields.values()))
        entity = dict(fields) if scalar else copier.entity(fields)
        for name, step in self._steps.items():
            value = entity.get(name, _MISSING)
            if value is _MISSING:
                continue
            if type(value) is not int:
                raise DecodeError(f"entity {eid!r}: quantized field {name!r} is not an int")
            entity[name] = value * step
        size = len(self._packer.pack(eid)) + len(self._packer.pack(fields))
        return fields, eid, entity, scalar, len(fields) + copier.elements, size

    def reset(self) -> None:
        self._cache = {}


class SnapshotReceiver:
    """Reconstructs full snapshots from full or delta payloads of ONE sender.

    Memory: at most ``ring_size`` snapshots, each within ``limits``
    (docs/STATE_SYNC.md 4.6); entity dicts a delta leaves unchanged are shared
    with its baseline, not copied. A payload, or the snapshot it reconstructs,
    over the limits is a :class:`DecodeError` and nothing is stored.
    """

    def __init__(
        self,
        *,
        ring_size: int = DEFAULT_RING_SIZE,
        quantize: Mapping[str, float] | None = None,
        limits: Limits = _DEFAULT_LIMITS,
    ) -> None:
        _check_ring_size(ring_size)
        self._limits = _check_limits(limits)
        self._ring: SequenceBuffer[_Wire] = SequenceBuffer(ring_size)
        self._quantizer = _Quantizer(quantize)
        self._fragments = FragmentAssembler(self._limits)
        self._copies = _GameCopies(self._quantizer.steps, self._limits)

    def receive(
        self, seq: int, payload: object
    ) -> tuple[int, dict[EntityId, dict[str, Any]]] | None:
        """:meth:`decode` that also takes fragments of a full snapshot (``"f"``).

        Returns ``(snapshot seq, entities)``, or None for a fragment that does not
        complete its snapshot yet. A fragmented snapshot's seq is its first
        fragment's packet sequence (what deltas name as their baseline).
        """
        if type(payload) is dict and "f" in payload:
            checked = _check_payload(payload, self._limits)
            index, count = check_fragment(checked["f"])
            merged = self._fragments.add(seq, index, count, checked["e"])
            if merged is None:
                return None
            frame_seq = (seq - index) & SEQ_MASK
            result = self._copies.build(merged)
            self._ring.insert(frame_seq, merged)
            return frame_seq, result
        return seq, self.decode(seq, payload)

    def decode(self, seq: int, payload: object) -> dict[EntityId, dict[str, Any]]:
        """Full entities of the snapshot sent as packet ``seq`` (a fresh, mutable copy).

        Raises :class:`DecodeError` for a malformed payload or one over the limits,
        and :class:`DeltaBaselineMissing` when the baseline is not held (then call
        ``ReliabilityEndpoint.discard_received(seq)`` so it is not acked).
        """
        if type(seq) is not int or not 0 <= seq <= SEQ_MASK:
            raise DecodeError(f"snapshot seq must be an int in 0..65535, got {seq!r}")
        checked = _check_payload(payload, self._limits)
        if "f" in checked:
            raise DecodeError("a snapshot fragment: use receive()")
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
        # One pass copies the state for the game and measures it against the limits
        # (and checks quantized fields) before anything is stored.
        result = self._copies.build(state)
        self._ring.insert(seq, state)
        return result

    def has(self, seq: int) -> bool:
        """True if the snapshot of ``seq`` is held (usable as a baseline)."""
        return seq in self._ring

    def retained(self) -> list[tuple[int, dict[EntityId, dict[str, Any]]]]:
        """``(seq, state)`` of every held snapshot, oldest first, in wire form.

        The ring's own dicts, shared between snapshots: read them, never mutate
        them. For measuring what a receiver holds (tests, memory accounting).
        """
        return list(self._ring.items())

    def reset(self) -> None:
        self._ring.clear()
        self._fragments.reset()
        self._copies.reset()

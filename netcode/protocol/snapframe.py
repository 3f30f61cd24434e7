"""One tick's snapshot, encoded once for every peer: the host's snapshot pipeline.

PURE. A host sending one world to N peers used to validate, quantize and
encode it N times. A :class:`SnapshotFrame` is the world validated and
quantized once (:meth:`SnapshotEncoder.frame`); each peer's
:class:`~netcode.protocol.snapshot.SnapshotSender` then asks it for the bytes
of a delta against that peer's baseline, and peers that acked the same tick
share one encoding: only the baseline sequence (``"b"``) differs, and it is
spliced in front of the cached bytes (a msgpack map is its pairs back to
back, so the result is byte-identical to encoding the whole dict).

Full snapshots larger than one SCTP chunk are cut into *fragments* (payload
key ``"f": [index, count]``, docs/STATE_SYNC.md 4.7): each a full snapshot of
some of the entities, sent as consecutive packets. The receiver assembles
them (:class:`FragmentAssembler`); the sender uses the frame as a baseline
only once every fragment was acked.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

import msgpack

from ..config import Limits
from ..errors import DecodeError, EncodeError
from .sequence import SEQ_MASK

__all__ = [
    "FRAGMENT_OVERHEAD",
    "MAX_FRAGMENTS",
    "FragmentAssembler",
    "SnapshotFrame",
    "check_fragment",
    "map_header",
]

# Most fragments one snapshot may be cut into (max_snapshot_bytes / ~1.1 KB < 64).
MAX_FRAGMENTS: Final = 128
# Envelope + payload bytes around a fragment's entities, worst case: the stamped
# SNAPSHOT header (19), the payload map header (1), "e" (2) + map32 header (5),
# "f" (2) + [u8, u8] (5).
FRAGMENT_OVERHEAD: Final = 34
# Partial fragmented snapshots a receiver keeps at once (the newest win).
_MAX_PARTIAL: Final = 2
_KEY_B: Final = msgpack.packb("b")
_KEY_E: Final = msgpack.packb("e")
_KEY_F: Final = msgpack.packb("f")
_KEY_R: Final = msgpack.packb("r")
_KEY_X: Final = msgpack.packb("x")

Wire = dict[Any, dict[str, Any]]


def map_header(n: int) -> bytes:
    """The msgpack header of a map with ``n`` pairs."""
    if n < 16:
        return bytes((0x80 | n,))
    if n < 0x10000:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


class SnapshotFrame:
    """A world in wire form (validated, quantized) and its encodings, cached per baseline.

    Immutable once built: its ``state`` is what every peer's ring stores as the
    baseline for that tick, shared, never copied.
    """

    __slots__ = ("_bodies", "_entity_blobs", "_full", "_pack", "_relative", "state")

    def __init__(self, state: Wire, relative: Collection[str]) -> None:
        self.state = state
        self._relative = relative
        # id(baseline) -> (baseline, pairs, body): the baseline is held so its id
        # cannot be reused by another dict while the frame lives (one tick).
        self._bodies: dict[int, tuple[Wire, int, bytes]] = {}
        self._entity_blobs: list[bytes] | None = None
        self._full: tuple[int, list[bytes]] | None = None  # (max_part_bytes, parts)
        # packb() would allocate a 256 KiB buffer per call. A frame is encoded by one
        # thread at a time (the session's loop), so it can own a small packer.
        self._pack = msgpack.Packer(buf_size=1024, use_bin_type=True).pack

    def delta(self, baseline: Wire, base_seq: int) -> bytes:
        """The packed delta payload from ``baseline`` (sent as ``base_seq``) to this frame."""
        hit = self._bodies.get(id(baseline))
        if hit is None or hit[0] is not baseline:
            hit = (baseline, *self._delta_body(baseline))
            self._bodies[id(baseline)] = hit
        _, pairs, body = hit
        return b"".join((map_header(pairs + 1), _KEY_B, self._pack(base_seq & SEQ_MASK), body))

    def _delta_body(self, baseline: Wire) -> tuple[int, bytes]:
        from .snapshot import encode_delta  # one module each way: snapshot imports us

        payload = encode_delta(baseline, self.state, 0, self._relative)
        del payload["b"]
        parts = [_KEY_E, self._pack(payload["e"])]
        if "r" in payload:
            parts += (_KEY_R, self._pack(payload["r"]))
        if "x" in payload:
            parts += (_KEY_X, self._pack(payload["x"]))
        return len(payload), b"".join(parts)

    def full(self, max_part_bytes: int) -> list[bytes]:
        """The packed full payload, or its fragments if it exceeds ``max_part_bytes``.

        One part is exactly ``packb({"e": state})`` (wire v1); more carry
        ``"f": [index, count]`` and split the entities so each part's entities
        take at most ``max_part_bytes - FRAGMENT_OVERHEAD`` bytes (an entity
        bigger than that travels alone).
        """
        if self._full is not None and self._full[0] == max_part_bytes:
            return self._full[1]
        parts = self._full_parts(max_part_bytes)
        self._full = (max_part_bytes, parts)
        return parts

    def _full_parts(self, max_part_bytes: int) -> list[bytes]:
        blobs = self._blobs()
        total = sum(map(len, blobs))
        budget = max(1, max_part_bytes - FRAGMENT_OVERHEAD)
        if total + FRAGMENT_OVERHEAD <= max_part_bytes or len(blobs) < 2:
            return [b"".join((b"\x81", _KEY_E, map_header(len(blobs)), *blobs))]
        groups: list[list[bytes]] = [[]]
        size = 0
        for blob in blobs:
            if groups[-1] and size + len(blob) > budget:
                groups.append([])
                size = 0
            groups[-1].append(blob)
            size += len(blob)
        if len(groups) > MAX_FRAGMENTS:
            raise EncodeError(f"snapshot needs {len(groups)} fragments, more than {MAX_FRAGMENTS}")
        count = len(groups)
        return [
            b"".join((b"\x82", _KEY_E, map_header(len(g)), *g, _KEY_F, self._pack([i, count])))
            for i, g in enumerate(groups)
        ]

    def _blobs(self) -> list[bytes]:
        if self._entity_blobs is None:
            self._entity_blobs = [self._pack(eid) + self._pack(f) for eid, f in self.state.items()]
        return self._entity_blobs


class _Partial:
    __slots__ = ("count", "entities", "fields", "parts")

    def __init__(self, count: int) -> None:
        self.count = count
        self.parts: dict[int, dict[Any, dict[str, Any]]] = {}
        self.entities = 0
        self.fields = 0


class FragmentAssembler:
    """Collects the fragments of full snapshots; bounded by ``limits`` and two frames."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._partial: dict[int, _Partial] = {}

    def add(self, seq: int, index: int, count: int, entities: Mapping[Any, Any]) -> Wire | None:
        """Add fragment ``index`` of ``count`` (received as packet ``seq``).

        Returns the merged wire-form state once all fragments arrived (it is the
        snapshot of packet ``(seq - index) mod 2**16``, the frame's first), else None.
        Raises :class:`DecodeError` for fragments that disagree or exceed the limits
        (the partial snapshot is dropped).
        """
        frame_seq = (seq - index) & SEQ_MASK
        partial = self._partial.get(frame_seq)
        if partial is None:
            partial = self._partial[frame_seq] = _Partial(count)
            while len(self._partial) > _MAX_PARTIAL:
                del self._partial[next(iter(self._partial))]  # the oldest gives way
        if partial.count != count or index in partial.parts:
            del self._partial[frame_seq]
            raise DecodeError(f"snapshot fragment {index}/{count} does not match its frame")
        partial.entities += len(entities)
        partial.fields += sum(len(f) for f in entities.values())
        limits = self._limits
        if (
            partial.entities > limits.max_snapshot_entities
            or partial.fields > limits.max_snapshot_fields
        ):
            del self._partial[frame_seq]
            raise DecodeError("fragmented snapshot over max_snapshot_entities/fields")
        partial.parts[index] = dict(entities)
        if len(partial.parts) < count:
            return None
        del self._partial[frame_seq]
        state: Wire = {}
        for i in range(count):
            for eid, fields in partial.parts[i].items():
                if eid in state:
                    raise DecodeError(f"snapshot fragments repeat entity {eid!r}")
                state[eid] = dict(fields)
        return state

    def reset(self) -> None:
        self._partial.clear()


def check_fragment(value: object) -> tuple[int, int]:
    """``[index, count]`` of a fragment payload's ``"f"``, range-checked."""
    if (
        type(value) is not list
        or len(value) != 2
        or type(value[0]) is not int
        or type(value[1]) is not int
        or not 2 <= value[1] <= MAX_FRAGMENTS
        or not 0 <= value[0] < value[1]
    ):
        raise DecodeError(f"snapshot 'f' must be [index, count] with 2 <= count <= {MAX_FRAGMENTS}")
    return value[0], value[1]

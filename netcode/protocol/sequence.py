"""16-bit wrapping sequence numbers, a sequence-indexed ring buffer and ack bitfields.

Pure: no I/O, no clock. This follows Glenn Fiedler's ``reliable`` model
(``reliable.c``: ``reliable_sequence_greater_than``, ``reliable_sequence_buffer_*``,
``reliable_sequence_buffer_generate_ack_bits``):

* a sequence number is a 16-bit counter that wraps from 65535 to 0, so "newer"
  means "ahead by less than half the space" (:func:`seq_greater_than`);
* a :class:`SequenceBuffer` is a ring indexed by ``seq % size`` that also stores
  which sequence occupies each slot, so an entry from an older lap never
  masquerades as a newer one;
* an ack header is ``(ack, ack_bits)``: ``ack`` is the newest sequence received,
  bit ``i`` of ``ack_bits`` is set when sequence ``ack - i`` (mod 2**16) was
  received, so bit 0 is ``ack`` itself and ``ack_bits == 0`` means "nothing".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = [
    "ACK_BITS",
    "SEQ_HALF",
    "SEQ_MASK",
    "SEQ_MODULUS",
    "SequenceBuffer",
    "ack_bits_contains",
    "generate_ack_bits",
    "iter_acked",
    "seq_add",
    "seq_diff",
    "seq_greater_than",
    "seq_less_than",
]

SEQ_MODULUS = 1 << 16
SEQ_MASK = SEQ_MODULUS - 1
SEQ_HALF = SEQ_MODULUS // 2
ACK_BITS = 32

T = TypeVar("T")


def seq_greater_than(a: int, b: int) -> bool:
    """True if ``a`` is newer than ``b`` in 16-bit wrapping arithmetic.

    ``a`` is newer when it is ahead of ``b`` by 1..32767 (mod 2**16). At the
    exact half-space distance (32768) neither is newer than the other, as in
    reliable.c; the relation is antisymmetric everywhere and total except for
    that one ambiguous distance, which peers never reach in practice (ring
    buffers and ack windows are far smaller).
    """
    return 0 < ((a - b) & SEQ_MASK) < SEQ_HALF


def seq_less_than(a: int, b: int) -> bool:
    """True if ``a`` is older than ``b`` (the mirror of :func:`seq_greater_than`)."""
    return seq_greater_than(b, a)


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in -32768..32767, accounting for wraparound.

    ``seq_diff(a, b) > 0`` exactly when ``seq_greater_than(a, b)``.
    """
    d = (a - b) & SEQ_MASK
    return d - SEQ_MODULUS if d >= SEQ_HALF else d


def seq_add(a: int, n: int) -> int:
    """``a + n`` wrapped into 0..65535 (``n`` may be negative)."""
    return (a + n) & SEQ_MASK


class SequenceBuffer(Generic[T]):
    """A ring of ``size`` entries indexed by ``seq % size``.

    Why a ring and not a dict: constant memory per peer, O(1) lookups, and
    entries older than ``size`` sequences behind the newest fall out by
    themselves. Each slot remembers its sequence so a lookup of an old
    sequence that shares a slot with a newer one misses instead of returning
    the wrong entry. ``size`` must divide 65536 so slots stay consistent across
    the 65535 -> 0 wrap.
    """

    __slots__ = ("_newest", "_seqs", "_size", "_values")

    def __init__(self, size: int) -> None:
        if size <= 0 or SEQ_MODULUS % size != 0:
            raise ValueError(f"size must be a power of two dividing 65536, got {size}")
        self._size = size
        self._seqs: list[int | None] = [None] * size
        self._values: list[T | None] = [None] * size
        self._newest: int | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def newest(self) -> int | None:
        """The newest sequence ever inserted, or None if nothing was."""
        return self._newest

    def is_too_old(self, seq: int) -> bool:
        """True if ``seq`` is ``size`` or more behind the newest: it has no slot."""
        return self._newest is not None and seq_diff(self._newest, seq) >= self._size

    def insert(self, seq: int, value: T) -> bool:
        """Store ``value`` at ``seq``; False (nothing stored) if ``seq`` is too old.

        Moving the newest sequence forward clears the slots of the skipped
        sequences, so an entry left over from the previous lap is never read
        back as one of them.
        """
        seq &= SEQ_MASK
        newest = self._newest
        if newest is None:
            self._newest = seq
        elif seq == (newest + 1) & SEQ_MASK:
            # The common case (one step forward): the only slot to clear is the one
            # written just below, so skip the range walk.
            self._newest = seq
        elif seq_greater_than(seq, newest):
            self._clear_range(seq_add(newest, 1), seq)
            self._newest = seq
        elif seq_diff(newest, seq) >= self._size:
            return False  # too old: no slot
        idx = seq % self._size
        self._seqs[idx] = seq
        self._values[idx] = value
        return True

    def _clear_range(self, first: int, last: int) -> None:
        """Clear the slots of sequences ``first .. last`` (inclusive, wrapping)."""
        count = min(seq_diff(last, first) + 1, self._size)
        for i in range(count):
            idx = (first + i) % self._size
            self._seqs[idx] = None
            self._values[idx] = None

    def get(self, seq: int) -> T | None:
        """The value stored at ``seq``, or None if absent or overwritten."""
        idx = (seq & SEQ_MASK) % self._size
        if self._seqs[idx] != (seq & SEQ_MASK):
            return None
        return self._values[idx]

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        return self._seqs[(seq & SEQ_MASK) % self._size] == (seq & SEQ_MASK)

    def remove(self, seq: int) -> None:
        """Forget ``seq`` if present (the newest marker does not move back)."""
        idx = (seq & SEQ_MASK) % self._size
        if self._seqs[idx] == (seq & SEQ_MASK):
            self._seqs[idx] = None
            self._values[idx] = None

    def items(self) -> Iterator[tuple[int, T]]:
        """Present entries, oldest first."""
        if self._newest is None:
            return
        for back in range(self._size - 1, -1, -1):
            seq = seq_add(self._newest, -back)
            idx = seq % self._size
            if self._seqs[idx] == seq:
                yield seq, self._values[idx]  # type: ignore[misc]

    def clear(self) -> None:
        self._seqs = [None] * self._size
        self._values = [None] * self._size
        self._newest = None


def generate_ack_bits(received: SequenceBuffer[T]) -> tuple[int, int]:
    """``(ack, ack_bits)`` describing the sequences present in ``received``.

    ``ack`` is the newest sequence inserted (0 if none) and bit ``i`` is set
    when ``ack - i`` is present. A sequence removed after insertion (see
    :meth:`SequenceBuffer.remove`) is not acked, which is how a receiver
    withholds the ack of a packet it could not use.
    """
    newest = received.newest
    if newest is None:
        return 0, 0
    bits = 0
    for i in range(ACK_BITS):
        if seq_add(newest, -i) in received:
            bits |= 1 << i
    return newest, bits


def ack_bits_contains(ack: int, ack_bits: int, seq: int) -> bool:
    """True if the header ``(ack, ack_bits)`` reports ``seq`` as received."""
    back = (ack - seq) & SEQ_MASK
    return back < ACK_BITS and bool(ack_bits >> back & 1)


def iter_acked(ack: int, ack_bits: int) -> Iterator[int]:
    """The sequences an ack header reports as received, newest first."""
    for i in range(ACK_BITS):
        if ack_bits >> i & 1:
            yield seq_add(ack, -i)

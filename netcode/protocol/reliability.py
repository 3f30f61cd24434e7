"""Per-peer packet header, acks and link statistics (RTT, jitter, loss, kbps).

Pure: no I/O; every method takes the current time ``now`` (seconds, any
monotonic clock) as a parameter. One :class:`ReliabilityEndpoint` per peer per
unreliable channel. The model is Glenn Fiedler's ``reliable``: every outgoing
packet carries ``(seq, ack, ack_bits)``; acks ride on normal traffic, so there
are no ack packets and no retransmissions here. What the endpoint gives the
layers above:

* ``receive()`` says whether a packet is *new* (newer than every packet
  accepted so far) so stale state never overwrites newer state;
* ``take_acked()`` lists our packets the peer has confirmed, which is what
  delta compression needs to choose a baseline;
* ``stats()`` gives RTT, jitter, loss and bandwidth, which no WebRTC game
  library exposes.

An ack means "received **and accepted as new**": a duplicate or a packet
older than the newest accepted is dropped (counted in ``stale_drops``) and not
acked, because its payload was never used; a packet whose payload turned out to
be unusable can have its ack withdrawn with :meth:`ReliabilityEndpoint.discard_received`.
That keeps a delta sender from choosing a baseline the receiver never decoded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigError, DecodeError
from .sequence import ACK_BITS, SEQ_HALF, SEQ_MASK, SequenceBuffer

__all__ = ["HeaderFields", "PacketHeader", "PeerStats", "ReliabilityEndpoint"]

_U32 = (1 << 32) - 1


class HeaderFields(Protocol):
    """Anything with validated ``seq``/``ack``/``ack_bits`` (a :class:`PacketHeader`, or a
    decoded ``wire.State``/``Snapshot``/``Ack``), so the receive path need not copy them."""

    @property
    def seq(self) -> int: ...

    @property
    def ack(self) -> int: ...

    @property
    def ack_bits(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """The header of every state packet: our sequence and what we received.

    ``seq``: this packet's 16-bit sequence. ``ack``: the newest sequence we
    accepted from the peer. ``ack_bits``: bit ``i`` set when we accepted
    ``ack - i`` (mod 2**16); bit 0 is ``ack`` itself, so ``ack_bits == 0``
    means "nothing accepted yet". Wire form: ``[seq, ack, ack_bits]``.
    """

    seq: int
    ack: int
    ack_bits: int

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`DecodeError` if a field is out of range (headers come off the wire)."""
        seq, ack, bits = self.seq, self.ack, self.ack_bits
        if (
            type(seq) is int
            and type(ack) is int
            and type(bits) is int
            and 0 <= seq <= SEQ_MASK
            and 0 <= ack <= SEQ_MASK
            and 0 <= bits <= _U32
        ):
            return  # the common case in one expression; the loop below names the bad field
        for name, value, top in (
            ("seq", self.seq, SEQ_MASK),
            ("ack", self.ack, SEQ_MASK),
            ("ack_bits", self.ack_bits, _U32),
        ):
            if type(value) is not int or not 0 <= value <= top:
                raise DecodeError(f"packet header {name} must be an int in 0..{top}, got {value!r}")

    def serialize(self) -> list[int]:
        """The msgpack-able wire form ``[seq, ack, ack_bits]``."""
        return [self.seq, self.ack, self.ack_bits]

    @classmethod
    def parse(cls, obj: object) -> PacketHeader:
        """Inverse of :meth:`serialize`; raises :class:`DecodeError` on anything else."""
        if not isinstance(obj, (list, tuple)) or len(obj) != 3:
            raise DecodeError(f"packet header must be a 3-element array, got {obj!r:.80}")
        return cls(obj[0], obj[1], obj[2])


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerStats:
    """A snapshot of one peer link's statistics (all zero until traffic flows).

    ``rtt_ms``: smoothed round-trip time (RFC 6298 SRTT, gain 1/8).
    ``jitter_ms``: RFC 3550 section 6.4.1 style mean deviation of successive RTT samples
    (gain 1/16). ``loss``: fraction 0..1 of our packets, old enough to have been
    acked, that were not. ``kbps_*``: payload bits per second over the last
    second. ``stale_drops``: duplicate or out-of-date packets we dropped.
    ``state_drops`` / ``bad_packets``: filled by the session (outgoing state
    dropped by backpressure / incoming packets that failed to decode).
    ``rate_limited``: incoming packets dropped over the peer's receive budget;
    ``pings_ignored``: PINGs not answered (over ``pings_answered_per_s``);
    ``unmatched_pongs``: PONGs that echo no PING we sent (ignored for RTT).
    """

    rtt_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    packets_sent: int = 0
    packets_received: int = 0
    packets_acked: int = 0
    kbps_sent: float = 0.0
    kbps_received: float = 0.0
    stale_drops: int = 0
    state_drops: int = 0
    bad_packets: int = 0
    rate_limited: int = 0
    pings_ignored: int = 0
    unmatched_pongs: int = 0


class _Sent:
    """Bookkeeping for one outgoing packet (mutable: ``acked`` flips once)."""

    __slots__ = ("acked", "seq", "size", "time")

    def __init__(self, seq: int, time: float, size: int) -> None:
        self.seq = seq
        self.time = time
        self.size = size
        self.acked = False


class _RateWindow:
    """Bytes over a sliding time window, for kbps."""

    __slots__ = ("_events", "_total", "_window")

    def __init__(self, window: float) -> None:
        self._window = window
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, now: float, size: int) -> None:
        self._events.append((now, size))
        self._total += size
        self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = now - self._window
        while self._events and self._events[0][0] <= horizon:
            self._total -= self._events.popleft()[1]

    def kbps(self, now: float) -> float:
        self._prune(now)
        return self._total * 8 / 1000.0 / self._window


class ReliabilityEndpoint:
    """Stamps outgoing packets, processes incoming headers, measures the link.

    Typical use per packet::

        hdr = ep.next_header(now, size)          # before sending
        is_new = ep.receive(hdr_in, now, size)   # on every received header
        for seq in ep.take_acked(): sender.on_ack(seq)

    Loss is measured over packets sent between ``now - ack_timeout -
    loss_window_s`` and ``now - ack_timeout`` where ``ack_timeout =
    max(min_ack_timeout_s, 2 * rtt + 4 * jitter)``: younger packets may still
    be acked, older ones are forgotten. A packet acked after it was counted as
    lost stops counting on the next call. The peer must send to us at least
    once per 32 of our packets, otherwise some acks fall out of ``ack_bits``
    and those packets count as lost.
    """

    def __init__(
        self,
        *,
        # Limits
        sent_buffer_size: int = 1024,
        received_buffer_size: int = 256,
        # Estimators
        rtt_gain: float = 1 / 8,
        jitter_gain: float = 1 / 16,
        # Windows
        loss_window_s: float = 2.0,
        min_ack_timeout_s: float = 0.25,
        rate_window_s: float = 1.0,
        # RTT source: time acks (reliable.c's way) or only take add_rtt_sample() samples.
        # An ack is held until the peer next sends, so with a peer that sends rarely
        # (only heartbeats) ack timing overstates RTT by up to its send interval.
        # Sessions send immediate heartbeat ping/pong and turn this off.
        rtt_from_acks: bool = True,
        # Testing the 65535 -> 0 wrap without sending 65536 packets first
        initial_seq: int = 0,
    ) -> None:
        if not 0.0 < rtt_gain <= 1.0 or not 0.0 < jitter_gain <= 1.0:
            raise ConfigError("rtt_gain/jitter_gain: must be in (0, 1]")
        if loss_window_s <= 0 or min_ack_timeout_s <= 0 or rate_window_s <= 0:
            raise ConfigError("loss_window_s/min_ack_timeout_s/rate_window_s: must be > 0")
        if received_buffer_size < ACK_BITS:
            raise ConfigError(f"received_buffer_size: must be >= {ACK_BITS}")
        if not 0 <= initial_seq <= SEQ_MASK:
            raise ConfigError("initial_seq: must be in 0..65535")
        self._next_seq = initial_seq
        self._sent: SequenceBuffer[_Sent] = SequenceBuffer(sent_buffer_size)
        # Bit k set: our packet next_seq - 1 - k was sent and is not acked yet
        # (k < sent_buffer_size, exactly the records still in self._sent). Lets an
        # incoming header touch only the records it newly acks instead of 32 lookups.
        self._unacked = 0
        self._unacked_width = (1 << sent_buffer_size) - 1
        self._sent_log: deque[_Sent] = deque()
        # What we accepted, kept incrementally as the header we send: the newest
        # accepted sequence and bit i for newest - i. Equals
        # sequence.generate_ack_bits() over a SequenceBuffer of accepted packets
        # (the property tests check it against that reference), without its
        # 32-step loop per packet. Only the newest 32 matter for acks, so
        # received_buffer_size just has to be >= 32 (kept for compatibility).
        self._recv_newest: int | None = None
        self._recv_bits = 0
        self._acked: list[int] = []
        self._rtt_gain = rtt_gain
        self._jitter_gain = jitter_gain
        self._loss_window = loss_window_s
        self._min_ack_timeout = min_ack_timeout_s
        self._rtt_from_acks = rtt_from_acks
        self._srtt: float | None = None
        self._last_rtt_sample: float | None = None
        self._jitter = 0.0
        self._ack_timeout = min_ack_timeout_s
        self._rate_out = _RateWindow(rate_window_s)
        self._rate_in = _RateWindow(rate_window_s)
        self._packets_sent = 0
        self._packets_received = 0
        self._packets_acked = 0
        self._stale_drops = 0
        self._state_drops = 0

    # -- outgoing ---------------------------------------------------------

    def next_header(self, now: float, size: int = 0) -> PacketHeader:
        """Stamp the next outgoing packet (``size`` bytes) and record when it left."""
        seq = self._next_seq
        self._next_seq = (seq + 1) & SEQ_MASK
        record = _Sent(seq, now, size)
        self._sent.insert(seq, record)
        self._unacked = ((self._unacked << 1) | 1) & self._unacked_width
        self._sent_log.append(record)
        self._prune_sent_log(now)
        self._packets_sent += 1
        self._rate_out.add(now, size)
        ack = self._recv_newest
        return PacketHeader(seq, 0, 0) if ack is None else PacketHeader(seq, ack, self._recv_bits)

    @property
    def next_seq(self) -> int:
        """The sequence the next :meth:`next_header` call will use."""
        return self._next_seq

    # -- incoming ---------------------------------------------------------

    def receive(self, header: HeaderFields, now: float, size: int = 0) -> bool:
        """Process an incoming header; True if the packet is new, False if stale.

        Acks are processed either way (a late packet still carries true acks).
        A duplicate or a packet not newer than the newest accepted returns
        False, is counted in ``stale_drops`` and is not acked. ``header``'s
        fields must be in range (:class:`PacketHeader` and the wire messages
        check them on construction).
        """
        self._packets_received += 1
        self._rate_in.add(now, size)
        self._process_acks(header.ack, header.ack_bits, now)
        seq, newest = header.seq, self._recv_newest
        if newest is None:
            self._recv_bits = 1
        else:
            ahead = (seq - newest) & SEQ_MASK
            if not 0 < ahead < SEQ_HALF:  # not newer (seq_greater_than)
                self._stale_drops += 1
                return False
            self._recv_bits = ((self._recv_bits << ahead) | 1) & _U32 if ahead < ACK_BITS else 1
        self._recv_newest = seq
        return True

    def discard_received(self, seq: int) -> None:
        """Withdraw the ack of a packet accepted by :meth:`receive` whose payload was unusable.

        E.g. a delta snapshot whose baseline is missing: acking it would let
        the sender use it as a baseline we do not hold. Call it before the
        next :meth:`next_header`. The newest-accepted marker does not move back.
        """
        if self._recv_newest is not None:
            back = (self._recv_newest - seq) & SEQ_MASK
            if back < ACK_BITS:
                self._recv_bits &= ~(1 << back)

    def _process_acks(self, ack: int, ack_bits: int, now: float) -> None:
        """Mark our packets the header acks, newest first, each once.

        ``self._unacked`` shifted to line up with ``ack`` and ANDed with
        ``ack_bits`` leaves exactly the packets newly acked: a sequence we never
        sent, one already acked, or one too old for the sent buffer has no bit.
        """
        behind = (self._next_seq - 1 - ack) & SEQ_MASK  # how far ack is behind our newest
        if behind < SEQ_HALF:
            fresh = (self._unacked >> behind) & ack_bits
            if not fresh:
                return
            self._unacked &= ~(fresh << behind)
        else:  # ack ahead of anything we sent (a bogus header): only its older bits can match
            ahead = SEQ_MASK + 1 - behind
            fresh = (self._unacked << ahead) & ack_bits if ahead < ACK_BITS else 0
            if not fresh:
                return
            self._unacked &= ~(fresh >> ahead)
        while fresh:
            low = fresh & -fresh
            back = low.bit_length() - 1
            fresh ^= low
            seq = (ack - back) & SEQ_MASK
            record = self._sent.get(seq)
            if record is None:  # pragma: no cover - the mask mirrors the buffer
                continue
            record.acked = True
            self._packets_acked += 1
            self._acked.append(seq)
            if back == 0 and self._rtt_from_acks:
                # Only the header's newest ack gives an RTT sample: older bits
                # were usually confirmed late because the peer had nothing to
                # send, which would inflate RTT by the peer's send interval.
                self.add_rtt_sample(now - record.time, now)

    def take_acked(self) -> list[int]:
        """Our sequences newly acked since the last call, in the order learned."""
        acked, self._acked = self._acked, []
        return acked

    def add_rtt_sample(self, rtt_s: float, now: float) -> None:
        """Feed an RTT measurement (from an ack, or from a heartbeat ping/pong)."""
        del now  # part of the signature so a future estimator can age samples
        rtt_s = max(0.0, rtt_s)
        if self._srtt is None:
            self._srtt = rtt_s
        else:
            self._srtt += self._rtt_gain * (rtt_s - self._srtt)
        if self._last_rtt_sample is not None:
            deviation = abs(rtt_s - self._last_rtt_sample)
            self._jitter += self._jitter_gain * (deviation - self._jitter)
        self._last_rtt_sample = rtt_s
        self._ack_timeout = max(self._min_ack_timeout, 2.0 * self._srtt + 4.0 * self._jitter)

    # -- counters filled by the session ----------------------------------

    def count_state_drop(self) -> None:
        """An outgoing state packet was dropped before sending (backpressure)."""
        self._state_drops += 1

    # -- statistics -------------------------------------------------------

    @property
    def rtt(self) -> float | None:
        """Smoothed RTT in seconds, or None before the first sample."""
        return self._srtt

    def ack_timeout(self) -> float:
        """How long a sent packet may stay unacked before it counts as lost.

        ``max(min_ack_timeout_s, 2 * rtt + 4 * jitter)``, kept up to date by
        :meth:`add_rtt_sample` because every sent packet needs it.
        """
        return self._ack_timeout

    def _prune_sent_log(self, now: float) -> None:
        horizon = now - self._ack_timeout - self._loss_window
        log, limit = self._sent_log, self._sent.size
        while log and (log[0].time < horizon or len(log) > limit):
            log.popleft()

    def loss(self, now: float) -> float:
        """Fraction of packets in the loss window that were not acked (0 if none)."""
        self._prune_sent_log(now)
        cutoff = now - self.ack_timeout()
        total = lost = 0
        for record in self._sent_log:
            if record.time > cutoff:
                break
            total += 1
            lost += not record.acked
        return lost / total if total else 0.0

    def stats(self, now: float) -> PeerStats:
        """Everything at once, as a frozen :class:`PeerStats`."""
        return PeerStats(
            rtt_ms=(self._srtt or 0.0) * 1000.0,
            jitter_ms=self._jitter * 1000.0,
            loss=self.loss(now),
            packets_sent=self._packets_sent,
            packets_received=self._packets_received,
            packets_acked=self._packets_acked,
            kbps_sent=self._rate_out.kbps(now),
            kbps_received=self._rate_in.kbps(now),
            stale_drops=self._stale_drops,
            state_drops=self._state_drops,
        )

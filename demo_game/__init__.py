"""netcode's demo: a small host-authoritative arena game built on netcode's public API.

Run ``python -m demo_game`` (or ``make demo``). The pure parts (``sim``,
``bot``, ``host``, ``client``, ``messages``, ``stats``) need neither pygame nor
a network; ``app`` and ``loop`` wire them to a session and a window.
"""

from __future__ import annotations

__all__: list[str] = []

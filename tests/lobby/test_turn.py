"""TURN credentials in coturn's REST scheme, minted per peer by the lobby (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import IceServer, LobbyConfig
from netcode.errors import ConfigError
from netcode.lobby.messages import Ok, Welcome, parse_server, serialize
from netcode.lobby.states import Output
from netcode.lobby.turn import (
    ice_servers_for,
    mint_turn_credentials,
    turn_password,
    with_turn_credentials,
)

SECRET = "0123456789abcdef"
TURN = LobbyConfig(
    stun_urls=("stun:203.0.113.1:3478",),
    turn_urls=("turn:203.0.113.1:3478", "turn:203.0.113.1:3478?transport=tcp"),
    turn_secret=SECRET,
    turn_ttl_s=600,
    ice_servers=(IceServer(urls="stun:static.example:3478"),),
)


def test_password_matches_openssl_vector() -> None:
    # echo -n "1700000000:abc" | openssl dgst -binary -sha1 -hmac 0123456789abcdef | base64
    assert turn_password(SECRET, "1700000000:abc") == "uRdROQOyejTF/f2fKAuFZTukvnY="


def test_mint_names_expiry_and_peer() -> None:
    cred = mint_turn_credentials(SECRET, "peer1", 1_700_000_000.9, 600)
    assert cred.username == "1700000600:peer1"
    assert cred.expires_at == 1_700_000_600
    assert cred.credential == turn_password(SECRET, cred.username)
    with pytest.raises(ValueError):
        mint_turn_credentials("", "peer1", 0.0, 600)


@given(
    secret=st.text(min_size=1, max_size=64),
    peer=st.text(alphabet="abcdefghjkmnpqrstuvwxyz23456789", min_size=1, max_size=10),
    now=st.integers(min_value=0, max_value=2**40),
    ttl=st.integers(min_value=60, max_value=30 * 86_400),
)
def test_credential_is_hmac_sha1_of_username(secret: str, peer: str, now: int, ttl: int) -> None:
    cred = mint_turn_credentials(secret, peer, now, ttl)
    expiry, _, name = cred.username.partition(":")
    assert int(expiry) == now + ttl and name == peer
    mac = hmac.new(secret.encode(), cred.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(cred.credential) == mac


def test_ice_servers_order_stun_turn_static() -> None:
    servers = ice_servers_for(TURN, "p", 1000.0)
    assert [s.urls for s in servers] == [
        TURN.stun_urls,
        TURN.turn_urls,
        "stun:static.example:3478",
    ]
    assert servers[0].username is None
    assert servers[1].username == "1600:p"


def test_without_turn_only_static_servers() -> None:
    cfg = LobbyConfig(ice_servers=(IceServer(urls="stun:x:1"),))
    assert ice_servers_for(cfg, "p", 0.0) == cfg.ice_servers
    out: Output = [(1, Welcome(peer_id="p", ice_servers=cfg.ice_servers))]
    assert with_turn_credentials(out, cfg, 0.0) is out  # nothing to mint: unchanged


def test_every_welcome_gets_its_own_fresh_credentials() -> None:
    out: Output = [(1, Welcome(peer_id="aa")), (2, Ok(rid=None)), (3, Welcome(peer_id="bb"))]
    first = with_turn_credentials(out, TURN, 1000.0)
    later = with_turn_credentials(out, TURN, 2000.0)  # a reconnect: a new welcome later
    assert first[1] == out[1]
    users = [item.ice_servers[1].username for _, item in first if isinstance(item, Welcome)]
    assert users == ["1600:aa", "1600:bb"]
    again = later[0][1]
    assert isinstance(again, Welcome) and again.ice_servers[1].username == "2600:aa"
    # and the welcome still round-trips through the wire codec
    assert parse_server(serialize(again)) == again


def test_secret_stays_out_of_repr() -> None:
    assert SECRET not in repr(TURN)
    assert SECRET not in str(TURN)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"turn_urls": ("turn:x",)}, "turn_secret"),
        ({"turn_urls": ("turn:x",), "turn_secret": "short"}, "turn_secret"),
        ({"turn_urls": ("stun:x",), "turn_secret": SECRET}, "turn_urls"),
        ({"stun_urls": ("turn:x",)}, "stun_urls"),
        ({"turn_ttl_s": 10}, "turn_ttl_s"),
        ({"turn_ttl_s": True}, "turn_ttl_s"),
        ({"turn_secret": 5}, "turn_secret"),
    ],
)
def test_bad_turn_config_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        LobbyConfig(**kwargs)  # type: ignore[arg-type]

"""Built-in TLS: --certfile/--keyfile make the lobby wss:// and its HTTP routes https://."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netcode.config import LobbyConfig
from netcode.errors import ConfigError
from netcode.net.lobby_cli import cli_main
from netcode.net.lobby_server import serve_lobby
from tests.lobby.netutil import http_get, lobby, raw_client, recv_json


def self_signed(tmp: Path) -> tuple[Path, Path, bytes]:
    """A certificate for 127.0.0.1 signed by its own key: (cert, key, cert PEM as CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netcode test lobby")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp / "cert.pem").write_bytes(pem)
    (tmp / "key.pem").write_bytes(key_pem)
    return tmp / "cert.pem", tmp / "key.pem", pem


def client_context(ca: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.decode())


async def test_wss_and_https_with_a_self_signed_cert(tmp_path: Path) -> None:
    cert, key, ca = self_signed(tmp_path)
    async with lobby(certfile=str(cert), keyfile=str(key)) as server:
        assert server.url == f"wss://127.0.0.1:{server.port}"
        async with raw_client(server.url, ssl=client_context(ca)) as ws:
            welcome = await recv_json(ws)
            assert welcome["type"] == "welcome"
        tls = client_context(ca)
        status, _, body = await http_get("127.0.0.1", server.port, "/healthz", tls=tls)
        assert status == 200 and '"status": "ok"' in body
        status, _, _ = await http_get("127.0.0.1", server.port, "/metrics", tls=tls)
        assert status == 200
        # A client that does not trust the certificate gets no websocket.
        with pytest.raises(ssl.SSLCertVerificationError):
            async with raw_client(server.url, ssl=ssl.create_default_context()):
                pass


async def test_key_inside_certfile(tmp_path: Path) -> None:
    cert, key, ca = self_signed(tmp_path)
    both = tmp_path / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    async with (
        lobby(certfile=str(both)) as server,
        raw_client(server.url, ssl=client_context(ca)) as ws,
    ):
        assert (await recv_json(ws))["type"] == "welcome"


async def test_unloadable_cert_is_a_config_error(tmp_path: Path) -> None:
    cert, _, _ = self_signed(tmp_path)
    with pytest.raises(ConfigError, match="certfile"):
        await serve_lobby("127.0.0.1", 0, LobbyConfig(certfile=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match="certfile"):  # no key anywhere
        await serve_lobby("127.0.0.1", 0, LobbyConfig(certfile=str(cert)))
    with pytest.raises(ConfigError, match="keyfile"):
        LobbyConfig(keyfile=str(cert))


def test_cli_bad_cert_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.pem")
    assert cli_main(["--port", "0", "--certfile", missing, "--log-level", "error"]) == 2
    err = capsys.readouterr().err
    assert "certfile" in err and "Traceback" not in err

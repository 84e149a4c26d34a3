"""mqtts://: TLS to the broker (mosquitto with trustme certificates), the broker's
certificate verified, client certificates; from MqttServer and from the CLI."""

from __future__ import annotations

import logging
import time

import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")
trustme = pytest.importorskip("trustme")

from cymongoose import TlsOpts  # noqa: E402
from mqttkit import DEADLINE_S, Client, Mosquitto, Running, echo_app  # noqa: E402
from test_mqtt_cli import Cli  # noqa: E402


@pytest.fixture
def pki(tmp_path):
    """(ca, paths): a CA, and PEM files ca.pem, broker.pem/.key, client.pem/.key."""
    ca = trustme.CA()
    paths = {"ca": tmp_path / "ca.pem"}
    ca.cert_pem.write_to_path(paths["ca"])
    for name, ident in (("broker", "127.0.0.1"), ("client", "client@example.com")):
        cert = ca.issue_cert(ident)
        paths[name] = tmp_path / f"{name}.pem"
        paths[name + "_key"] = tmp_path / f"{name}.key"
        cert.cert_chain_pems[0].write_to_path(paths[name])
        cert.private_key_pem.write_to_path(paths[name + "_key"])
    return ca, paths


def _broker(tmp_path, paths, require_certificate=False) -> Mosquitto:
    return Mosquitto(tmp_path, tls=(paths["ca"], paths["broker"], paths["broker_key"],
                                    require_certificate))


def test_mqtts_round_trip_with_the_ca(tmp_path, pki):
    _, paths = pki
    broker = _broker(tmp_path, paths)
    ca = paths["ca"].read_bytes()
    events: list = []
    server = Running(echo_app(events), broker.url, tls=TlsOpts(ca=ca))
    client = Client(broker.url, tls=TlsOpts(ca=ca))
    try:
        client.subscribed()
        client.conn.mqtt_pub("in/t/x", b"secret", qos=1)
        client.wait_for(lambda: ("out/in/t/x", b"secret") in client.received, "the echo")
    finally:
        server.stop()
        client.close()
        broker.stop()


def test_mqtts_refuses_an_unknown_broker_certificate_and_retries(tmp_path, pki, caplog):
    _, paths = pki
    broker = _broker(tmp_path, paths)
    # The system's CAs (the default) do not know trustme's.
    with caplog.at_level(logging.INFO, logger="cymongoose.asgi.mqtt"):
        server = Running(echo_app([]), broker.url, reconnect_min=0.1, reconnect_max=0.2)
        try:
            deadline = time.monotonic() + DEADLINE_S
            while caplog.text.count("TLS handshake") < 2:  # and it retries
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            assert not server.server.connected and server.thread.is_alive()
        finally:
            server.stop()
            broker.stop()


def test_cli_mqtts_with_a_client_certificate(tmp_path, pki):
    _, paths = pki
    broker = _broker(tmp_path, paths, require_certificate=True)
    cli = Cli(tmp_path, "--mqtt", broker.url, "--mqtt-ca-certs", str(paths["ca"]),
              "--mqtt-certfile", str(paths["client"]), "--mqtt-keyfile", str(paths["client_key"]))
    ca = paths["ca"].read_bytes()
    client = Client(broker.url, tls=TlsOpts(ca=ca, cert=paths["client"].read_bytes(),
                                            key=paths["client_key"].read_bytes()))
    try:
        cli.wait_log(f"Connected to MQTT broker {broker.url}")
        client.subscribed()
        client.conn.mqtt_pub("in/c", b"mtls", qos=1)
        client.wait_for(lambda: ("out/in/c", b"mtls") in client.received, "the echo")
        assert cli.stop() == 0
    finally:
        cli.stop()
        client.close()
        broker.stop()


def test_cli_mqtts_without_the_required_client_certificate_keeps_retrying(tmp_path, pki):
    _, paths = pki
    broker = _broker(tmp_path, paths, require_certificate=True)
    cli = Cli(tmp_path, "--mqtt", broker.url, "--mqtt-ca-certs", str(paths["ca"]))
    try:
        cli.wait_log("reconnecting in")
        assert "Connected to MQTT broker" not in cli.text()
        assert cli.stop() == 0
    finally:
        cli.stop()
        broker.stop()

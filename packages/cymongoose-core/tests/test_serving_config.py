"""`cymongoose.serving.config.ServerConfig`: defaults, validation, url, from_kwargs."""

import pytest
from cymongoose.serving.config import ServerConfig, default_threads


def test_defaults():
    config = ServerConfig()
    assert (config.host, config.port, config.fd) == ("127.0.0.1", 8000, None)
    assert config.keep_alive_timeout_s == 5.0 and config.graceful_timeout_s == 30.0
    assert config.max_header_count == 100 and config.max_header_bytes == 65536
    assert config.max_connections is None and config.max_body_size is None
    assert config.ws_max_size == 16 * 1024 * 1024 and config.lifespan == "auto"
    assert config.threads == default_threads() >= 1 and config.workers == 1
    assert config.url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"host": "0.0.0.0", "port": 80}, "http://0.0.0.0:80"),
        ({"host": "::1", "port": 9000}, "http://[::1]:9000"),
        ({"host": "::", "ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"}, "https://[::]:8000"),
        ({"host": "example.org", "port": 0}, "http://example.org:0"),
    ],
)
def test_url(fields, url):
    assert ServerConfig(**fields).url == url


@pytest.mark.parametrize(
    ("fields", "error", "names"),
    [
        ({"port": 65536}, ValueError, "port"),
        ({"port": -1}, ValueError, "port"),
        ({"port": "8000"}, TypeError, "port"),
        ({"port": True}, TypeError, "port"),
        ({"host": ""}, ValueError, "host"),
        ({"fd": -3}, ValueError, "fd"),
        ({"root_path": "api"}, ValueError, "root_path"),
        ({"proxy_headers": "yes"}, TypeError, "proxy_headers"),
        ({"forwarded_allow_ips": 5}, TypeError, "forwarded_allow_ips"),
        ({"log_level": "loud"}, ValueError, "log_level"),
        ({"keep_alive_timeout_s": 0}, ValueError, "keep_alive_timeout_s"),
        ({"graceful_timeout_s": -1}, ValueError, "graceful_timeout_s"),
        ({"max_connections": 0}, ValueError, "max_connections"),
        ({"max_header_count": 0}, ValueError, "max_header_count"),
        ({"max_header_count": 101}, ValueError, "max_header_count"),
        ({"max_header_bytes": 0}, ValueError, "max_header_bytes"),
        ({"max_body_size": -1}, ValueError, "max_body_size"),
        ({"ssl_certfile": "c.pem"}, ValueError, "ssl_keyfile"),
        ({"ssl_keyfile": "k.pem"}, ValueError, "ssl_certfile"),
        ({"ssl_ca_certs": "ca.pem"}, ValueError, "ssl_ca_certs"),
        ({"ssl_keyfile_password": "pw"}, ValueError, "ssl_keyfile_password needs ssl_keyfile"),
        ({"ssl_version": "TLSv1.1"}, ValueError, "ssl_version must be TLSv1.2 or TLSv1.3"),
        ({"ssl_version": 3}, ValueError, "TLS 1.0 and 1.1 are not offered"),
        ({"ssl_version": 1.2}, TypeError, "ssl_version"),
        ({"ssl_cert_reqs": 3}, ValueError, "ssl_cert_reqs"),
        ({"ssl_cert_reqs": 2, "ssl_certfile": "c", "ssl_keyfile": "k"}, ValueError,
         "ssl_cert_reqs=2 .*needs ssl_ca_certs"),
        ({"ssl_ciphers": 5}, TypeError, "ssl_ciphers"),
        ({"ws_max_size": 0}, ValueError, "ws_max_size"),
        ({"ws_ping_interval_s": 0}, ValueError, "ws_ping_interval_s"),
        ({"ws_ping_timeout_s": "1"}, TypeError, "ws_ping_timeout_s"),
        ({"lifespan": "maybe"}, ValueError, "lifespan"),
        ({"threads": -1}, ValueError, "threads"),
        ({"workers": 0}, ValueError, "workers"),
        ({"workers": 1.5}, TypeError, "workers"),
        ({"backlog": 0}, ValueError, r"backlog must be in 1\.\.65535, got 0"),
        ({"backlog": 65536}, ValueError, "backlog"),
        ({"backlog": "64"}, TypeError, "backlog"),
        ({"uds": ""}, ValueError, "uds must be a file system path"),
        ({"uds": 5}, TypeError, "uds"),
        ({"limit_max_requests": 0}, ValueError, "limit_max_requests"),
        ({"limit_max_requests": "9"}, TypeError, "limit_max_requests"),
        ({"limit_max_requests_jitter": -1}, ValueError, "limit_max_requests_jitter"),
        ({"server_header": 1}, TypeError, "server_header must be a bool"),
        ({"date_header": None}, TypeError, "date_header must be a bool"),
        ({"headers": "X-A: 1"}, TypeError, "headers must be a list"),
        ({"headers": ["X A: 1"]}, ValueError, "is not a token"),
        ({"headers": [("X-A", "1\n")]}, ValueError, "CR, LF or NUL"),
        ({"headers": [("X-A", 1)]}, TypeError, "headers entries"),
        ({"headers": ["X-A: 1"] * 15}, ValueError, "at most 14"),
    ],
)
def test_invalid_values_name_the_field(fields, error, names):
    with pytest.raises(error, match=names):
        ServerConfig(**fields)


def test_none_turns_off_optional_limits():
    config = ServerConfig(max_body_size=None, ws_ping_interval_s=None, ws_ping_timeout_s=None)
    assert config.ws_ping_interval_s is None and config.max_body_size is None


def test_forwarded_allow_ips_from_environment(monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1, 10.1.0.0/16")
    assert ServerConfig().forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16"]
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    assert ServerConfig().forwarded_allow_ips == ["127.0.0.1"]


def test_forwarded_allow_ips_str_or_list_normalised():
    assert ServerConfig(forwarded_allow_ips="*").forwarded_allow_ips == ["*"]
    assert ServerConfig(forwarded_allow_ips=[" ::1 ", ""]).forwarded_allow_ips == ["::1"]


def test_normalisation():
    config = ServerConfig(log_level="DEBUG", root_path="/api/")
    assert config.log_level == "debug" and config.root_path == "/api"


def test_from_kwargs_overrides_and_revalidates():
    base = ServerConfig(port=9000)
    assert ServerConfig.from_kwargs(base) is base
    changed = ServerConfig.from_kwargs(base, access_log=False)
    assert (changed.port, changed.access_log, base.access_log) == (9000, False, True)
    assert ServerConfig.from_kwargs(None, port=1).port == 1
    with pytest.raises(ValueError, match="port"):
        ServerConfig.from_kwargs(base, port=70000)


def test_from_kwargs_rejects_unknown_names():
    with pytest.raises(TypeError, match="keepalive"):
        ServerConfig.from_kwargs(None, keepalive=3)
    with pytest.raises(TypeError, match="config"):
        ServerConfig.from_kwargs({"port": 1})


@pytest.mark.parametrize("given, minimum", [
    (None, None), ("TLSv1.2", "TLSv1.2"), ("tlsv1.3", "TLSv1.3"), (" TLSv1.3 ", "TLSv1.3"),
    # uvicorn's --ssl-version numbers (ssl.PROTOCOL_*), as int and as CLI text
    (2, "TLSv1.2"), (17, "TLSv1.2"), ("17", "TLSv1.2"), (16, "TLSv1.2"), (5, "TLSv1.2"),
    (772, "TLSv1.3"),  # ssl.TLSVersion.TLSv1_3
])
def test_ssl_version_is_a_minimum_version(given, minimum):
    assert ServerConfig(ssl_version=given).ssl_version == minimum


@pytest.mark.parametrize(("config", "date", "pairs"), [
    ({}, True, [("Server", "cymongoose")]),
    ({"server_header": False, "date_header": False}, False, []),
    ({"headers": ["server: edge", "X-A: 1"]}, True, [("server", "edge"), ("X-A", "1")]),
    ({"headers": [("Date", "fixed")]}, False, [("Server", "cymongoose"), ("Date", "fixed")]),
])
def test_response_defaults(config, date, pairs):
    from cymongoose.serving.httprules import response_defaults

    assert response_defaults(ServerConfig(**config)) == {"date_header": date,
                                                         "default_headers": pairs}

"""The "running on" line names a TCP socket by URL and a Unix socket by its path."""

import socket

from cymongoose.serving.lifecycle import listen_url, socket_url


def test_tcp_socket_is_named_by_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert socket_url(sock, "https") == f"https://127.0.0.1:{port}"


def test_unix_socket_is_named_by_path(tmp_path):
    path = str(tmp_path / "app.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        assert socket_url(sock, "http") == f"unix socket {path}"
    assert listen_url("http", "", 0, path) == f"unix socket {path}"

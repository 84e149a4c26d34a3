"""`cymongoose.serving.listen` and `.tls`: why a server cannot listen or load its TLS files,
as exceptions whose one-line ``str()`` is what the CLIs print."""

import errno
import logging
import os
import shutil
import socket
import subprocess

import pytest
from cymongoose import TLS_LIBRARY, Manager, TlsOpts
from cymongoose.serving.config import ServerConfig
from cymongoose.serving.listen import (
    ListenError,
    bind_error,
    bind_unix,
    check_listen_fd,
    listen_http,
    unix_socket_path,
)
from cymongoose.serving.supervisor import bind_socket
from cymongoose.serving.tls import load_tls, log_connection_error


@pytest.fixture
def mgr():
    manager = Manager(lambda conn, ev, data: None)
    yield manager
    manager.close()


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_port_in_use_is_a_listen_error_with_errno_and_url(mgr, taken_port):
    url = f"http://127.0.0.1:{taken_port}"
    with pytest.raises(ListenError) as info:
        listen_http(mgr, url, None)
    exc = info.value
    assert exc.errno == errno.EADDRINUSE and exc.url == url == exc.filename
    assert str(exc) == (f"cannot listen on {url}: [Errno {errno.EADDRINUSE}] "
                        f"{os.strerror(errno.EADDRINUSE)}")
    assert isinstance(exc, OSError) and isinstance(exc.__cause__, RuntimeError)


def test_listen_error_is_still_caught_as_runtime_error_as_in_0_2(mgr, taken_port):
    with pytest.raises(RuntimeError):
        listen_http(mgr, f"http://127.0.0.1:{taken_port}", None)


def test_address_not_on_this_machine(mgr):
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never a local address. Nothing is sent.
    with pytest.raises(ListenError) as info:
        listen_http(mgr, "http://192.0.2.1:0", None)
    assert info.value.errno == errno.EADDRNOTAVAIL


def test_free_address_listens_and_bind_error_finds_nothing(mgr):
    conn = listen_http(mgr, "http://127.0.0.1:0", None)
    assert conn.local_addr[1] > 0
    assert bind_error("http://127.0.0.1:0") is None
    assert bind_error("not a url") is None


def test_bind_error_on_ipv6():
    try:
        holder = socket.socket(socket.AF_INET6)
        holder.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with holder:
        holder.listen()
        exc = bind_error(f"http://[::1]:{holder.getsockname()[1]}")
    assert exc is not None and exc.errno == errno.EADDRINUSE


def test_supervisor_bind_socket_raises_the_same_error(taken_port):
    with pytest.raises(ListenError) as info:
        bind_socket(ServerConfig(port=taken_port))
    assert info.value.errno == errno.EADDRINUSE
    assert f"127.0.0.1:{taken_port}" in str(info.value)


def listen_backlog(port):
    """``ss`` shows a listening socket's backlog in its Send-Q column."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    (line,) = out.splitlines()
    return int(line.split()[2])


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the "
                    "backlog of a listening socket")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_backlog_is_the_listening_sockets(mgr, host):
    conn = listen_http(mgr, f"http://{host}:0", None, backlog=77)
    assert conn.local_addr[0] == "127.0.0.1"
    assert listen_backlog(conn.local_addr[1]) == 77
    with bind_socket(ServerConfig(port=0, backlog=33)) as sock:
        assert listen_backlog(sock.getsockname()[1]) == 33


def test_backlog_bind_error_is_a_listen_error(mgr, taken_port):
    url = f"http://127.0.0.1:{taken_port}"
    with pytest.raises(ListenError) as info:
        listen_http(mgr, url, None, backlog=64)
    assert info.value.errno == errno.EADDRINUSE and info.value.url == url


def test_backlog_with_a_host_mongoose_refuses_lets_mongoose_say_so(mgr):
    with pytest.raises(RuntimeError):
        listen_http(mgr, "http://not-an-address.invalid:0", None, backlog=64)


# -- fd -------------------------------------------------------------------------------


def test_listening_tcp_socket_passes(mgr):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        check_listen_fd(sock.fileno())
        conn = listen_http(mgr, "http://127.0.0.1:0", None, fd=sock.fileno())
        assert conn.local_addr[1] == sock.getsockname()[1]


def test_unix_socket_passes_and_names_its_path(mgr, tmp_path):
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        sock.listen()
        fd = sock.fileno()
        check_listen_fd(fd)
        assert unix_socket_path(fd) == path
        conn = listen_http(mgr, "http://127.0.0.1:0", None, fd=fd)
        assert conn.local_addr == ("", 0, False)
        with bind_socket(ServerConfig(fd=os.dup(fd))) as adopted:  # the supervisor's way
            assert adopted.family == socket.AF_UNIX
    with socket.create_server(("127.0.0.1", 0)) as tcp:
        assert unix_socket_path(tcp.fileno()) is None


def test_idle_unix_socket_is_refused(tmp_path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "idle.sock"))
        with pytest.raises(ValueError, match="Unix socket that is not listening"):
            check_listen_fd(sock.fileno())


# -- --uds: bind_unix ------------------------------------------------------------------


def test_bind_unix_mode_and_listening(tmp_path):
    path = str(tmp_path / "app.sock")
    with bind_unix(path) as sock:
        assert os.stat(path).st_mode & 0o777 == 0o666
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        assert not sock.getblocking() and sock.get_inheritable()
        with socket.socket(socket.AF_UNIX) as peer:
            peer.connect(path)


def test_bind_unix_replaces_a_stale_socket(tmp_path):
    path = str(tmp_path / "app.sock")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(path)  # its server is gone: the file stays, nobody listens
    with bind_unix(path) as sock:
        assert sock.getsockname() == path


def test_bind_unix_refuses_a_live_socket(tmp_path):
    path = str(tmp_path / "app.sock")
    with bind_unix(path) as live:
        with pytest.raises(ListenError) as info:
            bind_unix(path)
        assert info.value.errno == errno.EADDRINUSE
        assert str(info.value) == (f"cannot listen on unix:{path}: [Errno {errno.EADDRINUSE}] "
                                   "Address already in use: a server is listening on this "
                                   "socket")
        with socket.socket(socket.AF_UNIX) as peer:
            peer.connect(path)  # still the first server's
            assert live.accept()[0] is not None


def test_bind_unix_refuses_what_is_not_a_socket(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("keep")
    with pytest.raises(ListenError, match="is a regular file, not a socket") as info:
        bind_unix(str(data))
    assert info.value.errno == errno.EEXIST and data.read_text() == "keep"
    with pytest.raises(ListenError, match="is a directory, not a socket"):
        bind_unix(str(tmp_path))


def test_bind_unix_errors_name_the_path(tmp_path):
    missing = str(tmp_path / "no" / "such" / "dir.sock")
    with pytest.raises(ListenError) as info:
        bind_unix(missing)
    assert info.value.errno == errno.ENOENT and info.value.url == f"unix:{missing}"
    too_long = str(tmp_path / ("x" * 120))
    with pytest.raises(ListenError) as info:
        bind_unix(too_long)
    assert info.value.errno == errno.ENAMETOOLONG


def test_listen_http_on_uds_and_supervisor_bind(mgr, tmp_path):
    path = str(tmp_path / "app.sock")
    conn = listen_http(mgr, "http://127.0.0.1:0", None, uds=path)
    assert conn.is_listening and conn.local_addr == ("", 0, False)
    with pytest.raises(ListenError, match="a server is listening"):
        bind_socket(ServerConfig(uds=path))
    conn.close()
    mgr.poll(0)
    with bind_socket(ServerConfig(uds=path)) as sock:  # stale now: replaced
        assert sock.family == socket.AF_UNIX


def test_udp_and_idle_tcp_sockets_are_refused():
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        with pytest.raises(ValueError, match="SOCK_DGRAM"):
            check_listen_fd(udp.fileno())
    with socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        with pytest.raises(ValueError, match="TCP socket that is not listening"):
            check_listen_fd(tcp.fileno())


def test_file_and_closed_fd_are_refused(tmp_path):
    with open(tmp_path / "f", "w") as f:
        with pytest.raises(ValueError, match="is a regular file, not a socket"):
            check_listen_fd(f.fileno())
    r, w = os.pipe()
    os.close(w)
    os.close(r)
    with pytest.raises(OSError) as info:
        check_listen_fd(r)
    assert info.value.errno == errno.EBADF and f"fd {r} is not open" in str(info.value)
    with pytest.raises(TypeError, match="fd must be an int"):
        check_listen_fd("3")


# -- TLS files -------------------------------------------------------------------------


def tls_config(cert, key, ca=None):
    return ServerConfig(ssl_certfile=str(cert), ssl_keyfile=str(key),
                        ssl_ca_certs=None if ca is None else str(ca))


@pytest.fixture
def pem_files(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    return tmp_path


def test_no_tls_configured():
    assert load_tls(ServerConfig()) is None


def test_pem_files_are_loaded(pem_files):
    d = pem_files
    assert isinstance(load_tls(tls_config(d / "cert.pem", d / "key.pem", d / "ca.pem")),
                      TlsOpts)


def test_missing_file_names_the_setting_and_path(pem_files):
    d = pem_files
    with pytest.raises(FileNotFoundError) as info:
        load_tls(tls_config(d / "cert.pem", d / "key.pem", d / "nope.pem"))
    assert info.value.errno == errno.ENOENT and info.value.filename == str(d / "nope.pem")
    assert str(info.value) == (f"[Errno {errno.ENOENT}] {os.strerror(errno.ENOENT)} "
                               f"(ssl_ca_certs): '{d / 'nope.pem'}'")


def test_unreadable_and_empty_files(pem_files):
    d = pem_files
    (d / "dir.pem").mkdir()
    with pytest.raises(IsADirectoryError, match=r"\(ssl_keyfile\)"):
        load_tls(tls_config(d / "cert.pem", d / "dir.pem"))
    (d / "empty.pem").write_bytes(b"\n")
    with pytest.raises(ValueError, match="ssl_certfile .*empty.pem' is empty"):
        load_tls(tls_config(d / "empty.pem", d / "key.pem"))


def test_tls_settings_reach_the_tls_opts(pem_files):
    d = pem_files
    opts = load_tls(ServerConfig(ssl_certfile=str(d / "cert.pem"), ssl_keyfile=str(d / "key.pem"),
                                 ssl_ca_certs=str(d / "ca.pem"), ssl_version="TLSv1.3"))
    assert (opts.min_version, opts.cert_reqs, opts.alpn) == ("TLSv1.3", 2, ("http/1.1",))
    opts = load_tls(tls_config(d / "cert.pem", d / "key.pem", d / "ca.pem"))
    assert opts.cert_reqs == 2  # a CA means client certificates are required by default


openssl_only = pytest.mark.skipif(not TLS_LIBRARY.startswith("OpenSSL"),
                                  reason=f"this build's TLS is {TLS_LIBRARY}")


@openssl_only
def test_encrypted_key_errors_name_the_settings(pem_files):
    from cryptography.hazmat.primitives import serialization

    d = pem_files
    key = serialization.load_pem_private_key((d / "key.pem").read_bytes(), None)
    (d / "enc.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")))
    config = tls_config(d / "cert.pem", d / "enc.pem")
    with pytest.raises(ValueError, match=r"^ssl_keyfile '.*enc.pem' is encrypted and no "
                                         r"password was given$"):
        load_tls(config)
    with pytest.raises(ValueError, match="^ssl_keyfile_password does not decrypt the key"):
        load_tls(ServerConfig(ssl_certfile=str(d / "cert.pem"), ssl_keyfile=str(d / "enc.pem"),
                              ssl_keyfile_password="wrong"))
    assert load_tls(ServerConfig(ssl_certfile=str(d / "cert.pem"),
                                 ssl_keyfile=str(d / "enc.pem"), ssl_keyfile_password="pw"))


@openssl_only
def test_key_of_another_certificate_and_bad_ciphers_name_the_settings(pem_files, tmp_path):
    import trustme

    d = pem_files
    trustme.CA().issue_cert("x").private_key_pem.write_to_path(tmp_path / "other.pem")
    with pytest.raises(ValueError, match="^ssl_keyfile '.*other.pem' is not the private key"):
        load_tls(tls_config(d / "cert.pem", tmp_path / "other.pem"))
    with pytest.raises(ValueError, match="^ssl_ciphers selects no cipher"):
        load_tls(ServerConfig(ssl_certfile=str(d / "cert.pem"), ssl_keyfile=str(d / "key.pem"),
                              ssl_ciphers="NOT-A-CIPHER"))
    (tmp_path / "junk.pem").write_bytes(b"junk\n")
    with pytest.raises(ValueError, match="^ssl_certfile '.*junk.pem' holds no usable certificate"):
        load_tls(tls_config(tmp_path / "junk.pem", d / "key.pem"))


def test_connection_error_is_logged_at_debug_with_the_peer(caplog):
    class Conn:
        remote_addr = ("::1", 50312, True)

    with caplog.at_level(logging.DEBUG, logger="cymongoose.tls"):
        log_connection_error(Conn(), "TLS handshake: no shared cipher")
        log_connection_error(Conn(), "socket error")
    assert [r.getMessage() for r in caplog.records] == [
        "TLS handshake with [::1]:50312 failed: no shared cipher",
        "connection with [::1]:50312 failed: socket error"]
    assert {r.levelno for r in caplog.records} == {logging.DEBUG}

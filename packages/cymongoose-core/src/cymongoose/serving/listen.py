"""The servers' listening socket, with errors that say why it cannot be had.

mongoose only reports that it could not listen, and ``Manager.listen`` raises a
RuntimeError naming the URL (as cymongoose 0.2.x did). Both servers listen through
:func:`listen_http`, which then tries the same bind in Python to learn the reason and
raises a :class:`ListenError` carrying its errno ("[Errno 98] Address already in use")
and the URL. A socket handed over as ``fd`` (``--fd``, ``--workers``, gunicorn) is
checked first by :func:`check_listen_fd`. mongoose has no Unix socket URLs: ``--uds``
is bound here (:func:`bind_unix`) and handed over as a descriptor too.

mongoose's own listen() backlog is fixed at build time (128). To honour ``--backlog``,
:func:`listen_http` given a ``backlog`` binds the socket in Python with mongoose's rules
(numeric IPv4/IPv6 host or ``localhost``, SO_REUSEADDR) and hands it to mongoose as ``fd``.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ListenError", "bind_error", "bind_unix", "check_listen_fd", "listen_http",
           "unix_socket_path"]

#: Backlog of a Unix socket bound by :func:`bind_unix` when none is given.
UNIX_BACKLOG = 2048
#: File mode of a Unix socket bound by :func:`bind_unix`: any local user may connect, as
#: with uvicorn's ``--uds`` (restrict access through the directory's permissions).
UNIX_MODE = 0o666


class ListenError(OSError, RuntimeError):
    """The server cannot listen on ``url``.

    An OSError: ``errno``/``strerror`` say why (``errno.EADDRINUSE``, ``EACCES``,
    ``EADDRNOTAVAIL``, or a negative ``socket.gaierror`` code for a host that does not
    resolve); ``filename`` (also ``url``) says where. Also a RuntimeError, which is what
    ``Manager.listen`` and the 0.2.x servers raise there, so ``except RuntimeError`` code
    still catches it. ``str()`` is one line:
    ``cannot listen on http://127.0.0.1:8000: [Errno 98] Address already in use``.
    """

    @property
    def url(self) -> str:
        """The URL (or ``host:port``) that could not be listened on."""
        return str(self.filename)

    def __str__(self) -> str:
        return f"cannot listen on {self.filename}: [Errno {self.errno}] {self.strerror}"


def _host_port(url: str) -> tuple[str, int] | None:
    """``url``'s host and port (no port: 80, or 443 for https/wss); None when the URL names
    no host or a bad port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None:
        port = 443 if parts.scheme in ("https", "wss") else 80
    return (parts.hostname, port) if parts.hostname else None


def bind_error(url: str) -> ListenError | None:
    """Why ``url``'s host and port cannot be bound, found by binding them once in Python.

    ``url`` is a mongoose listen URL (``http://host:port``, ``https://[::1]:8443``; no port:
    80 or 443). Returns a :class:`ListenError` with the errno of the failed lookup or
    bind, or None when the bind works (the failure had another cause) or the URL names no
    host and port. Binds with SO_REUSEADDR, as mongoose does, and closes the socket at once.
    """
    host_port = _host_port(url)
    if host_port is None:
        return None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            *host_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:  # socket.gaierror included
        return ListenError(exc.errno, exc.strerror, url)
    return None


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
             (stat.S_ISFIFO, "a pipe"), (stat.S_ISCHR, "a character device such as a terminal"))
    return next((name for test, name in kinds if test(mode)), "not a socket")


def check_listen_fd(fd: int) -> None:
    """Check that ``fd`` is what the servers can serve on: a listening stream socket, TCP
    (IPv4/IPv6) or Unix (AF_UNIX).

    Raises TypeError when ``fd`` is not an int, OSError (``EBADF``) naming it when it is not
    open, and ValueError saying what it is otherwise (a file, a pipe, a UDP or datagram
    socket, a socket that is not listening). The caller's descriptor is left as it was.
    """
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"fd must be an int (a socket file descriptor), got {fd!r}")
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise OSError(exc.errno, f"{exc.strerror}: fd {fd} is not open") from None
    need = "the server needs a bound, listening TCP or Unix stream socket"
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"fd {fd} is {_file_kind(mode)}, not a socket; {need}")
    with socket.socket(fileno=os.dup(fd)) as sock:
        family, kind = sock.family, sock.type
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    unix = family == getattr(socket, "AF_UNIX", None)
    if family not in (socket.AF_INET, socket.AF_INET6) and not unix:
        raise ValueError(f"fd {fd} is a socket of family {family.name}, not a TCP "
                         f"(AF_INET/AF_INET6) or Unix (AF_UNIX) one; {need}")
    what = "Unix" if unix else "TCP"
    if kind != socket.SOCK_STREAM:
        raise ValueError(f"fd {fd} is a {kind.name} (not a stream) socket; {need}")
    if not listening:
        raise ValueError(f"fd {fd} is a {what} socket that is not listening (call listen() "
                         f"on it before handing it over); {need}")


def _address(url: str) -> tuple[Any, ...] | None:
    """``(family, sockaddr)`` of ``url``'s host and port as mongoose reads them (a numeric
    IP, or ``localhost`` = 127.0.0.1), or None when mongoose would not take the host (the
    caller then lets mongoose say so)."""
    host_port = _host_port(url)
    if host_port is None:
        return None
    host, port = host_port
    if host.lower() == "localhost":
        host = "127.0.0.1"
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE | socket.AI_NUMERICHOST)[0]
    except (OSError, UnicodeError):  # socket.gaierror included
        return None
    return family, address


def _bind(url: str, backlog: int) -> socket.socket | None:
    """A socket bound to ``url`` and listening with ``backlog``; None when the host is not
    one mongoose takes. Raises ListenError when the address cannot be bound."""
    found = _address(url)
    if found is None:
        return None
    family, address = found
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(exc.errno, exc.strerror, url) from None
    return sock


def unix_socket_path(fd: int) -> str | None:
    """The path a listening Unix socket ``fd`` is bound to (``""`` for an abstract or
    unnamed one), or None when ``fd`` is not a Unix socket (TCP). Raises OSError when
    ``fd`` is not an open socket."""
    with socket.socket(fileno=os.dup(fd)) as sock:
        if sock.family != getattr(socket, "AF_UNIX", None):
            return None
        name = sock.getsockname()
    return name if isinstance(name, str) else name.decode("utf-8", "replace")


def _remove_stale_socket(path: str, where: str) -> None:
    """Remove ``path`` when it is a Unix socket nobody listens on (a dead server's);
    raise ListenError when it is something else or a server still listens there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ListenError(exc.errno, exc.strerror, where) from None
    if not stat.S_ISSOCK(mode):
        raise ListenError(errno.EEXIST, f"{path} exists and is {_file_kind(mode)}, not a "
                          "socket; remove it or choose another path", where)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a live server with a full backlog: EAGAIN, no wait
        try:
            probe.connect(path)
            live = True
        except ConnectionRefusedError:
            live = False  # nobody listens: a dead server's socket file
        except BlockingIOError:
            live = True
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ListenError(exc.errno, exc.strerror, where) from None
    if live:
        raise ListenError(errno.EADDRINUSE, "Address already in use: a server is listening "
                          "on this socket", where)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def bind_unix(path: str, *, backlog: int = UNIX_BACKLOG) -> socket.socket:
    """Bind and listen on the Unix stream socket ``path`` (``--uds``), as uvicorn does:
    file mode :data:`UNIX_MODE` (0o666).

    A socket file left by a server that is gone (nobody accepts on it) is replaced; a
    path where a server still listens, or that is not a socket, is refused. Returns the
    listening socket, non-blocking and inheritable (the servers hand its descriptor to
    mongoose, the supervisor to its server processes); the caller closes it. Raises
    :class:`ListenError` (an OSError) naming ``unix:<path>``: ``EADDRINUSE`` when a server
    listens there, ``EEXIST`` when the path is not a socket, ``ENAMETOOLONG`` for a path
    over the system's limit (about 107 bytes), ``ENOENT``/``EACCES`` from ``bind``.
    """
    where = f"unix:{path}"
    _remove_stale_socket(path, where)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, UNIX_MODE)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno is None:  # "AF_UNIX path too long" carries no errno
            raise ListenError(errno.ENAMETOOLONG, str(exc), where) from None
        raise ListenError(exc.errno, exc.strerror, where) from None
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def listen_http(mgr: Any, url: str, handler: Any, *, fd: int | None = None,
                uds: str | None = None, backlog: int | None = None) -> Any:
    """``mgr.listen(url, handler, http=True)``, or on the socket ``fd``, or on the Unix
    socket ``uds`` (bound by :func:`bind_unix`), with clear errors. ``fd`` comes first,
    then ``uds``, then ``url``'s address.

    ``backlog`` (connections; ``ServerConfig.backlog``): the listen() backlog of the socket
    bound for ``url`` or ``uds``; None keeps mongoose's (128; :data:`UNIX_BACKLOG` for
    ``uds``). It does not apply to ``fd``, whose owner chose it. (A server process of
    the ``--workers`` supervisor says it listens through its watchdog, not here:
    :func:`~cymongoose.serving.supervisor.process_watchdog`.)

    Returns the listening ``Connection``. Raises the errors of :func:`check_listen_fd` for
    a bad ``fd``, of :func:`bind_unix` for ``uds``; :class:`ListenError` (an OSError with
    the errno, and a RuntimeError) when mongoose cannot listen on ``url`` and
    :func:`bind_error` finds why; otherwise mongoose's own RuntimeError.
    """
    if fd is not None:
        check_listen_fd(fd)
        return mgr.listen(url, handler, http=True, fd=fd)
    if uds is not None:
        with bind_unix(uds, backlog=backlog or UNIX_BACKLOG) as unix_sock:
            return mgr.listen(url, handler, http=True, fd=unix_sock.fileno())
    sock = _bind(url, backlog) if backlog is not None else None
    if sock is not None:
        with sock:  # mongoose serves on a duplicate
            return mgr.listen(url, handler, http=True, fd=sock.fileno())
    try:
        return mgr.listen(url, handler, http=True)
    except RuntimeError as exc:
        error = bind_error(url)
        if error is None:
            raise
        raise error from exc

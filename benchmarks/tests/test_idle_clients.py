"""run.py's IdleClients: when the idle connections cannot be set up, the row's error names
the client's exception."""

import socket

import pytest
import run


def test_a_refused_connection_is_named_in_the_error():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RuntimeError) as info:
        run.IdleClients(port, 10, websocket=False)
    message = str(info.value)
    assert message.startswith("idle clients: ")
    assert "Error" in message and "Connection refused" in message, message
    assert "\n" not in message and "^" not in message

"""``RequestBody`` (the streamed ``wsgi.input``) and ``FileWrapper`` on their own: the
poll thread's side is played by the test."""

from __future__ import annotations

import io
import threading

import pytest

from cymongoose.wsgi.environ import ClientDisconnected, FileWrapper, RequestBody


def make_body(**kwargs) -> tuple[RequestBody, list[int]]:
    drained: list[int] = []
    body = RequestBody(lambda: drained.append(1), **kwargs)
    return body, drained


def test_reads_across_fed_pieces():
    body, _ = make_body()
    for piece in (b"ab", b"c\nde", b"f\n", b"tail"):
        body.feed(piece)
    body.feed(b"")
    assert body.read(1) == b"a"
    assert body.readline() == b"bc\n"
    assert body.readline(2) == b"de"
    assert body.readlines() == [b"f\n", b"tail"]
    assert body.read() == b""
    assert body.readline() == b""
    assert body.complete


def test_readlines_hint_and_iteration():
    body, _ = make_body()
    body.feed(b"1\n22\n333\n4444\n")
    body.feed(b"")
    assert body.readlines(3) == [b"1\n", b"22\n"]
    assert list(body) == [b"333\n", b"4444\n"]


def test_read_none_and_negative_mean_all():
    body, _ = make_body()
    body.feed(b"xyz")
    body.feed(b"")
    assert body.read(None) == b"xyz"
    body2, _ = make_body()
    body2.feed(b"xyz")
    body2.feed(b"")
    assert body2.read(-1) == b"xyz"


def test_read_waits_for_data_from_another_thread():
    body, _ = make_body()
    got = []
    reader = threading.Thread(target=lambda: got.append(body.read(6)))
    reader.start()
    body.feed(b"abc")
    body.feed(b"def")
    reader.join(10)
    assert got == [b"abcdef"]


def test_pause_and_resume_watermarks():
    body, drained = make_body(high_water=100, low_water=40)
    assert body.feed(b"x" * 60) is False
    assert body.feed(b"x" * 60) is True  # over high water: pause reading
    assert body.still_paused()
    assert body.feed(b"x" * 10) is False  # already paused: asked once
    body.read(50)  # 80 left: still above low water
    assert drained == [] and body.still_paused()
    body.read(50)  # 30 left: below low water
    assert drained == [1] and not body.still_paused()


def test_read_all_does_not_deadlock_on_a_paused_body():
    """read() with no size keeps draining the buffer, so reading can resume."""
    body, _ = make_body(high_water=10, low_water=5)
    result = []

    def feeder_on_drain():
        # the poll thread resumes reading: more data, then the end
        if not result:
            body.feed(b"y" * 20)
            body.feed(b"")

    body._on_drained = feeder_on_drain  # what the server wires to its resume message
    body.feed(b"x" * 20)
    result.append(body.read())
    assert result == [b"x" * 20 + b"y" * 20]


def test_disconnect_fails_waiting_and_later_reads():
    body, _ = make_body()
    body.feed(b"partial")
    errors = []

    def reader():
        try:
            body.read(100)
        except ClientDisconnected as exc:
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    body.fail(ClientDisconnected("gone"))
    t.join(10)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionError)
    with pytest.raises(ClientDisconnected):
        body.read(1)


def test_fail_after_complete_body_is_ignored():
    body, _ = make_body()
    body.feed(b"all")
    body.feed(b"")
    body.fail(ClientDisconnected("gone"))
    assert body.read() == b"all"


def test_timeout_without_data():
    body, _ = make_body(timeout_s=0.05)
    body.feed(b"ab")
    with pytest.raises(TimeoutError, match="2 bytes received"):
        body.read(10)


def test_discard_drops_data_and_ends_reads():
    body, _ = make_body(high_water=10, low_water=5)
    body.feed(b"x" * 20)
    body.discard()
    assert not body.still_paused()
    assert body.feed(b"y" * 100) is False
    assert body.read() == b""


def test_file_wrapper_iterates_and_closes():
    f = io.BytesIO(b"0123456789")
    wrapper = FileWrapper(f, 4)
    assert list(wrapper) == [b"0123", b"4567", b"89"]
    wrapper.close()
    assert f.closed

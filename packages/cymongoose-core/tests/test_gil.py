"""poll() releases the GIL while mongoose waits: other Python threads keep running."""

import threading

from cymongoose import Manager


def test_other_thread_runs_during_poll():
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    worker = threading.Thread(target=count)
    with Manager() as mgr:
        worker.start()
        try:
            before = counter[0]
            mgr.poll(300)  # nothing to do: mongoose sleeps in epoll_wait for 300 ms
            during = counter[0] - before
        finally:
            stop.set()
            worker.join()
    # Holding the GIL through the wait would leave the counter almost still.
    assert during > 10_000

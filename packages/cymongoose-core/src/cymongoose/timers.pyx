# Timers: Python callbacks on mongoose's timer list.


cdef class Timer:
    """A timer created by ``Manager.timer_add``. ``cancel()`` is safe from any thread."""

    # Fields and C methods are declared in timers.pxd.

    def cancel(self) -> None:
        """Stop the timer; it never fires after this returns on the poll thread.

        From another thread the C timer is released at the next ``poll()``.
        """
        if not self.active:
            return
        self.active = False
        self._mgr._cancelled.append(self)
        if self._mgr._wakeup_enabled and self._mgr._polling:
            self._mgr._interrupt()

    cdef void _release(self):
        # Unlinks and frees a timer that mongoose has not auto-deleted.
        if self._t != NULL and self._mgr._open:
            mg_timer_free(&self._mgr._mgr.timers, self._t)
            mg_free(self._t)
        self._t = NULL
        self._mgr._timers.discard(self)


cdef void _timer_fn(void *arg) noexcept with gil:
    cdef Timer t = <Timer>arg
    cdef Manager mgr = t._mgr
    mgr._calls += 1
    if not t._repeat:
        # mongoose frees one-shot timers itself right after this call, even when
        # cancel() ran earlier in this poll: forget the pointer before _release sees it.
        t._t = NULL
        mgr._timers.discard(t)
        if not t.active:
            return
        t.active = False
    elif not t.active:
        return
    try:
        t._callback()
    except BaseException as exc:
        mgr._report(exc)

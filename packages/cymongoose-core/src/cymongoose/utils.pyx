# Module-level utilities.


def millis() -> int:
    """Milliseconds from mongoose's monotonic clock (``mg_millis``)."""
    return mg_millis()


def log_set(int level) -> None:
    """Set mongoose's log level (``MG_LL_NONE`` .. ``MG_LL_VERBOSE``)."""
    if level < MG_LL_NONE or level > MG_LL_VERBOSE:
        raise ValueError(f"log level {level} is not in {MG_LL_NONE}..{MG_LL_VERBOSE}")
    mg_log_set(level)


def log_get() -> int:
    """Current mongoose log level."""
    return mg_log_level

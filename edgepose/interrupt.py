"""SIGTERM handled like Ctrl-C, so an interrupted command leaves no partial artifact.

Python turns SIGINT into :class:`KeyboardInterrupt`, which unwinds the stack and runs every
``finally`` block — including the temporary-file cleanup of ``edgepose.io.atomic_path`` and
``atomic_dir``. SIGTERM (what ``kill``, systemd and job schedulers send) would instead end the
process on the spot and leave temporary files behind. Wrap the writing part of a command::

    from edgepose.interrupt import terminate_as_interrupt

    with terminate_as_interrupt():
        with atomic_path(out) as tmp:
            ...                      # SIGTERM here → KeyboardInterrupt → tmp removed

The previous handlers are restored on exit. Signal handlers can only be installed from the main
thread; elsewhere the context manager does nothing (the main thread still gets the signal).
Standard library only: safe to import from the torch-free runtime.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM (or another wrapped signal) arrives.

    A :class:`KeyboardInterrupt`, so code that already cleans up on Ctrl-C needs no change;
    ``signum`` says which signal it was.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"received {signal.Signals(signum).name}")


def _raise(signum: int, _frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt(signals: tuple[int, ...] = (signal.SIGTERM,)) -> Iterator[None]:
    """Within the block, each of ``signals`` raises :class:`Terminated` in the main thread.

    SIGINT needs no wrapping (Python already raises ``KeyboardInterrupt``) unless a caller has
    replaced its handler; pass ``(signal.SIGTERM, signal.SIGINT)`` to enforce both.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in signals}
    try:
        for s in signals:
            signal.signal(s, _raise)
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

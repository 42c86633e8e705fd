"""Ctrl-C and SIGTERM: the handler only sets a flag; the loop stops at a safe point and saves.

A second Ctrl-C aborts at once (KeyboardInterrupt) for a user who does not want to wait.
"""

import signal
from contextlib import contextmanager

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequest:
    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal, 1) if self.signal else 0


@contextmanager
def stop_on_signals(on_first=lambda name: None):
    """Within the block, SIGINT/SIGTERM set the yielded StopRequest instead of killing."""
    request = StopRequest()

    def handle(number, frame):
        if request:  # the second signal: stop now
            raise KeyboardInterrupt
        request.signal = number
        on_first(signal.Signals(number).name)

    previous = {}
    try:
        for number in EXIT_CODES:
            previous[number] = signal.signal(number, handle)
    except ValueError:  # not the main thread (e.g. inside some test runners): no handlers
        previous = {}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)

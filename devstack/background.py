"""The one way devstack runs a loop in the background: a daemon thread calling ``step()`` until stopped."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Loop:
    """``start()`` runs ``step()`` on a daemon thread, again at once while it says it was busy, after
    ``interval`` seconds when it was not, until ``stop()``; subclasses implement ``step``."""

    thread_name = "devstack-loop"
    interval = 0.1
    join_seconds = 30.0

    def step(self) -> bool:
        raise NotImplementedError

    def start(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        stopping = getattr(self, "_stop", None)
        if stopping is not None:
            stopping.set()
            self._thread.join(timeout=self.join_seconds)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when stopped meanwhile."""
        self._stop.wait(seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("%s failed", self.thread_name)
                busy = False
            if not busy:
                self._stop.wait(self.interval)

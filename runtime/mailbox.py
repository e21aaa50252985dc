"""A one-slot mailbox between a producer that must never wait and a consumer that wants the newest item.

A live video source delivers frames at its own pace; when the model is slower, queueing them would
grow the delay from capture to lanes without bound. :class:`Mailbox` keeps only the newest item:
:meth:`Mailbox.put` replaces an unread one (and says so, so the producer can count the drop),
:meth:`Mailbox.get` takes it or waits for the next.
"""
from __future__ import annotations

import queue
import threading
from typing import Any

_EMPTY = object()


class Mailbox:
    """One slot, thread-safe. ``put`` never blocks; ``get(timeout)`` raises ``queue.Empty`` after
    ``timeout`` seconds without an item (None: wait for ever)."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._item: Any = _EMPTY

    def put(self, item: Any) -> bool:
        """Leave ``item`` in the slot; True when it replaced an item nobody had taken (a drop)."""
        with self._ready:
            replaced = self._item is not _EMPTY
            self._item = item
            self._ready.notify_all()
            return replaced

    def get(self, timeout: float | None = None) -> Any:
        with self._ready:
            if not self._ready.wait_for(lambda: self._item is not _EMPTY, timeout):
                raise queue.Empty
            item, self._item = self._item, _EMPTY
            self._ready.notify_all()
            return item

    def wait_taken(self, timeout: float) -> bool:
        """Wait until the slot is empty (the consumer took the item); False after ``timeout`` seconds."""
        with self._ready:
            return self._ready.wait_for(lambda: self._item is _EMPTY, timeout)

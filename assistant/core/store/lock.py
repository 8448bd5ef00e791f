"""An exclusive lock on an embedded store's folder, held for the life of the store.

Embedded engines keep their state in one process's memory, so only one process may open a
folder. The lock is an ``fcntl.flock`` on ``lorag.lock`` in the folder (released by the kernel if
the process dies); the file holds the owner's pid so a second process can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from assistant.core.errors import StoreLockedError

LOCK_FILE = "lorag.lock"


class FolderLock:
    """Holds ``folder/lorag.lock`` until :meth:`release`; raises ``StoreLockedError`` if taken."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LOCK_FILE
        self._file = self.path.open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "unknown"
            self._file.close()
            raise StoreLockedError(
                f"the store folder {folder} is in use by another process (pid {owner}). "
                "Only one process can open an embedded store: stop that process, or go through "
                "the API server that owns the folder, or use a Qdrant server (store.url)."
            ) from None
        self._file.truncate(0)
        self._file.write(str(os.getpid()))
        self._file.flush()

    @property
    def released(self) -> bool:
        return self._file.closed

    def release(self) -> None:
        """Let another process open the folder."""
        if not self.released:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

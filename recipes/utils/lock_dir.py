#!/usr/bin/env python3
"""Take the exclusive lock of an experiment folder on an inherited file descriptor.

    lock_dir.py FD DIR PID [SCRIPT]

``FD`` is ``DIR/.lock`` opened by the calling shell (``exec {fd}>>DIR/.lock``); the
``flock`` taken here belongs to that open file, so it stays held by the shell (and
the jobs it starts) after this process exits, and the kernel drops it when they
have all ended.  ``PID`` (the shell's) is written into the file for the message a
second run prints.  Exit 1 with one line, starting with ``SCRIPT`` (the recipe's
name), when another run holds the lock.
"""
from __future__ import annotations

import fcntl
import os
import sys


def main(argv: list[str]) -> int:
    fd, folder, pid = int(argv[0]), argv[1], argv[2]
    script = argv[3] if len(argv) > 3 else "recipe"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        with open(os.path.join(folder, ".lock"), encoding="ascii", errors="replace") as f:
            holder = f.read().strip() or "?"
        print(f"{script}: error: {folder}: another run is using this folder (pid {holder}); "
              "wait for it to finish, or give another --exp", file=sys.stderr)
        return 1
    os.ftruncate(fd, 0)
    os.write(fd, f"{pid}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

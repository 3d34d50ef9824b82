"""Process identity: a pid alone names whatever process got that number last (after a
reboot, in another container, on a shared home). Before any signal, and before a run is
judged orphaned, a process is matched by pid, start time and whole command line, and a
run's owner also by the machine's boot id. A folder one process holds at a time:
:func:`folder_lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from nmt.components.system.errors import NmtError
from nmt.components.system.paths import private_dir, write_private

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
# A process's start is read from /proc/<pid>/stat: clock ticks since boot, which nothing moves.
# psutil's create_time adds /proc/stat's btime, a whole second computed from the wall clock, so
# a clock stepped after boot (NTP, a VM's clock sync or restore) can move it. Without /proc
# (macOS), or for a start recorded as seconds since the epoch (before since-boot starts), the
# wall-clock start is compared within START_TOLERANCE_S.
START_TOLERANCE_S = 1.5
TICK_TOLERANCE_S = 0.02
EPOCH_LIKE = 1e8  # a recorded start this large is seconds since the epoch (1973 on), not since boot


def start_time(pid: int) -> float:
    """When ``pid`` started: seconds since boot where /proc has it, else since the epoch."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22; the name may hold spaces
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return psutil.Process(pid).create_time()


def same_start(p: psutil.Process, recorded: float) -> bool:
    """Whether ``p`` started when ``recorded`` says (a value from :func:`start_time`)."""
    if recorded > EPOCH_LIKE:
        return abs(p.create_time() - recorded) <= START_TOLERANCE_S
    return abs(start_time(p.pid) - recorded) <= TICK_TOLERANCE_S


def boot_id() -> str:
    """This kernel's boot id (a new one after every reboot); the hostname where there is none."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return "noboot-" + socket.gethostname()


@dataclass(frozen=True)
class ProcessId:
    """pid + start time (:func:`start_time`) + argv: what a recorded process must still match."""
    pid: int
    start: float
    argv: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> "ProcessId":
        """The identity of the running process ``pid``; raises psutil.Error when there is none."""
        p = psutil.Process(pid)
        argv: tuple[str, ...] = ()
        for _ in range(200):  # a process just started (Popen returns once exec began) shows an empty
            argv = tuple(p.cmdline())  # command line until the kernel has laid out its arguments:
            if argv:                   # recorded then, it would never match, and never be stopped
                break
            time.sleep(0.01)
        return cls(pid, start_time(pid), argv)

    def process(self) -> psutil.Process | None:
        """The live process this identity names, or None: gone, a zombie, or its pid reused by
        another process (another start time, or another command line item by item)."""
        try:
            p = psutil.Process(self.pid)
            with p.oneshot():
                if p.status() == psutil.STATUS_ZOMBIE:
                    return None
                if not same_start(p, self.start):
                    return None
                if not self.argv or tuple(p.cmdline()) != self.argv:  # no argv recorded proves nothing
                    return None
            return p
        except psutil.Error:
            return None

    def save(self, path: Path) -> None:
        write_private(path, json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> "ProcessId | None":
        """The identity recorded at ``path``; None when absent or unreadable (an old bare pid
        file cannot be trusted: it names a number only)."""
        try:
            raw = json.loads(path.read_text())
            return cls(int(raw["pid"]), float(raw["start"]), tuple(str(a) for a in raw["argv"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def owner() -> str:
    """``host|boot id|pid|start time`` of this process: names it across reboots and pid reuse."""
    me = ProcessId.of(os.getpid())
    return f"{socket.gethostname()}|{boot_id()}|{me.pid}|{me.start:.2f}"


def _local_owner(owner_tag: str | None) -> tuple[str, int, float] | None:
    """An owner tag of this host -> (boot id, pid, start time); None for another host's or an
    unreadable tag."""
    parts = (owner_tag or "").split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[2].isdigit():
        return None
    try:
        return parts[1], int(parts[2]), float(parts[3])
    except ValueError:
        return None


def owner_is_dead(owner_tag: str | None) -> bool:
    """Whether the process named by an owner tag surely no longer runs: it is of this host,
    and this host rebooted since, or its pid is gone or now names a process started at
    another time. Another host's run, or a tag we cannot read, may be alive: False."""
    local = _local_owner(owner_tag)
    if local is None:
        return False
    host_boot, pid, start = local
    if host_boot != boot_id():
        return True
    try:
        p = psutil.Process(pid)
        return p.status() == psutil.STATUS_ZOMBIE or not same_start(p, start)
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, ValueError):  # another user's process with that pid: cannot tell
        return False


# A folder owned by one process at a time: an exclusive ``flock`` on ``<folder>.lock``.
#
# The kernel drops the lock when its holder dies (even by ``kill -9``), so a crashed run never
# leaves a stale lock; the file sits beside the folder, and goes with it when its holder
# removes the folder.

log = logging.getLogger("nmt")


@contextlib.contextmanager
def folder_lock(folder: Path, what: str, poll_s: float = 1.0) -> Iterator[Path]:
    """Hold ``folder`` for this process; another holder is waited for, named in one log line.
    Yields the lock file; its text names the holder (``host|boot|pid|start``, then ``note``).
    A holder that removed the folder removes the lock file too (nothing left per finished
    folder); a waiter then finds its file gone and locks the path anew."""
    lock = private_dir(folder.parent) / f"{folder.name}.lock"
    said = False
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    holder = lock.read_text().strip() if lock.exists() else ""
                    if held_by_ancestor(holder):  # it waits for us: waiting would never end
                        os.close(fd)
                        raise NmtError(f"{what}: {folder} is held by {holder}, a parent of this process, "
                                       "which waits for it: this process re-ran the command it is part of "
                                       "(e.g. a worker launched by the parent); run it as one process")
                    log.warning("%s: %s is in use by %s; waiting for it to finish (Ctrl-C to stop)",
                                what, folder, holder or "another process")
                    said = True
                time.sleep(poll_s)
        if _same_file(fd, lock):
            break
        os.close(fd)  # its holder removed it while we waited: lock the path's new file
    try:
        note(lock, "")
        yield lock
    finally:
        if not folder.exists():
            lock.unlink(missing_ok=True)  # still held: no one else can have locked this file
        os.close(fd)  # releases the lock


def held_by_ancestor(holder: str) -> bool:
    """Whether a lock file's text (:func:`note`'s) names a live parent, grandparent, ... of this
    process (the same start time: not a reused pid)."""
    local = _local_owner(holder.partition("(")[2].partition(")")[0])
    if local is None or local[0] != boot_id():
        return False
    _, pid, start = local
    try:
        return any(p.pid == pid and same_start(p, start) for p in psutil.Process().parents())
    except (psutil.Error, ValueError):
        return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def note(lock: Path, text: str) -> None:
    """Name the holder in the lock file: this process, and ``text`` (e.g. its run id)."""
    lock.write_text(f"pid {os.getpid()} ({owner()}){' ' + text if text else ''}\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler's stop) ends a command as Ctrl-C does: its
    runs KILLED, its scratch folders removed. The default action would leave the runs RUNNING
    and the folders on disk until the next command swept them."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread for the block (then the handler
    before it is back). Under Lightning's ``fit`` its own handler runs first and calls this one
    too, which then leaves it to Lightning: it stops at the next step, as a SystemExit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

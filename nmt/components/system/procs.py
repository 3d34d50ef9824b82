"""Process identity: a pid alone names whatever process got that number last (after a
reboot, in another container, on a shared home). Before any signal, and before a run is
judged orphaned, a process is matched by pid, start time and whole command line, and a
run's owner also by the machine's boot id.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from nmt.components.system.private import write_private

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


def owner_is_dead(owner_tag: str | None) -> bool:
    """Whether the process named by an owner tag surely no longer runs: it is of this host,
    and this host rebooted since, or its pid is gone or now names a process started at
    another time. Another host's run, or a tag we cannot read, may be alive: False."""
    parts = (owner_tag or "").split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[2].isdigit():
        return False
    host_boot, pid, start = parts[1], int(parts[2]), parts[3]
    if host_boot != boot_id():
        return True
    try:
        p = psutil.Process(pid)
        return p.status() == psutil.STATUS_ZOMBIE or not same_start(p, float(start))
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, ValueError):  # another user's process with that pid: cannot tell
        return False

"""Scratch folders: what a stage writes outside its run's own folder (prepare's Arrow work
files, evaluate's hypotheses, a model's files before they are logged).

Each lives under one per-user root in the system's temp folder and holds an ``owner`` file
(host, boot id, pid, start time: :func:`nmt.components.system.procs.owner`). It is removed
when its ``with`` block ends, however it ends; a process killed by ``kill -9`` cannot do that,
so every new scratch folder first sweeps those whose owner surely died.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from nmt.components.system.paths import private_dir
from nmt.components.system.procs import owner, owner_is_dead

log = logging.getLogger("nmt")
OWNER = "owner"
UNCLAIMED_S = 3600  # a folder with no owner file yet: being made now, or its maker died at once


def scratch_root() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return private_dir(Path(tempfile.gettempdir()) / f"nmt-scratch-{uid}")


def remove_dead(folders: Iterable[Path]) -> list[Path]:
    """Of ``folders``, remove those whose ``owner`` file names a process that surely died;
    returns them. A folder without that file is never touched here: nothing proves it ours."""
    gone = []
    for d in folders:
        try:
            dead = owner_is_dead((d / OWNER).read_text())
        except OSError:  # no owner file, not a folder, removed meanwhile, or not ours to read
            continue
        if dead:
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def sweep(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders of processes that died without removing them; returns them.
    A folder with no owner file is removed only when empty and older than ``UNCLAIMED_S``: the
    one :func:`_owned_folder` makes before it writes that file, its maker killed in between."""
    root = root or scratch_root()
    gone = []
    for d in root.iterdir():
        if (d / OWNER).exists():
            gone += remove_dead([d])
            continue
        try:
            if time.time() - d.stat().st_mtime > UNCLAIMED_S:
                d.rmdir()  # fails on a folder that holds anything
                gone.append(d)
        except OSError:  # removed meanwhile, or not empty
            continue
    if gone:
        log.info("removed %d scratch folder(s) of killed runs under %s", len(gone), root)
    return gone


def _owned_folder(what: str) -> Path:
    """A new folder under the scratch root naming this process as its owner, after sweeping
    the folders of owners that died."""
    root = scratch_root()
    sweep(root)
    d = Path(tempfile.mkdtemp(prefix=f"{what}-", dir=root))
    try:
        (d / OWNER).write_text(owner())
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise
    return d


@contextlib.contextmanager
def scratch(what: str) -> Iterator[Path]:
    """An empty folder for ``what`` (e.g. ``prepare``), removed when the block ends."""
    d = _owned_folder(what)
    try:
        work = d / "work"
        work.mkdir()
        yield work
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def temp_inside(folder: Path) -> Iterator[Path]:
    """Python's temp folder (``tempfile.tempdir``) is ``folder`` for the block: what a library
    makes with ``tempfile`` (MLflow's copy of a model it logs, Ray Train's of a checkpoint) then
    goes with our scratch folder, also after a ``kill -9``, instead of staying in /tmp."""
    before, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = before


_HELD: dict[str, Path] = {}


def held_scratch(what: str) -> Path:
    """A fresh empty folder for files this process hands to its caller (e.g. a download from a
    tracking server): it lives as long as the process, under one folder per process and ``what``
    that is removed at exit and swept by the next run after a kill. MLflow would otherwise put
    each download in a temp folder of its own that nothing ever removes."""
    d = _HELD.get(what)
    if d is None or not d.is_dir():
        d = _owned_folder(what)
        pid = os.getpid()
        atexit.register(lambda: os.getpid() == pid and shutil.rmtree(d, ignore_errors=True))  # not a fork's
        _HELD[what] = d
    return Path(tempfile.mkdtemp(dir=d))

"""keep_freed_memory: after it, a large tensor comes from glibc's heap (not mmap) and its
memory stays in the process when freed, so the next step does not fault it in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, torch
from nmt.components.training.devices import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
MB = 1 << 20
t = torch.empty(64 * MB, dtype=torch.uint8); t.fill_(1)
mapped_before = libc.mallinfo2().hblkhd            # glibc's default: a 64 MB block is mmapped
del t
assert keep_freed_memory() and keep_freed_memory()  # once; a second call is a no-op
t = torch.empty(64 * MB, dtype=torch.uint8); t.fill_(1)
mapped_after, heap = libc.mallinfo2().hblkhd, libc.mallinfo2().arena
del t
kept = libc.mallinfo2().fordblks                    # freed, still the process's
print(mapped_before >= 64 * MB, mapped_after < 64 * MB, heap >= 64 * MB, kept >= 64 * MB)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_large_blocks_come_from_the_heap_and_stay():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True", "True"]

"""MRENCLAVE: the SGX measurement of an enclave layout.

SGX measures an enclave while it is built: ECREATE starts a SHA-256 with a 64-byte
record, every EADD appends a record with the page's offset and SECINFO flags, every
EEXTEND appends a record with a 256-byte chunk's offset followed by the chunk. EINIT
finalises the hash into MRENCLAVE. The record formats are in docs/sgx-facts.md; this
module replays the instructions an SGX loader would issue for an EnclaveLayout.

Speed matters, because `occlum run` measures again at every start: every byte of the
records must be hashed (that is the SHA-256 floor, ~1.3 GB/s here), but the Python work
per page must not be. So:
- EADD records of added pages are written as columns into a reused buffer whose tag
  and flags columns are filled once: a page's offset is split into its low and high
  32 bits, the low halves of a run are one slice of a precomputed table of page
  offsets, the high half is a constant within a 4 GiB window;
- a measured page's EADD and sixteen EEXTEND records are one precompiled struct.pack;
- the thread area is walked as a run of identical slots (layout.ThreadRun), each slot's
  records built from its offset alone: a TCS page differs between threads only in OSSA.
"""
from __future__ import annotations

import array
import hashlib
import struct
import sys

from .fields import FieldTable
from .layout import ADDED, MEASURED, PAGE_SIZE, EnclaveLayout, ThreadRun

ECREATE = FieldTable("ECREATE record", 64, [
    ("tag", 0, "8s"),
    ("ssa_frame_size", 8, "I"),    # SECS.SSAFRAMESIZE, in pages
    ("size", 12, "Q"),             # SECS.SIZE, a power of two
    ("reserved", 20, "44s"),
])
EADD = FieldTable("EADD record", 64, [
    ("tag", 0, "8s"),
    ("offset", 8, "Q"),            # page offset from the enclave base
    ("secinfo_flags", 16, "Q"),
    ("reserved", 24, "40s"),
])
EEXTEND = FieldTable("EEXTEND record", 64, [
    ("tag", 0, "8s"),
    ("offset", 8, "Q"),            # offset of the 256-byte chunk; the chunk follows
    ("reserved", 16, "48s"),
])
ECREATE_TAG = b"ECREATE\0"
EADD_TAG = b"EADD\0\0\0\0"
EEXTEND_TAG = b"EEXTEND\0"
EEXTEND_CHUNK = 256
CHUNKS_PER_PAGE = PAGE_SIZE // EEXTEND_CHUNK

# A measured page's records: EADD, then (EEXTEND header, 256-byte chunk) x 16. The
# format follows the tables above (offsets 0, 8, 16 of each record, zeros after).
_MEASURED_PAGE = struct.Struct("<8sQQ40x" + "8sQ48x256s" * CHUNKS_PER_PAGE)

# EADD runs: records are written 65,536 at a time (4 MiB) into a reused buffer.
EADD_RUN_PAGES = 65536
_U32_PER_RECORD = EADD.size // 4
_WINDOW_PAGES = 1 << 20           # pages in 4 GiB: the low 32 bits of an offset repeat


def ecreate_record(layout: EnclaveLayout) -> bytes:
    return ECREATE.pack({"tag": ECREATE_TAG, "ssa_frame_size": layout.ssa_frame_size,
                         "size": layout.enclave_size})


def eadd_record(offset: int, flags: int) -> bytes:
    return EADD.pack({"tag": EADD_TAG, "offset": offset, "secinfo_flags": flags})


def measured_page_records(offset: int, flags: int, contents: bytes) -> bytes:
    """EADD then the sixteen EEXTENDs (header + chunk) of one measured page."""
    if len(contents) != PAGE_SIZE:
        raise ValueError(f"a page is {PAGE_SIZE} bytes, got {len(contents)}")
    args = [EADD_TAG, offset, flags]
    for at in range(0, PAGE_SIZE, EEXTEND_CHUNK):
        args += (EEXTEND_TAG, offset + at, contents[at:at + EEXTEND_CHUNK])
    return _MEASURED_PAGE.pack(*args)


class _EaddWriter:
    """EADD records of page runs, written into one buffer per SECINFO flags value."""

    def __init__(self):
        self.buffers = {}             # flags -> array('I') of EADD_RUN_PAGES records
        self.low = array.array("I")   # low 32 bits of page offsets: 0, 4096, 8192, ...
        self.high = {}                # high 32 bits -> array('I') of EADD_RUN_PAGES copies

    def _buffer(self, flags: int):
        buf = self.buffers.get(flags)
        if buf is None:
            one = eadd_record(0, flags)
            buf = array.array("I")
            buf.frombytes(one * EADD_RUN_PAGES)
            if sys.byteorder != "little":
                buf.byteswap()      # the columns below are written as native integers
            self.buffers[flags] = buf
        return buf

    def _low(self, first: int, count: int):
        if len(self.low) < first + count:
            # grown once, to the highest page index within a 4 GiB window seen so far
            self.low = array.array("I", range(0, min(_WINDOW_PAGES, 2 * (first + count))
                                              * PAGE_SIZE, PAGE_SIZE))
        return self.low[first:first + count]

    def _high(self, value: int):
        column = self.high.get(value)
        if column is None:
            column = self.high[value] = array.array("I", [value]) * EADD_RUN_PAGES
        return column

    def fill(self, flags: int, at: int, offset: int, pages: int) -> None:
        """Records of ``pages`` pages from ``offset`` at record ``at`` of the buffer
        (``at + pages`` must fit in a window and in EADD_RUN_PAGES)."""
        buf = self._buffer(flags)
        first = (offset & 0xFFFFFFFF) // PAGE_SIZE
        start, stop = at * _U32_PER_RECORD, (at + pages) * _U32_PER_RECORD
        buf[start + 2:stop:_U32_PER_RECORD] = self._low(first, pages)
        buf[start + 3:stop:_U32_PER_RECORD] = self._high(offset >> 32)[:pages]

    def view(self, flags: int, records: int):
        buf = self._buffer(flags)
        if sys.byteorder == "little":
            return memoryview(buf).cast("B")[:records * EADD.size]
        out = buf[:records * _U32_PER_RECORD]     # a copy, back in little-endian order
        out.byteswap()
        return out.tobytes()

    def run(self, update, offset: int, pages: int, flags: int) -> None:
        """Hash the records of ``pages`` consecutive pages from ``offset``."""
        while pages:
            # a piece stays inside one 4 GiB window (one high half) and one buffer
            in_window = _WINDOW_PAGES - (offset & 0xFFFFFFFF) // PAGE_SIZE
            n = min(pages, EADD_RUN_PAGES, in_window)
            self.fill(flags, 0, offset, n)
            update(self.view(flags, n))
            offset += n * PAGE_SIZE
            pages -= n


def _thread_records(update, eadd: _EaddWriter, layout: EnclaveLayout, run: ThreadRun):
    """The records of every live thread of ``run``; a thread's EADDs (SSA frames, then
    the kernel stack) go into the buffer together, behind its TCS page's records."""
    tcs, ssa, stack = (next(r for r in run.template if r.name == name)
                       for name in ("tcs", "ssa", "kernel_stack"))
    if tcs.kind != MEASURED:
        return      # EDMM-reserved threads are not built, so not measured
    if ssa.flags != stack.flags or ssa.pages + stack.pages > EADD_RUN_PAGES:
        raise AssertionError("the thread slot does not fit the measurement's fast path")
    # The TCS page: zero but for the fields of layout.TCS; only OSSA varies per thread,
    # and it lies in the first 256-byte chunk.
    template = layout.tcs_page_at(0)
    ossa_at = 16
    first_chunk = bytearray(template[:EEXTEND_CHUNK])
    zero_chunk = bytes(EEXTEND_CHUNK)
    if any(template[EEXTEND_CHUNK:]):
        raise AssertionError("the TCS page has fields beyond its first chunk")
    for t in range(run.first, run.first + run.count):
        base = run.slot(t)
        tcs_at, ssa_at = base + tcs.offset, base + ssa.offset
        struct.pack_into("<Q", first_chunk, ossa_at, ssa_at)
        args = [EADD_TAG, tcs_at, tcs.flags, EEXTEND_TAG, tcs_at, bytes(first_chunk)]
        for at in range(EEXTEND_CHUNK, PAGE_SIZE, EEXTEND_CHUNK):
            args += (EEXTEND_TAG, tcs_at + at, zero_chunk)
        update(_MEASURED_PAGE.pack(*args))
        stack_at = base + stack.offset
        if (ssa_at ^ (stack_at + stack.size - 1)) >> 32:
            # the slot straddles a 4 GiB boundary: the general path splits it
            eadd.run(update, ssa_at, ssa.pages, ssa.flags)
            eadd.run(update, stack_at, stack.pages, stack.flags)
            continue
        eadd.fill(ssa.flags, 0, ssa_at, ssa.pages)
        eadd.fill(ssa.flags, ssa.pages, stack_at, stack.pages)
        update(eadd.view(ssa.flags, ssa.pages + stack.pages))


def feed_measurement(update, layout: EnclaveLayout, manifest: bytes,
                     config_mac: bytes) -> None:
    """Call ``update`` with the bytes SGX hashes, in order. A piece may be a view of a
    reused buffer: it is valid only until ``update`` returns."""
    layout.check_inputs(manifest, config_mac)
    update(ecreate_record(layout))
    eadd = _EaddWriter()
    for area in layout.areas:
        if isinstance(area, ThreadRun):
            _thread_records(update, eadd, layout, area)
        elif area.kind == MEASURED:
            for offset, contents in layout.measured_pages(area, manifest, config_mac):
                update(measured_page_records(offset, area.flags, contents))
        elif area.kind == ADDED:
            eadd.run(update, area.offset, area.pages, area.flags)
        # guard and EDMM-reserved pages are not built at all, so not measured


def measure(layout: EnclaveLayout, manifest: bytes, config_mac: bytes) -> bytes:
    """MRENCLAVE (32 bytes) of the enclave ``layout`` describes.

    ``manifest`` and ``config_mac`` must be the ones the layout was made from (their
    lengths are checked; their contents are what is measured).
    """
    h = hashlib.sha256()
    feed_measurement(h.update, layout, bytes(manifest), bytes(config_mac))
    return h.digest()


__all__ = ["ECREATE", "EADD", "EEXTEND", "feed_measurement", "measure",
           "measured_page_records"]

"""MRENCLAVE: the SGX measurement of an enclave layout.

SGX measures an enclave while it is built: ECREATE starts a SHA-256 with a 64-byte
record, every EADD appends a record with the page's offset and SECINFO flags, every
EEXTEND appends a record with a 256-byte chunk's offset followed by the chunk. EINIT
finalises the hash into MRENCLAVE. The record formats are in docs/sgx-facts.md; this
module replays the instructions an SGX loader would issue for an EnclaveLayout.

Speed matters: the default Occlum.json gives about 95,000 pages that are added but not
measured, so their EADD records are produced as one array operation per region rather
than one Python call per page.
"""
from __future__ import annotations

import array
import hashlib
import sys
from typing import Iterator

from .fields import FieldTable
from .layout import ADDED, MEASURED, PAGE_SIZE, EnclaveLayout

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

_EADD_WORDS = EADD.size // 8
_EADD_TAG_WORD = int.from_bytes(EADD_TAG, "little")


def ecreate_record(layout: EnclaveLayout) -> bytes:
    return ECREATE.pack({"tag": ECREATE_TAG, "ssa_frame_size": layout.ssa_frame_size,
                         "size": layout.enclave_size})


def eadd_record(offset: int, flags: int) -> bytes:
    return EADD.pack({"tag": EADD_TAG, "offset": offset, "secinfo_flags": flags})


EADD_RUN_PAGES = 65536


def eadd_run(offset: int, pages: int, flags: int) -> bytes:
    """The EADD records of ``pages`` consecutive pages, built as one u64 array.

    A record is eight little-endian u64 words: tag, offset, flags, then zeros; filling
    the three columns with strided slice assignment runs in C.
    """
    words = array.array("Q", bytes(pages * EADD.size))
    words[0::_EADD_WORDS] = array.array("Q", [_EADD_TAG_WORD]) * pages
    words[1::_EADD_WORDS] = array.array("Q", range(offset, offset + pages * PAGE_SIZE,
                                                   PAGE_SIZE))
    words[2::_EADD_WORDS] = array.array("Q", [flags]) * pages
    if sys.byteorder != "little":
        words.byteswap()
    return words.tobytes()


def measured_page_records(offset: int, flags: int, contents: bytes) -> bytes:
    """EADD then the sixteen EEXTENDs (header + chunk) of one measured page."""
    if len(contents) != PAGE_SIZE:
        raise ValueError(f"a page is {PAGE_SIZE} bytes, got {len(contents)}")
    parts = [eadd_record(offset, flags)]
    for at in range(0, PAGE_SIZE, EEXTEND_CHUNK):
        parts.append(EEXTEND.pack({"tag": EEXTEND_TAG, "offset": offset + at}))
        parts.append(contents[at:at + EEXTEND_CHUNK])
    return b"".join(parts)


def measurement_stream(layout: EnclaveLayout, manifest: bytes,
                       config_mac: bytes) -> Iterator[bytes]:
    """The bytes SGX hashes, in order, in pieces (one per page run or measured page)."""
    layout.check_inputs(manifest, config_mac)
    yield ecreate_record(layout)
    for region in layout.regions:
        if region.kind == MEASURED:
            for offset, contents in layout.measured_pages(region, manifest, config_mac):
                yield measured_page_records(offset, region.flags, contents)
        elif region.kind == ADDED:
            # in runs of at most 4 MiB of records: a huge user space stays cheap in memory
            for first in range(0, region.pages, EADD_RUN_PAGES):
                pages = min(EADD_RUN_PAGES, region.pages - first)
                yield eadd_run(region.offset + first * PAGE_SIZE, pages, region.flags)
        # guard and EDMM-reserved pages are not built at all, so not measured


def measure(layout: EnclaveLayout, manifest: bytes, config_mac: bytes) -> bytes:
    """MRENCLAVE (32 bytes) of the enclave ``layout`` describes.

    ``manifest`` and ``config_mac`` must be the ones the layout was made from (their
    lengths are checked; their contents are what is measured).
    """
    h = hashlib.sha256()
    for piece in measurement_stream(layout, bytes(manifest), bytes(config_mac)):
        h.update(piece)
    return h.digest()

"""The enclave layout: which pages an Occlum enclave has, where, and how each is built.

Occlum's enclave is built by the SGX SDK from a signed ELF and an Enclave.xml; here the
LibOS runs outside SGX, so the layout is derived directly from Occlum.json's
``resource_limits`` and the two build products that stand for the enclave's trusted
contents: the runtime manifest (hashes of the runtime code) and the MAC of the protected
internal config. The layout is what the measurement walks (measurement.py) and what
``occlum run`` re-measures before it boots, so it records every parameter needed for
that. docs/enclave-formats.md describes it; the order of regions below is the format.

Regions, in address order from the enclave base:

  manifest       runtime manifest, page by page           measured  R
  config         the config page (config MAC + layout)    measured  R
  guard          one page, never added
  kernel_heap    kernel_space_heap_size                   added     RW
                 (EDMM: up to kernel_space_heap_max_size reserved for EAUG)
  per thread t in 0 .. max_num_of_threads-1:
    guard        one page, never added
    tcs          one TCS page                              measured  TCS
    ssa          NSSA frames of SSA_FRAME_SIZE pages       added     RW
    guard        one page below the stack (catches overflow)
    kernel_stack kernel_space_stack_size                   added     RW
                 (EDMM: threads from init_num_of_threads on are reserved)
  guard          one page, never added
  user_space     user_space_size                           added     RWX
                 (EDMM: up to user_space_max_size reserved for EAUG)

The enclave size (ECREATE) is the next power of two at or above the end of the last
region, as SGX requires a naturally aligned power-of-two ELRANGE.

The threads' regions repeat with a fixed stride, so the layout keeps them as one
ThreadRun (per-thread template, count, stride) rather than five Regions per thread:
10,000 threads then cost a few objects, not 50,000 (``regions`` still expands them).

Limits (sgx/limits.py): the enclave size is at most MAX_ENCLAVE_SIZE,
the largest power-of-two ELRANGE that the SGX SDK's signer accepts (it refuses an enclave
of 0x1F_FFFF_FFFF bytes or more) and the MaxEnclaveSize_64 (2^36) of many SGX CPUs; and
at most MAX_THREADS threads. Both keep the measurement, which `occlum run` repeats at
every start, around a second at worst.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from ..errors import ConfigError, IntegrityError
from .fields import FieldTable
from .limits import (NSSA, PAGE_SIZE, SSA_FRAME_SIZE, pages_for, size_limit_problem,
                     thread_slot_pages)


# SECINFO.FLAGS (SDM): permissions in bits 0-2, page type in bits 8-15.
SECINFO_R = 0x1
SECINFO_W = 0x2
SECINFO_X = 0x4
PT_TCS = 0x1 << 8
PT_REG = 0x2 << 8
FLAGS_R = PT_REG | SECINFO_R
FLAGS_RW = PT_REG | SECINFO_R | SECINFO_W
FLAGS_RWX = PT_REG | SECINFO_R | SECINFO_W | SECINFO_X
FLAGS_TCS = PT_TCS  # a TCS page carries no R/W/X bits


# How a region's pages are built; only "measured" and "added" pages exist at EINIT.
MEASURED = "measured"   # EADD + 16 EEXTEND per page: contents are part of MRENCLAVE
ADDED = "added"         # EADD only: the page starts zeroed, only its offset and flags count
GUARD = "guard"         # never added: an access faults
RESERVED = "reserved"   # EDMM: inside ELRANGE, committed later with EAUG, not measured
KINDS = (MEASURED, ADDED, GUARD, RESERVED)

LAYOUT_FORMAT = "occlum-py enclave layout"
# The version of the layout itself, measured in the config page; the file that records
# it (build/lib/enclave.layout) has its own version: version 2 lists the threads as runs.
LAYOUT_VERSION = 1
LAYOUT_FILE_VERSION = 2


CONFIG_MAGIC = b"OCCLUM-PY-CONFIG"
# The measured config page. Besides the config MAC it repeats every layout parameter,
# as the SDK measures its layout table: then MRENCLAVE changes with every parameter even
# where the page records alone would not show it (a reserved EDMM range, a manifest whose
# length changes only in trailing zeros of its last page).
CONFIG_PAGE = FieldTable("config page", PAGE_SIZE, [
    ("magic", 0, "16s"),
    ("version", 16, "I"),
    ("config_mac_size", 20, "I"),
    ("config_mac", 24, "32s"),
    ("manifest_size", 56, "Q"),
    ("enclave_size", 64, "Q"),
    ("kernel_space_heap_size", 72, "Q"),
    ("kernel_space_heap_max_size", 80, "Q"),
    ("kernel_space_stack_size", 88, "Q"),
    ("user_space_size", 96, "Q"),
    ("user_space_max_size", 104, "Q"),
    ("max_num_of_threads", 112, "I"),
    ("init_num_of_threads", 116, "I"),
    ("ssa_frame_size", 120, "I"),
    ("nssa", 124, "I"),
    ("enable_edmm", 128, "I"),
    ("reserved", 132, f"{PAGE_SIZE - 132}s"),
])

# TCS (SDM 34.8). Offsets are relative to the enclave base. The emulated runtime keeps
# its per-thread data in Python, so FS/GS bases are zero; OENTRY is offset 0, where the
# runtime (represented by its manifest) begins.
TCS = FieldTable("TCS", PAGE_SIZE, [
    ("state", 0, "Q"),       # hardware-owned, zero when added
    ("flags", 8, "Q"),       # DBGOPTIN is set by a debugger later, never measured
    ("ossa", 16, "Q"),
    ("cssa", 24, "I"),
    ("nssa", 28, "I"),
    ("oentry", 32, "Q"),
    ("aep", 40, "Q"),        # hardware-owned
    ("ofsbasgx", 48, "Q"),
    ("ogsbasgx", 56, "Q"),
    ("fslimit", 64, "I"),
    ("gslimit", 68, "I"),
    ("reserved", 72, f"{PAGE_SIZE - 72}s"),
])
TCS_ENTRY = 0
TCS_SEGMENT_LIMIT = 0xFFF

# Layout parameters, in the order they are recorded (to_json, the config page).
PARAMETERS = (
    "manifest_size", "config_mac_size",
    "kernel_space_heap_size", "kernel_space_heap_max_size", "kernel_space_stack_size",
    "user_space_size", "user_space_max_size",
    "max_num_of_threads", "init_num_of_threads",
    "ssa_frame_size", "nssa", "enable_edmm",
)
CONFIG_MAC_SIZES = (16, 32)


def next_power_of_two(value: int) -> int:
    return 1 << max(value - 1, 1).bit_length()


@dataclass(frozen=True)
class Region:
    """A run of pages built the same way."""

    name: str
    offset: int          # bytes from the enclave base, page aligned
    pages: int
    kind: str            # one of KINDS
    flags: int           # SECINFO flags the pages are (or, if reserved, will be) added with
    thread: int | None = None

    @property
    def size(self) -> int:
        return self.pages * PAGE_SIZE

    @property
    def end(self) -> int:
        return self.offset + self.size

    def to_dict(self) -> dict:
        return {"name": self.name, "offset": self.offset, "pages": self.pages,
                "kind": self.kind, "secinfo": self.flags}


@dataclass(frozen=True)
class ThreadRun:
    """Threads ``first`` .. ``first + count - 1``, each a copy of ``template`` (Regions
    with offsets relative to the thread's slot), the slots ``stride`` bytes apart."""

    first: int
    count: int
    offset: int
    stride: int
    template: tuple

    @property
    def end(self) -> int:
        return self.offset + self.count * self.stride

    def slot(self, thread: int) -> int:
        return self.offset + (thread - self.first) * self.stride

    def regions_of(self, thread: int) -> list:
        base = self.slot(thread)
        return [Region(r.name, base + r.offset, r.pages, r.kind, r.flags, thread)
                for r in self.template]

    def to_dict(self) -> dict:
        return {"name": "threads", "offset": self.offset, "first_thread": self.first,
                "threads": self.count, "stride": self.stride,
                "each": [r.to_dict() for r in self.template]}


def _int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError([f"{where}: expected a size in bytes (an integer), got {value!r}"])
    if value < 0:
        raise ConfigError([f"{where}: must not be negative, got {value}"])
    return value


class EnclaveLayout:
    """The regions of one enclave, derived from its parameters (see module docstring)."""

    def __init__(self, *, manifest_size: int, config_mac_size: int,
                 kernel_space_heap_size: int, kernel_space_stack_size: int,
                 user_space_size: int, max_num_of_threads: int,
                 kernel_space_heap_max_size: int | None = None,
                 user_space_max_size: int | None = None,
                 init_num_of_threads: int | None = None,
                 enable_edmm: bool = False,
                 ssa_frame_size: int = SSA_FRAME_SIZE, nssa: int = NSSA):
        rl = "resource_limits."
        if _int(manifest_size, "manifest_size") == 0:
            raise ConfigError(["the runtime manifest is empty"])
        if config_mac_size not in CONFIG_MAC_SIZES:
            raise ConfigError([f"the config MAC is {config_mac_size} bytes; expected 16 or 32"])
        for name, value in (("kernel_space_heap_size", kernel_space_heap_size),
                            ("kernel_space_stack_size", kernel_space_stack_size),
                            ("user_space_size", user_space_size),
                            ("max_num_of_threads", max_num_of_threads)):
            if _int(value, rl + name) == 0:
                raise ConfigError([f"{rl}{name}: must be greater than 0"])
        if not (isinstance(ssa_frame_size, int) and isinstance(nssa, int)
                and 1 <= ssa_frame_size <= 16 and 1 <= nssa <= 16):
            raise ConfigError([f"SSA frames: size {ssa_frame_size} pages x {nssa} is invalid"])
        enable_edmm = bool(enable_edmm)
        # Sizes are rounded up to whole pages: SGX builds enclaves from pages.
        heap = pages_for(kernel_space_heap_size) * PAGE_SIZE
        stack = pages_for(kernel_space_stack_size) * PAGE_SIZE
        user = pages_for(user_space_size) * PAGE_SIZE
        if enable_edmm:
            heap_max = pages_for(_int(kernel_space_heap_max_size or heap,
                                      rl + "kernel_space_heap_max_size")) * PAGE_SIZE
            user_max = pages_for(_int(user_space_max_size or user,
                                      rl + "user_space_max_size")) * PAGE_SIZE
            init_threads = _int(init_num_of_threads or max_num_of_threads,
                                rl + "init_num_of_threads")
            if heap_max < heap:
                raise ConfigError([f"{rl}kernel_space_heap_max_size: smaller than "
                                   "kernel_space_heap_size"])
            if user_max < user:
                raise ConfigError([f"{rl}user_space_max_size: smaller than user_space_size"])
            if not 1 <= init_threads <= max_num_of_threads:
                raise ConfigError([f"{rl}init_num_of_threads: must be between 1 and "
                                   f"max_num_of_threads ({max_num_of_threads})"])
        else:
            # Without EDMM every page must exist at EINIT: the *_max_size and
            # init_num_of_threads knobs have no meaning and are normalised away, so
            # that setting them cannot change MRENCLAVE.
            heap_max, user_max, init_threads = heap, user, max_num_of_threads
        # Refused before anything is derived: a huge layout must fail fast, not slowly.
        problem = size_limit_problem(
            manifest_size=manifest_size, kernel_space_heap_max_size=heap_max,
            kernel_space_stack_size=stack, max_num_of_threads=max_num_of_threads,
            user_space_max_size=user_max,
            heap_field="kernel_space_heap_max_size" if enable_edmm else "kernel_space_heap_size",
            user_field="user_space_max_size" if enable_edmm else "user_space_size")
        if problem:
            raise ConfigError([f"{rl}{problem[0]}: {problem[1]}"])
        self.manifest_size = manifest_size
        self.config_mac_size = config_mac_size
        self.kernel_space_heap_size = heap
        self.kernel_space_heap_max_size = heap_max
        self.kernel_space_stack_size = stack
        self.user_space_size = user
        self.user_space_max_size = user_max
        self.max_num_of_threads = max_num_of_threads
        self.init_num_of_threads = init_threads
        self.ssa_frame_size = ssa_frame_size
        self.nssa = nssa
        self.enable_edmm = enable_edmm
        self.areas: tuple = self._derive_areas()
        self.enclave_size = next_power_of_two(self.areas[-1].end)
        self._regions = None

    # --- construction -----------------------------------------------------------

    @classmethod
    def from_config(cls, resolved: Mapping, manifest: bytes, config_mac: bytes) -> "EnclaveLayout":
        """The layout of the enclave described by a resolved Occlum.json."""
        try:
            limits = resolved["resource_limits"]
        except (KeyError, TypeError):
            raise ConfigError(["resource_limits: missing"]) from None
        missing = [k for k in ("kernel_space_heap_size", "kernel_space_stack_size",
                               "user_space_size", "max_num_of_threads") if k not in limits]
        if missing:
            raise ConfigError([f"resource_limits.{k}: missing" for k in missing])
        feature = resolved.get("feature") or {}
        return cls(
            manifest_size=len(manifest),
            config_mac_size=len(config_mac),
            kernel_space_heap_size=limits["kernel_space_heap_size"],
            kernel_space_heap_max_size=limits.get("kernel_space_heap_max_size"),
            kernel_space_stack_size=limits["kernel_space_stack_size"],
            user_space_size=limits["user_space_size"],
            user_space_max_size=limits.get("user_space_max_size"),
            max_num_of_threads=limits["max_num_of_threads"],
            init_num_of_threads=limits.get("init_num_of_threads"),
            enable_edmm=bool(feature.get("enable_edmm", False)),
        )

    def _derive_areas(self) -> tuple:
        """Global Regions and ThreadRuns, in address order (the module docstring)."""
        areas: list = []
        at = 0

        def add(name, pages, kind, flags=0):
            nonlocal at
            if pages:
                areas.append(Region(name, at, pages, kind, flags))
                at += pages * PAGE_SIZE

        add("manifest", pages_for(self.manifest_size), MEASURED, FLAGS_R)
        add("config", 1, MEASURED, FLAGS_R)
        add("guard", 1, GUARD)
        heap_pages = pages_for(self.kernel_space_heap_size)
        add("kernel_heap", heap_pages, ADDED, FLAGS_RW)
        add("kernel_heap", pages_for(self.kernel_space_heap_max_size) - heap_pages,
            RESERVED, FLAGS_RW)
        stride = thread_slot_pages(self.kernel_space_stack_size, self.nssa,
                                   self.ssa_frame_size) * PAGE_SIZE
        for first, count, live in ((0, self.init_num_of_threads, True),
                                   (self.init_num_of_threads,
                                    self.max_num_of_threads - self.init_num_of_threads, False)):
            if count:
                areas.append(ThreadRun(first, count, at, stride, self._thread_template(live)))
                at += count * stride
        add("guard", 1, GUARD)
        user_pages = pages_for(self.user_space_size)
        add("user_space", user_pages, ADDED, FLAGS_RWX)
        add("user_space", pages_for(self.user_space_max_size) - user_pages, RESERVED,
            FLAGS_RWX)
        return tuple(areas)

    def _thread_template(self, live: bool) -> tuple:
        """One thread's slot: guard, TCS, SSA, guard below the stack, kernel stack."""
        kind_tcs, kind_rest = (MEASURED, ADDED) if live else (RESERVED, RESERVED)
        ssa_pages = self.nssa * self.ssa_frame_size
        return (Region("guard", 0, 1, GUARD, 0),
                Region("tcs", PAGE_SIZE, 1, kind_tcs, FLAGS_TCS),
                Region("ssa", 2 * PAGE_SIZE, ssa_pages, kind_rest, FLAGS_RW),
                Region("guard", (2 + ssa_pages) * PAGE_SIZE, 1, GUARD, 0),
                Region("kernel_stack", (3 + ssa_pages) * PAGE_SIZE,
                       pages_for(self.kernel_space_stack_size), kind_rest, FLAGS_RW))

    # --- queries ----------------------------------------------------------------

    def parameters(self) -> dict:
        return {name: getattr(self, name) for name in PARAMETERS}

    def __eq__(self, other) -> bool:
        return isinstance(other, EnclaveLayout) and self.parameters() == other.parameters()

    def __hash__(self) -> int:
        return hash(tuple(self.parameters().values()))

    def __repr__(self) -> str:
        return f"EnclaveLayout(enclave_size={self.enclave_size:#x}, {self.parameters()})"

    @property
    def regions(self) -> tuple:
        """Every region, the threads' expanded (for inspection; the measurement and the
        file use ``areas``)."""
        if self._regions is None:
            out = []
            for area in self.areas:
                if isinstance(area, ThreadRun):
                    for t in range(area.first, area.first + area.count):
                        out.extend(area.regions_of(t))
                else:
                    out.append(area)
            self._regions = tuple(out)
        return self._regions

    def _run_of(self, thread: int) -> ThreadRun:
        for area in self.areas:
            if isinstance(area, ThreadRun) and area.first <= thread < area.first + area.count:
                return area
        raise KeyError(f"no thread {thread}")

    def region(self, name: str, thread: int | None = None, kind: str | None = None) -> Region:
        """The first region called ``name`` (of ``thread``, of ``kind`` if given)."""
        if thread is None:
            candidates = [a for a in self.areas if isinstance(a, Region)]
        else:
            candidates = self._run_of(thread).regions_of(thread)
        for r in candidates:
            if r.name == name and (kind is None or r.kind == kind):
                return r
        raise KeyError(f"no region {name!r} for thread {thread}")

    def thread_regions(self, thread: int) -> dict[str, Region]:
        """``tcs``, ``ssa`` and ``kernel_stack`` of one thread."""
        return {r.name: r for r in self._run_of(thread).regions_of(thread) if r.kind != GUARD}

    @property
    def tcs_offsets(self) -> list[int]:
        return [area.slot(t) + PAGE_SIZE for area in self.areas if isinstance(area, ThreadRun)
                for t in range(area.first, area.first + area.count)]

    @property
    def total_size(self) -> int:
        """End of the last region; ELRANGE (enclave_size) rounds this up."""
        return self.areas[-1].end

    def count_pages(self, kind: str) -> int:
        total = 0
        for area in self.areas:
            if isinstance(area, ThreadRun):
                total += area.count * sum(r.pages for r in area.template if r.kind == kind)
            elif area.kind == kind:
                total += area.pages
        return total

    # --- page contents of measured regions -------------------------------------

    def check_inputs(self, manifest: bytes, config_mac: bytes) -> None:
        """Refuse a manifest or config MAC the layout was not made for."""
        if len(manifest) != self.manifest_size:
            raise IntegrityError(f"runtime manifest: {len(manifest)} bytes, the enclave "
                                 f"layout was made for {self.manifest_size}")
        if len(config_mac) != self.config_mac_size:
            raise IntegrityError(f"config MAC: {len(config_mac)} bytes, the enclave "
                                 f"layout was made for {self.config_mac_size}")

    def config_page(self, config_mac: bytes) -> bytes:
        values = dict(self.parameters(), magic=CONFIG_MAGIC, version=LAYOUT_VERSION,
                      config_mac=bytes(config_mac), enclave_size=self.enclave_size,
                      enable_edmm=int(self.enable_edmm))
        return CONFIG_PAGE.pack(values)

    def tcs_page(self, thread: int) -> bytes:
        return self.tcs_page_at(self.region("ssa", thread).offset)

    def tcs_page_at(self, ossa: int) -> bytes:
        """The TCS page of a thread whose first SSA frame is at ``ossa``."""
        return TCS.pack({"ossa": ossa, "cssa": 0, "nssa": self.nssa,
                         "oentry": TCS_ENTRY, "ofsbasgx": 0, "ogsbasgx": 0,
                         "fslimit": TCS_SEGMENT_LIMIT, "gslimit": TCS_SEGMENT_LIMIT})

    def measured_pages(self, region: Region, manifest: bytes, config_mac: bytes):
        """Yield (offset, 4096-byte contents) of each page of a measured region."""
        if region.name == "manifest":
            for i in range(region.pages):
                chunk = manifest[i * PAGE_SIZE:(i + 1) * PAGE_SIZE]
                yield region.offset + i * PAGE_SIZE, chunk.ljust(PAGE_SIZE, b"\0")
        elif region.name == "config":
            yield region.offset, self.config_page(config_mac)
        elif region.name == "tcs":
            yield region.offset, self.tcs_page(region.thread)
        else:
            raise AssertionError(f"region {region.name} has no measured contents")

    # --- serialisation (build/lib/enclave.layout) ------------------------------

    def _document(self) -> dict:
        return {
            "format": LAYOUT_FORMAT,
            "version": LAYOUT_FILE_VERSION,
            "page_size": PAGE_SIZE,
            "enclave_size": self.enclave_size,
            "parameters": self.parameters(),
            "regions": [a.to_dict() for a in self.areas],
        }

    def to_json(self) -> str:
        return json.dumps(self._document(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "enclave.layout") -> "EnclaveLayout":
        """Read a layout; the regions must follow from its parameters.

        The file is not signed, but launch re-measures from it, so an edited file can
        only produce a different MRENCLAVE; the consistency check turns such an edit
        into a clear message instead of a bare measurement mismatch.
        """
        try:
            doc = json.loads(text)
            if doc.get("format") != LAYOUT_FORMAT:
                raise ValueError(f"not an enclave layout (format {doc.get('format')!r})")
            if doc.get("version") != LAYOUT_FILE_VERSION:
                raise ValueError(f"layout file version {doc.get('version')!r}, this "
                                 f"runtime reads {LAYOUT_FILE_VERSION} (run `occlum build`)")
            params = doc["parameters"]
            unknown = set(params) - set(PARAMETERS)
            if unknown:
                raise ValueError(f"unknown parameters {sorted(unknown)}")
            layout = cls(**params)
        except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
            detail = exc.args[0] if isinstance(exc, KeyError) else str(exc)
            raise IntegrityError(f"{source}: unreadable enclave layout: {detail}") from None
        if doc != layout._document():
            raise IntegrityError(f"{source}: its regions do not follow from its parameters "
                                 "(the file was edited or written by another version)")
        return layout

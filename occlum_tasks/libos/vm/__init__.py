"""Memory: the shared user space, its Unicorn regions, and each process's VMAs.

`boot` creates the enclave-wide pieces once; every process then gets a `ProcessVM`
from `new_process_vm`. Other subsystems reach process memory only through
`vm.user_mem` (checked copies) and the functions here.

Region layout, measured (unicorn 2.1.4, this machine kind, a loaded 2-core box; CPU
seconds inside emu_start, best of 3; bench/unicorn_layouts.py, bare harness).
Unicorn stubs QEMU's dirty tracking, so a store goes through the C slow path (~46 ns
against ~6 ns for a load) unless notdirty_write() can clear TLB_NOTDIRTY, which it does
only for a TLB entry without execute permission and with no UC_HOOK_MEM_* hook on the
address. cpu.py therefore runs the virtual TLB with a fill hook giving each entry its
region's permissions, and installs no memory hook:
  ranges over several runs; 5 MB sieve x4 / call-heavy fib(32) / register-only loop:
    before: default TLB, UC_HOOK_MEM_INVALID over everything   2.28-2.68 / 0.44-0.60 / 0.32-0.49
    default TLB, no memory hook                                2.29-2.42 / 0.44-0.55 / 0.33-0.43
    virtual TLB, no fill hook (entry = the access that filled)  0.55-0.66 / 0.49-0.53 / 0.40-0.45
    virtual TLB + fill hook, TLB regrown (the LibOS's choice)   0.37-0.57 / 0.11-0.12 / 0.32-0.42
      the same with every page RWX                             2.81-3.25 / 0.50-0.62
      the same on Unicorn-allocated memory (uc_mem_map)         0.42-0.46 / 0.13-0.15
      the same with 200 unrelated regions mapped                0.39-0.43 / 0.12-0.18
  in the LibOS (run_program, CPU of the whole run): sieve x4 2.25 s -> 0.42 s, fib(32)
  0.51 s -> 0.12 s, getppid unchanged (~2.5-3 us a call). The price: every Unicorn
  map/unmap/protect flushes the whole TLB and the refill goes through Python (~1-2 us
  a page): mmap + munmap between passes over 1,000 pages went from 0.52 ms to ~2.5 ms
  a round (bench/libos.py, row f).
  mapping ops: mem_map_ptr ~10 us at any size; unmap/split ~25 us per MiB
  (page-by-page TLB flush); mem_protect split of a 64 MiB Unicorn-allocated region
  100 ms (it copies), of a host-backed one no copy; the fill hook's copy of the region
  list ~8 us per change.
Hence: host-backed regions, W^X, a process's writable image segment and its stack
laid out adjacent and mapped as one region (then the heap), merges bounded by
regions.MERGE_LIMIT.
"""
from .process_vm import ProcessVM
from .regions import Regions
from .user_space import PAGE_SIZE, UserSpace, page_down, page_up  # noqa: F401

_space = None
_regions = None


def boot(cpu, user_space_size: int) -> None:
    global _space, _regions
    _space = UserSpace(user_space_size)
    _regions = Regions(cpu, _space)


def shutdown() -> None:
    global _space, _regions
    _regions = None
    _space = None


def space() -> UserSpace:
    return _space


def region_map() -> Regions:
    return _regions


def new_process_vm() -> ProcessVM:
    return ProcessVM(_space, _regions)


def maps(process_vm):
    """The VMAs of a process in address order, as /proc/<pid>/maps shows them:
    (start, end, prot, kind, name, file_offset)."""
    return [(v.start, v.end, v.prot, v.kind, v.name, v.file_offset) for v in process_vm.vmas]


def usage():
    """(user_space_size, bytes free in it): what /proc/meminfo reports."""
    return _space.size, _space.free_bytes

"""Memory: the shared user space, its Unicorn regions, and each process's VMAs.

`boot` creates the enclave-wide pieces once; every process then gets a `ProcessVM`
from `new_process_vm`. Other subsystems reach process memory only through
`vm.user_mem` (checked copies) and the functions here.

Region layout, measured (unicorn 2.1.4, this machine kind, a loaded 2-core box; CPU
seconds, best of 5). Every guest store takes Unicorn's slow path (its dirty tracking is
stubbed, so TLB_NOTDIRTY is never cleared): ~46 ns per store against ~6 ns per load;
the slow path looks the address up in the flat view, behind a one-entry cache.
  in the LibOS, 5 MiB sieve x4 (store bound, .bss) / call-heavy loop (stack + .bss):
    this layout 2.25 s / 3.03 s; one region per VMA 2.41 s / 3.37 s;
    the same layout with every page RWX 3.17 s / 4.63 s
  prototype, sieve: Unicorn-allocated regions 2.17 s, host-backed 2.06 s, with 200
    unrelated regions 2.31 s; call-heavy loop with stack and data in separate regions
    3.25 s, in one region 2.77 s (`phys_page_find` falls from 15% of the profile to 0)
  mapping ops: mem_map_ptr ~10 us at any size; unmap/split ~25 us per MiB
  (page-by-page TLB flush); mem_protect split of a 64 MiB Unicorn-allocated region
  100 ms (it copies), of a host-backed one no copy.
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

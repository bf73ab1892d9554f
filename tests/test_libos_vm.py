"""The LibOS memory pieces without a guest: user space budget, Unicorn region layout,
VMAs and the Linux semantics of ProcessVM (file mappings included)."""
import pytest

from occlum_tasks.libos.cpu import Cpu
from occlum_tasks.libos.errno import EEXIST, EFAULT, EINVAL, ENOMEM, SysError
from occlum_tasks.libos.vm import PAGE_SIZE, Regions, UserSpace
from occlum_tasks.libos.vm.process_vm import MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, ProcessVM
from occlum_tasks.libos.vm.regions import MERGE_LIMIT

RW, R, RX = 3, 1, 5
ANON = MAP_PRIVATE | MAP_ANONYMOUS


@pytest.fixture
def machine():
    cpu = Cpu()
    space = UserSpace(64 << 20)
    regions = Regions(cpu, space)
    return cpu, space, regions, ProcessVM(space, regions)


def errno_of(fn, *args):
    with pytest.raises(SysError) as info:
        fn(*args)
    return info.value.errno


def test_user_space_budget_and_reuse():
    space = UserSpace(1 << 20)
    a = space.alloc(512 << 10)
    b = space.alloc(512 << 10)
    assert b == a + (512 << 10)
    assert errno_of(space.alloc, PAGE_SIZE) == ENOMEM
    space.write(a, b"dirty")
    space.free(a, a + (512 << 10))
    assert space.alloc(PAGE_SIZE) == a          # first fit, lowest address
    assert space.read(a, 5) == b"\0" * 5        # freed memory comes back zeroed
    space.free(a, a + PAGE_SIZE)
    space.free(b, b + (512 << 10))
    assert space.free_bytes == 1 << 20


def test_regions_merge_adjacent_mappings_and_unmap_holes(machine):
    cpu, space, regions, _vm = machine
    base = space.base
    for i in range(60):         # 60 adjacent 64 KiB mappings: one Unicorn region
        regions.set(base + i * 0x10000, base + (i + 1) * 0x10000, RW)
    assert cpu.regions() == [(base, base + 60 * 0x10000, RW)]
    regions.set(base + 0x10000, base + 0x20000, 0)                 # a hole splits it
    assert [r[:2] for r in cpu.regions()] == [(base, base + 0x10000), (base + 0x20000, base + 60 * 0x10000)]
    regions.set(base + 0x10000, base + 0x11000, RX)                # W^X: code is its own region
    assert (base + 0x10000, base + 0x11000, RX) in cpu.regions()
    assert cpu.regions() == sorted(regions.snapshot())


def test_regions_do_not_absorb_large_neighbours(machine):
    cpu, space, regions, _vm = machine
    base = space.base
    regions.set(base, base + 2 * MERGE_LIMIT, RW)
    regions.set(base + 2 * MERGE_LIMIT, base + 2 * MERGE_LIMIT + PAGE_SIZE, RW)
    # re-making the big region would cost ~25 us per MiB: the new page stays apart
    assert len(cpu.regions()) == 2


def test_mmap_munmap_mprotect_semantics(machine):
    cpu, space, _regions, vm = machine
    a = vm.do_mmap(0, 10 * PAGE_SIZE, RW, ANON)
    assert space.read(a, 16) == b"\0" * 16
    vm.check(a, 10 * PAGE_SIZE, RW)
    assert vm.do_mprotect(a, PAGE_SIZE, R) == 0
    assert errno_of(vm.check, a, 1, 2) == EFAULT             # no kernel write into it
    assert errno_of(vm.do_mprotect, a + 1, PAGE_SIZE, R) == EINVAL
    assert vm.do_munmap(a + 5 * PAGE_SIZE, PAGE_SIZE) == 0
    assert errno_of(vm.check, a + 5 * PAGE_SIZE, 1, 1) == EFAULT
    assert errno_of(vm.do_mprotect, a, 10 * PAGE_SIZE, R) == ENOMEM
    assert errno_of(vm.do_mmap, a, PAGE_SIZE, R, ANON | MAP_FIXED_NOREPLACE) == EEXIST
    assert vm.do_mmap(a + 5 * PAGE_SIZE, PAGE_SIZE, RW, ANON | MAP_FIXED) == a + 5 * PAGE_SIZE
    assert errno_of(vm.do_mmap, 0, 0, R, ANON) == EINVAL
    # the Unicorn view follows: read-only page, then read-write
    perms = {start: p for start, _end, p in cpu.regions()}
    assert perms[a] == R and perms[a + PAGE_SIZE] == RW
    vm.release()
    assert cpu.regions() == [] and space.free_bytes == space.size


def test_mmap_fixed_cannot_take_another_process_memory(machine):
    _cpu, space, regions, vm = machine
    other = ProcessVM(space, regions)
    theirs = other.do_mmap(0, PAGE_SIZE, RW, ANON)
    assert errno_of(vm.do_mmap, theirs, PAGE_SIZE, RW, ANON | MAP_FIXED) == ENOMEM
    assert vm.do_munmap(theirs, PAGE_SIZE) == 0   # nothing of ours there: a no-op, as Linux
    other.check(theirs, PAGE_SIZE, RW)          # still theirs, still mapped


def test_private_file_mapping_copies_and_resets(machine):
    _cpu, space, _regions, vm = machine
    data = bytes(range(256)) * 40                   # 10240 bytes: two and a half pages
    a = vm.do_mmap(0, len(data), RW, MAP_PRIVATE, file_data=data, file_offset=0)
    assert space.read(a, len(data)) == data
    assert space.read(a + len(data), 3 * PAGE_SIZE - len(data)) == b"\0" * (3 * PAGE_SIZE - len(data))
    b = vm.do_mmap(0, PAGE_SIZE, R, MAP_PRIVATE, file_data=data, file_offset=PAGE_SIZE)
    assert space.read(b, PAGE_SIZE) == data[PAGE_SIZE:2 * PAGE_SIZE]
    assert errno_of(vm.do_mmap, 0, PAGE_SIZE, R, MAP_PRIVATE, data, 100) == EINVAL
    space.write(a, b"changed")
    assert vm.do_madvise(a, PAGE_SIZE, 4) == 0      # MADV_DONTNEED: back to the file's bytes
    assert space.read(a, 7) == data[:7]


def test_mremap_grows_in_place_moves_and_shrinks(machine):
    _cpu, space, _regions, vm = machine
    a = vm.do_mmap(0, 2 * PAGE_SIZE, RW, ANON)
    space.write(a, b"keep")
    assert vm.do_mremap(a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0, 0) == a          # the next pages were free
    blocker = vm.do_mmap(0, PAGE_SIZE, RW, ANON)
    assert blocker == a + 4 * PAGE_SIZE
    assert errno_of(vm.do_mremap, a, 4 * PAGE_SIZE, 8 * PAGE_SIZE, 0, 0) == ENOMEM
    moved = vm.do_mremap(a, 4 * PAGE_SIZE, 8 * PAGE_SIZE, 1, 0)             # MREMAP_MAYMOVE
    assert moved != a and space.read(moved, 4) == b"keep"
    assert errno_of(vm.check, a, 1, 1) == EFAULT
    assert vm.do_mremap(moved, 8 * PAGE_SIZE, PAGE_SIZE, 0, 0) == moved
    assert errno_of(vm.check, moved + PAGE_SIZE, 1, 1) == EFAULT


def test_brk_stays_inside_the_heap(machine):
    _cpu, space, _regions, vm = machine
    from occlum_tasks.libos.vm.vma import Vma
    heap = vm.reserve(16 * PAGE_SIZE)
    vm.add_vma(Vma(heap, heap + 16 * PAGE_SIZE, RW, "heap"))
    vm.set_heap(heap, 16 * PAGE_SIZE)
    vm.sync_regions(heap, heap + 16 * PAGE_SIZE)
    assert vm.do_brk(0) == heap
    assert vm.do_brk(heap + 3 * PAGE_SIZE + 5) == heap + 3 * PAGE_SIZE + 5
    assert vm.do_brk(heap + 17 * PAGE_SIZE) == heap + 3 * PAGE_SIZE + 5        # past default_heap_size
    space.write(heap + 2 * PAGE_SIZE, b"x")
    assert vm.do_brk(heap + PAGE_SIZE) == heap + PAGE_SIZE
    assert space.read(heap + 2 * PAGE_SIZE, 1) == b"\0"                        # shrunk pages are zeroed

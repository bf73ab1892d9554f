"""The address space of one LibOS process: its VMAs inside the shared user space.

Linux semantics for brk, mmap, munmap, mprotect, mremap and madvise, with real page
permissions (enforced by the Unicorn regions) and the user space as a hard budget.
Where this differs from Linux it follows Occlum: the heap is reserved at its full
`default_heap_size` when the process starts, and memory between the program break
and the end of that reservation is accessible (but not counted as mapped).
"""
from ..errno import EEXIST, EFAULT, EINVAL, ENOMEM, SysError
from .regions import unicorn_perms
from .user_space import PAGE_SIZE, page_up
from .vma import Vma, VmaList

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000
MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE = 0x01, 0x02, 0x03, 0x0F
MAP_FIXED, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x10, 0x20, 0x100000
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MADV_DONTNEED, MADV_FREE = 4, 8
# advice that only tunes the kernel's paging: accepted, and there is nothing to do
_MADV_HINTS = {0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}


class ProcessVM:
    def __init__(self, space, regions):
        self._space = space
        self._regions = regions
        self.vmas = VmaList()
        self.heap_start = self.heap_end = self.brk = 0
        self.stack_start = self.stack_end = 0
        # RLIMIT_AS of the program (Occlum's ulimit -v: heap, stack and mmaps together);
        # None: only the shared user space bounds it
        self.as_limit = None
        self._last = None        # last VMA a user pointer was found in (most calls hit it)

    # ---- building a new process (the loader) ----------------------------------------
    def reserve(self, size: int) -> int:
        """Take a range for a new image; the caller fills all of it with VMAs."""
        return self._space.alloc(size)

    def add_vma(self, vma: Vma) -> None:
        """Record a VMA without touching the Unicorn regions (see `sync_regions`)."""
        self.vmas.insert(vma)

    def sync_regions(self, start: int, end: int) -> None:
        """Lay the Unicorn regions over [start, end) from the VMAs, one call per run of
        equal permissions, so that adjacent data VMAs become one region."""
        run_start, run_perms = start, None
        for vma in self.vmas.overlapping(start, end):
            perms = unicorn_perms(vma.prot)
            if perms != run_perms:
                if run_perms:
                    self._regions.set(run_start, vma.start, run_perms)
                run_start, run_perms = vma.start, perms
        if run_perms:
            self._regions.set(run_start, end, run_perms)

    def set_heap(self, start: int, size: int) -> None:
        self.heap_start = self.brk = start
        self.heap_end = start + size

    def set_stack(self, start: int, end: int) -> None:
        self.stack_start, self.stack_end = start, end

    def write_image(self, addr: int, data) -> None:
        """Loader writes, before any code of the range has run."""
        self._space.write(addr, data)

    def release(self) -> None:
        """The process is gone: unmap and free everything it owned, one call per run of
        adjacent VMAs (cutting a big region once, not once per VMA)."""
        self._write_back(list(self.vmas))
        runs = []
        for vma in self.vmas:
            if runs and runs[-1][1] == vma.start:
                runs[-1][1] = vma.end
            else:
                runs.append([vma.start, vma.end])
        for start, end in runs:
            self._regions.set(start, end, 0)
            self._space.free(start, end)
        self.vmas = VmaList()
        self._last = None

    # ---- user pointers ------------------------------------------------------------------
    def check(self, addr: int, size: int, need: int) -> None:
        """EFAULT unless [addr, addr+size) is mapped with at least `need` permissions."""
        if size <= 0:
            return
        end = addr + size
        vma = self._last
        if vma is None or addr < vma.start or end > vma.end:
            vma = self.vmas.find(addr)
            if vma is None:
                raise SysError(EFAULT)
            if end > vma.end:
                for piece in self.vmas.overlapping(addr, end):
                    if unicorn_perms(piece.prot) & need != need:
                        raise SysError(EFAULT)
                if not self.vmas.covered(addr, end):
                    raise SysError(EFAULT)
                return
            self._last = vma
        if unicorn_perms(vma.prot) & need != need:
            raise SysError(EFAULT)

    def check_write(self, addr: int, size: int) -> None:
        """As `check` for a host write; drops translated code if the range is executable."""
        self.check(addr, size, PROT_WRITE)
        for vma in self.vmas.overlapping(addr, addr + size):
            if vma.prot & PROT_EXEC:
                self._regions.invalidate_code(addr, addr + size)
                break

    # ---- brk --------------------------------------------------------------------------
    def do_brk(self, addr: int) -> int:
        """Linux brk: returns the new break, or the old one when it cannot move."""
        if addr < self.heap_start or addr > self.heap_end:
            return self.brk
        if not self.vmas.covered(self.heap_start, page_up(addr) or self.heap_start):
            return self.brk     # part of the heap was unmapped by the program
        old_top, new_top = page_up(self.brk), page_up(addr)
        if new_top < old_top:
            self._space.zero(new_top, old_top)   # a later brk up must see zeros again
        self.brk = addr
        return addr

    # ---- mmap ---------------------------------------------------------------------------
    def do_mmap(self, addr, length, prot, flags, file_data=None, file_offset=0, name="", shared=None) -> int:
        """`shared`: for a shared writable file mapping, the file's write-back, called
        with (file offset, bytes) at msync, munmap and exit."""
        if length == 0 or file_offset % PAGE_SIZE or prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
            raise SysError(EINVAL)
        if flags & MAP_TYPE not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE):
            raise SysError(EINVAL)
        size = page_up(length)
        if size < length or size > self._space.size:
            raise SysError(ENOMEM)
        self._check_as_limit(size)
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            if addr % PAGE_SIZE:
                raise SysError(EINVAL)
            start = self._take_fixed(addr, addr + size, replace=bool(flags & MAP_FIXED))
        else:
            hint = addr - addr % PAGE_SIZE
            start = self._space.alloc(size, hint if hint and self._space.contains(hint, hint + size) else 0)
        end = start + size
        if file_data is None:
            vma = Vma(start, end, prot, "anon")
        else:
            chunk = file_data[file_offset:file_offset + length]
            self._space.write(start, chunk)   # the rest of the last page stays zero
            vma = Vma(start, end, prot, "file", name, file_data, file_offset, shared)
        self.vmas.insert(vma)
        self._regions.set(start, end, prot)
        return start

    def _take_fixed(self, start, end, replace):
        """Make [start, end) ours and empty: our own VMAs there are dropped (zeroed),
        free parts are claimed; another process's memory can never be taken."""
        if not self._space.contains(start, end):
            raise SysError(ENOMEM)
        own = self.vmas.overlapping(start, end)
        if own and not replace:
            raise SysError(EEXIST)
        cursor, free_parts = start, []
        for vma in own + [None]:
            hole_end = min(vma.start, end) if vma else end
            if hole_end > cursor:
                if not self._space.is_free(max(cursor, start), hole_end):
                    raise SysError(ENOMEM)
                free_parts.append((max(cursor, start), hole_end))
            if vma:
                cursor = vma.end
        pieces = self.vmas.remove(start, end)
        self._write_back(pieces)
        for piece in pieces:
            self._regions.set(piece.start, piece.end, 0)
            self._space.zero(piece.start, piece.end)
        for part in free_parts:
            self._space.claim(*part)
        self._last = None
        return start

    def do_munmap(self, addr: int, length: int) -> int:
        if addr % PAGE_SIZE or length == 0:
            raise SysError(EINVAL)
        end = addr + page_up(length)
        pieces = self.vmas.remove(addr, end)
        self._write_back(pieces)
        for piece in pieces:
            self._regions.set(piece.start, piece.end, 0)
            self._space.free(piece.start, piece.end)
        self._last = None
        return 0

    def _write_back(self, vmas) -> None:
        """Shared file mappings among `vmas`: their pages go back to the file."""
        for vma in vmas:
            if vma.shared is not None:
                vma.shared.write_back(vma.file_offset, self._space.read(vma.start, vma.end - vma.start))

    def do_msync(self, addr: int, length: int) -> int:
        if addr % PAGE_SIZE:
            raise SysError(EINVAL)
        end = addr + page_up(length)
        if not self.vmas.covered(addr, end):
            raise SysError(ENOMEM)
        self._write_back([vma.copy(max(vma.start, addr), min(vma.end, end))
                          for vma in self.vmas.overlapping(addr, end) if vma.shared is not None])
        return 0

    def do_mprotect(self, addr: int, length: int, prot: int) -> int:
        prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
        if addr % PAGE_SIZE or prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
            raise SysError(EINVAL)
        end = addr + page_up(length)
        if end == addr:
            return 0
        if not self.vmas.covered(addr, end):
            raise SysError(ENOMEM)
        for piece in self.vmas.remove(addr, end):
            piece.prot = prot
            self.vmas.insert(piece)
        self._regions.set(addr, end, prot)
        self._last = None
        return 0

    def _check_as_limit(self, more: int) -> None:
        if self.as_limit is not None and self.mapped_bytes() + more > self.as_limit:
            raise SysError(ENOMEM)

    def mapped_bytes(self) -> int:
        return sum(v.end - v.start for v in self.vmas)

    def do_mremap(self, old, old_size, new_size, flags, new_addr) -> int:
        if old % PAGE_SIZE or flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP):
            raise SysError(EINVAL)
        if flags & MREMAP_DONTUNMAP or (flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE):
            raise SysError(EINVAL)
        old_size, new_size = page_up(old_size), page_up(new_size)
        if new_size == 0 or old_size == 0:
            raise SysError(EINVAL)   # old_size 0 duplicates a shared mapping: not offered
        vma = self.vmas.find(old)
        if vma is None or vma.end < old + old_size:
            raise SysError(EFAULT)
        if flags & MREMAP_FIXED:
            if new_addr % PAGE_SIZE:
                raise SysError(EINVAL)
            return self._move(vma, old, old_size, new_size, new_addr)
        if new_size <= old_size:
            if new_size < old_size:
                self.do_munmap(old + new_size, old_size - new_size)
            return old
        grow_start, grow_end = old + old_size, old + new_size
        self._check_as_limit(new_size - old_size)
        if vma.end == grow_start and self._space.is_free(grow_start, grow_end):
            self._space.claim(grow_start, grow_end)
            self.vmas.insert(vma.copy(grow_start, grow_end))
            self._regions.set(grow_start, grow_end, vma.prot)
            self._fill_from_file(vma, grow_start, grow_end)
            self._last = None
            return old
        if not flags & MREMAP_MAYMOVE:
            raise SysError(ENOMEM)
        return self._move(vma, old, old_size, new_size, None)

    def _move(self, vma, old, old_size, new_size, new_addr):
        if new_addr is None:
            start = self._space.alloc(new_size)
        else:
            if new_addr < old + old_size and old < new_addr + new_size:
                raise SysError(EINVAL)
            start = self._take_fixed(new_addr, new_addr + new_size, replace=True)
        keep = min(old_size, new_size)
        self._space.write(start, self._space.mem[old - self._space.base:old - self._space.base + keep])
        source = vma.copy(old, old + keep)
        self.vmas.insert(Vma(start, start + new_size, vma.prot, vma.kind, vma.name,
                             source.file_data, source.file_offset, source.shared))
        self._regions.set(start, start + new_size, vma.prot)
        if new_size > keep:
            self._fill_from_file(self.vmas.find(start), start + keep, start + new_size)
        self.do_munmap(old, old_size)
        return start

    def _fill_from_file(self, vma, start, end):
        if vma.file_data is not None:
            offset = vma.file_offset + (start - vma.start)
            self._space.write(start, vma.file_data[offset:offset + (end - start)])

    def do_madvise(self, addr: int, length: int, advice: int) -> int:
        if addr % PAGE_SIZE:
            raise SysError(EINVAL)
        end = addr + page_up(length)
        if advice in _MADV_HINTS or advice == MADV_FREE:
            pass      # MADV_FREE may keep the contents until reclaimed: keeping them is legal
        elif advice != MADV_DONTNEED:
            raise SysError(EINVAL)
        if end > addr and not self.vmas.covered(addr, end):
            raise SysError(ENOMEM)
        if advice == MADV_DONTNEED:
            for vma in self.vmas.overlapping(addr, end):
                lo, hi = max(vma.start, addr), min(vma.end, end)
                self._space.zero(lo, hi)       # private pages drop back to their source
                self._fill_from_file(vma, lo, hi)
        return 0

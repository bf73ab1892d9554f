"""The user space: one range of `user_space_size` bytes that all LibOS processes share.

As in Occlum, `user_space_size` is a hard budget for every process together: program
images, heaps, stacks and mmaps are all carved from this one range, and an allocation
that does not fit fails with ENOMEM. The memory behind it is one host mapping
(MAP_NORESERVE, so untouched pages cost nothing); Unicorn regions point into it
(`mem_map_ptr`), which makes splitting a region free of copies and lets system calls
read and write guest memory through a memoryview without going through Unicorn.

Freed memory is zeroed at once (MADV_DONTNEED on the host mapping), so any page handed
out again reads as zero, as an anonymous mapping must.
"""
import bisect
import ctypes
import mmap

from ..errno import ENOMEM, SysError

PAGE_SIZE = 4096
# Where the user space starts in the guest address space: far above address 0, so that
# null and small pointers always fault, and below the 47-bit user-address limit.
USER_SPACE_BASE = 0x7E00_0000_0000
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)


def page_down(value: int) -> int:
    return value & ~(PAGE_SIZE - 1)


def page_up(value: int) -> int:
    return (value + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class UserSpace:
    """Free-range bookkeeping and host memory for the shared user space."""

    def __init__(self, size: int, base: int = USER_SPACE_BASE):
        size = page_up(size)
        if size <= 0:
            raise ValueError("user_space_size must be positive")
        self.base, self.size, self.end = base, size, base + size
        self._host = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE)
        self._anchor = ctypes.c_char.from_buffer(self._host)
        self.host_addr = ctypes.addressof(self._anchor)
        self.mem = memoryview(self._host)     # guest address a is mem[a - base]
        self._free_starts = [base]            # sorted, disjoint, never adjacent
        self._free_ends = [base + size]

    # ---- allocation ----------------------------------------------------------------
    @property
    def free_bytes(self) -> int:
        return sum(e - s for s, e in zip(self._free_starts, self._free_ends))

    def contains(self, start: int, end: int) -> bool:
        return self.base <= start <= end <= self.end

    def alloc(self, size: int, hint: int = 0) -> int:
        """First fit from the lowest address (keeps a process's data adjacent, so that
        its Unicorn regions can merge); the hint is honoured when that range is free."""
        size = page_up(size)
        if size <= 0:
            raise SysError(ENOMEM)
        if hint and self.is_free(hint, hint + size):
            self.claim(hint, hint + size)
            return hint
        for start, end in zip(self._free_starts, self._free_ends):
            if end - start >= size:
                self.claim(start, start + size)
                return start
        raise SysError(ENOMEM)

    def is_free(self, start: int, end: int) -> bool:
        if not self.contains(start, end) or start >= end:
            return False
        i = bisect.bisect_right(self._free_starts, start) - 1
        return i >= 0 and self._free_ends[i] >= end

    def claim(self, start: int, end: int) -> None:
        """Take [start, end), which must be free."""
        i = bisect.bisect_right(self._free_starts, start) - 1
        fs, fe = self._free_starts[i], self._free_ends[i]
        assert i >= 0 and fs <= start and end <= fe, "claiming memory that is not free"
        del self._free_starts[i], self._free_ends[i]
        if end < fe:
            self._free_starts.insert(i, end)
            self._free_ends.insert(i, fe)
        if fs < start:
            self._free_starts.insert(i, fs)
            self._free_ends.insert(i, start)

    def free(self, start: int, end: int) -> None:
        """Give [start, end) back, zeroed."""
        if start >= end:
            return
        self.zero(start, end)
        i = bisect.bisect_left(self._free_starts, start)
        # merge with the free range before and after
        if i > 0 and self._free_ends[i - 1] == start:
            i -= 1
            start = self._free_starts[i]
            del self._free_starts[i], self._free_ends[i]
        if i < len(self._free_starts) and self._free_starts[i] == end:
            end = self._free_ends[i]
            del self._free_starts[i], self._free_ends[i]
        assert i == 0 or self._free_ends[i - 1] <= start, "double free in the user space"
        self._free_starts.insert(i, start)
        self._free_ends.insert(i, end)

    # ---- contents --------------------------------------------------------------------
    def zero(self, start: int, end: int) -> None:
        """Zero [start, end) (page aligned) and give the host its memory back."""
        if start < end:
            self._host.madvise(mmap.MADV_DONTNEED, start - self.base, end - start)

    def host_address(self, addr: int) -> int:
        return self.host_addr + (addr - self.base)

    def write(self, addr: int, data) -> None:
        off = addr - self.base
        self.mem[off:off + len(data)] = data

    def read(self, addr: int, size: int) -> bytes:
        off = addr - self.base
        return self.mem[off:off + size].tobytes()

    def close(self) -> None:
        """Release the host mapping (the CPU must not use it any more)."""
        self.mem.release()
        del self._anchor
        try:
            self._host.close()
        except BufferError:
            pass

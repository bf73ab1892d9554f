"""Virtual memory areas of one process, kept in Python (never one Unicorn region each).

A VMA is a page-aligned range with Linux PROT_* bits and a kind: 'elf' (a segment of a
loaded image), 'gap' (PROT_NONE filler between image segments), 'heap' (the brk area),
'stack', 'anon' (anonymous mmap) or 'file' (file mapping, contents copied in; a shared
writable one also has `shared`, the file's write-back, called at msync, munmap and exit).
Every page a process owns is in exactly one VMA, PROT_NONE ones included.
"""
import bisect


class Vma:
    __slots__ = ("start", "end", "prot", "kind", "name", "file_data", "file_offset", "shared")

    def __init__(self, start, end, prot, kind, name="", file_data=None, file_offset=0, shared=None):
        self.start, self.end, self.prot, self.kind, self.name = start, end, prot, kind, name
        # a file mapping remembers its source, for MADV_DONTNEED and mremap
        self.file_data, self.file_offset = file_data, file_offset
        self.shared = shared

    def copy(self, start, end, prot=None):
        """The piece [start, end) of this VMA, with the same source (shifted)."""
        return Vma(start, end, self.prot if prot is None else prot, self.kind, self.name,
                   self.file_data, self.file_offset + (start - self.start), self.shared)

    def __repr__(self):
        return "Vma(%#x-%#x %s%s%s %s%s)" % (
            self.start, self.end, "r" if self.prot & 1 else "-", "w" if self.prot & 2 else "-",
            "x" if self.prot & 4 else "-", self.kind, " " + self.name if self.name else "")


def _mergeable(a, b) -> bool:
    """a directly followed by b, alike in everything (file offsets continuing)."""
    return (a.end == b.start and a.prot == b.prot and a.kind == b.kind and a.name == b.name
            and a.kind in ("anon", "file") and a.file_data is b.file_data and a.shared is b.shared
            and (a.file_data is None or a.file_offset + (a.end - a.start) == b.file_offset))


class VmaList:
    """Sorted, disjoint VMAs with bisect lookup."""

    def __init__(self):
        self._starts = []
        self._vmas = []

    def __iter__(self):
        return iter(list(self._vmas))

    def __len__(self):
        return len(self._vmas)

    def find(self, addr):
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].end > addr:
            return self._vmas[i]
        return None

    def overlapping(self, start, end):
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0 or self._vmas[i].end <= start:
            i += 1
        result = []
        while i < len(self._vmas) and self._vmas[i].start < end:
            result.append(self._vmas[i])
            i += 1
        return result

    def covered(self, start, end) -> bool:
        """True when [start, end) is fully inside VMAs, without holes."""
        cursor = start
        for vma in self.overlapping(start, end):
            if vma.start > cursor:
                return False
            cursor = vma.end
        return cursor >= end

    def insert(self, vma):
        """Add `vma`, merged with equal neighbours (so that e.g. an mremap can later
        treat a grown mapping as one)."""
        i = bisect.bisect_left(self._starts, vma.start)
        assert (i == 0 or self._vmas[i - 1].end <= vma.start) and \
            (i == len(self._vmas) or vma.end <= self._vmas[i].start), "overlapping VMA"
        if i < len(self._vmas) and _mergeable(vma, self._vmas[i]):
            following = self._vmas[i]
            vma = vma.copy(vma.start, following.end)
            del self._starts[i], self._vmas[i]
        if i > 0 and _mergeable(self._vmas[i - 1], vma):
            i -= 1
            vma = self._vmas[i].copy(self._vmas[i].start, vma.end)
            del self._starts[i], self._vmas[i]
        self._starts.insert(i, vma.start)
        self._vmas.insert(i, vma)

    def remove(self, start, end):
        """Cut [start, end) out; returns the removed pieces."""
        removed = []
        for vma in self.overlapping(start, end):
            self._delete(vma)
            if vma.start < start:
                self.insert(vma.copy(vma.start, start))
            if vma.end > end:
                self.insert(vma.copy(end, vma.end))
            removed.append(vma.copy(max(vma.start, start), min(vma.end, end)))
        return removed

    def _delete(self, vma):
        i = bisect.bisect_left(self._starts, vma.start)
        assert self._vmas[i] is vma
        del self._starts[i], self._vmas[i]

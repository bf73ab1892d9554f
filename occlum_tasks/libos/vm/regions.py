"""Unicorn regions behind the VMAs: few, host-backed, laid out on purpose.

Costs measured on unicorn 2.1.4 (see vm/__init__.py and bench/unicorn_layouts.py)
decide the policy:
- W^X, strictly: guest stores run inline only on pages whose TLB entry has no execute
  permission (cpu.py explains the mechanism). On an RWX page every store takes the C
  slow path: the 5 MB sieve runs 7x slower (2.8 s against 0.38 s, bare Unicorn), a
  call-heavy loop 4.5x. Code gets regions of its own;
- every map, unmap or protect makes Unicorn flush its whole TLB, and the LibOS then
  refills it through a Python callback (~1-2 us per page in use), so a memory-map
  change costs about as much as the working set is large: fewer changes are better;
- mapping a host-backed region is cheap (~10 us), but unmapping or splitting one costs
  ~25 us per MiB (Unicorn flushes its TLB page by page), so large regions are never
  re-made to absorb a neighbour: merging happens only with neighbours up to
  MERGE_LIMIT bytes, bounding the cost of any one change;
- the number of regions hardly matters to running code any more (200 unrelated
  regions: +4% on the sieve): Unicorn looks a region up only when it fills a TLB entry
  and on the first store through it;
- pages without any permission are left unmapped, so that touching them faults.
"""
import bisect

from ..cpu import PROT_EXEC, PROT_READ, PROT_WRITE

MERGE_LIMIT = 4 << 20


def unicorn_perms(prot: int) -> int:
    """Linux PROT_* (same bit values as Unicorn's) to what x86 can enforce: any access
    implies read; PROT_NONE is 0, i.e. unmapped."""
    prot &= PROT_READ | PROT_WRITE | PROT_EXEC
    return prot | PROT_READ if prot else 0


class Regions:
    """Mirror of the Unicorn regions: sorted, disjoint [start, end) with perms."""

    def __init__(self, cpu, space):
        self._cpu = cpu
        self._space = space
        self._starts = []
        self._regions = []      # [start, end, perms]
        self.changes = 0        # Unicorn map/unmap/protect calls made, for tests and tuning

    def __len__(self):
        return len(self._regions)

    def snapshot(self):
        return [tuple(r) for r in self._regions]

    # ---- the one operation ----------------------------------------------------------
    def set(self, start: int, end: int, prot: int) -> None:
        """Make the pages of [start, end) (page aligned) have `prot` (0: unmapped)."""
        if start >= end:
            return
        perms = unicorn_perms(prot)
        i = self._find(start)
        if i is not None:
            r_start, r_end, r_perms = self._regions[i]
            if r_start < start and end < r_end and r_perms != perms:
                # a hole in the middle of one region (musl's PROT_NONE guard page at
                # the start of the heap, RELRO): cut the region once, not once per
                # side -- each cut of a large region costs ~25 us per MiB
                self._unmap(i)
                self._map(r_start, start, r_perms)
                self._map(end, r_end, r_perms)
                if perms:
                    self._map(start, end, perms)
                return
        self._split_at(start, perms)
        self._split_at(end, perms)
        # now every region overlapping [start, end) lies inside it, or has `perms`
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0 or self._regions[i][1] <= start:
            i += 1
        cursor = start
        gaps = []
        while i < len(self._regions) and self._regions[i][0] < end:
            region = self._regions[i]
            if region[0] > cursor:
                gaps.append((cursor, region[0]))
            cursor = max(cursor, region[1])
            if region[2] != perms and start <= region[0] and region[1] <= end:
                if perms == 0:
                    self._unmap(i)
                    continue
                self._protect(i, perms)
            i += 1
        if cursor < end:
            gaps.append((cursor, end))
        if perms:
            for gap_start, gap_end in gaps:
                self._map_merging(gap_start, gap_end, perms)

    # ---- helpers ---------------------------------------------------------------------
    def _find(self, addr):
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._regions[i][1] > addr:
            return i
        return None

    def _split_at(self, addr: int, perms: int) -> None:
        """Cut the region that straddles `addr`, unless it already has `perms`."""
        i = self._find(addr)
        if i is None:
            return
        r_start, r_end, r_perms = self._regions[i]
        if r_start == addr or r_perms == perms:
            return
        self._unmap(i)
        self._map(r_start, addr, r_perms)
        self._map(addr, r_end, r_perms)

    def _map(self, start, end, perms):
        self._cpu.map_host(start, end - start, perms, self._space.host_address(start))
        self.changes += 1
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._regions.insert(i, [start, end, perms])

    def _unmap(self, i):
        start, end, perms = self._regions[i]
        self._cpu.unmap(start, end - start)
        self.changes += 1
        if perms & PROT_EXEC:
            self._cpu.invalidate_code(start, end)
        del self._starts[i], self._regions[i]

    def _protect(self, i, perms):
        region = self._regions[i]
        self._cpu.protect(region[0], region[1] - region[0], perms)
        self.changes += 1
        if region[2] & PROT_EXEC:
            self._cpu.invalidate_code(region[0], region[1])
        region[2] = perms

    def _map_merging(self, start, end, perms):
        left = self._find(start - 1)
        if left is not None:
            l_start, l_end, l_perms = self._regions[left]
            if l_perms == perms and l_end == start and l_end - l_start <= MERGE_LIMIT:
                self._unmap(left)
                start = l_start
        right = self._find(end)
        if right is not None:
            r_start, r_end, r_perms = self._regions[right]
            if r_perms == perms and r_start == end and r_end - r_start <= MERGE_LIMIT:
                self._unmap(right)
                end = r_end
        self._map(start, end, perms)

    def invalidate_code(self, start: int, end: int) -> None:
        """The host wrote into executable memory: drop stale translations."""
        self._cpu.invalidate_code(start, end)

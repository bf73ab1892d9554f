"""A bare Unicorn harness: runs a musl PIE (static, or dynamic with musl's loader) with
no LibOS at all, to measure what Unicorn itself costs and how its configuration changes
that cost. Used by bench/libos.py (the "bare Unicorn" column) and bench/unicorn_layouts.py
(the layout and TLB-mode experiments).

The harness maps the ELF segments and a stack in one host-backed block, builds the
initial stack (argv, auxv) and answers only the system calls a musl program makes to
start, print and exit: arch_prctl, set_tid_address, ioctl, write, writev, mprotect,
brk (inside a fixed 4 MiB heap), exit(_group), plus getppid for the system call floor.
Everything else is ENOSYS.

Knobs (the defaults are what the LibOS now uses, see occlum_tasks/libos/cpu.py):
  tlb         "cpu"      Unicorn's default: no guest page tables, every TLB entry RWX
              "virtual"  UC_TLB_VIRTUAL without a fill hook: 1:1, and each entry gets
                         exactly the permission of the access that filled it
              "pyfill"   UC_TLB_VIRTUAL with a Python UC_HOOK_TLB_FILL giving the page's
                         real permissions (one Python call per TLB miss)
  invalid     "none" | "all" (UC_HOOK_MEM_INVALID over the whole address space, as the
              LibOS used to) | "outside" (the same hook bounded to addresses outside
              the guest block)
  wx          True: text RX, data RW (W^X); False: every page RWX
  backing     "ptr" (uc_mem_map_ptr into one host mmap) or "uc" (uc_mem_map)
  tlb_bits    grow the software TLB to 2**tlb_bits entries before the run (0: leave
              Unicorn's 256); see grow_tlb
  extra       map this many unrelated one-page regions far away (region-count cost)
  regrow      with "pyfill": flush the TLB every `regrow` fills (0: never), which lets
              QEMU's resize policy double a TLB that is too small for the working set
"""
import ctypes
import mmap
import os
import struct
import time

from unicorn import Uc, UC_ARCH_X86, UC_MODE_64
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86
from unicorn.unicorn_py3 import unicorn as _binding

MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"
PAGE = 4096
BASE = 0x7E00_0000_0000          # the LibOS's USER_SPACE_BASE: same TLB indexes
SIZE = 64 << 20
STACK = 8 << 20
HEAP = 4 << 20
PT_LOAD, PT_INTERP = 1, 3
R, W, X = ucc.UC_PROT_READ, ucc.UC_PROT_WRITE, ucc.UC_PROT_EXEC

_lib = _binding.uclib
_raw = ctypes.CDLL(_lib._name)          # no argtypes: calls with ctypes arguments only
_raw.uc_reg_read_batch.restype = _raw.uc_reg_write.restype = ctypes.c_int
_SYSCALL_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_ARG_REGS = (x86.UC_X86_REG_RAX, x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX,
             x86.UC_X86_REG_R10)


def _page_up(value):
    return (value + PAGE - 1) & ~(PAGE - 1)


class Elf:
    """The little of an ELF file a loader needs."""

    def __init__(self, path):
        self.data = open(path, "rb").read()
        if self.data[:4] != b"\x7fELF":
            raise ValueError("%s: not an ELF file" % path)
        self.entry, self.phoff = struct.unpack_from("<QQ", self.data, 0x18)
        self.phentsize, self.phnum = struct.unpack_from("<HH", self.data, 0x36)
        self.segments, self.interp = [], None
        for i in range(self.phnum):
            p_type, p_flags, off, vaddr, _pa, filesz, memsz, _al = struct.unpack_from(
                "<IIQQQQQQ", self.data, self.phoff + i * self.phentsize)
            if p_type == PT_LOAD:
                perms = (R if p_flags & 4 else 0) | (W if p_flags & 2 else 0) | (X if p_flags & 1 else 0)
                self.segments.append((vaddr, memsz, off, filesz, perms))
            elif p_type == PT_INTERP:
                self.interp = self.data[off:off + filesz].rstrip(b"\0").decode()
        self.span = _page_up(max(v + m for v, m, *_ in self.segments))


# The warm-up loop: mov al, [rbx]; add rbx, 4096; dec rcx; jnz back to the start.
_TOUCH_PAGES = bytes.fromhex("8a03" "4881c300100000" "48ffc9" "75f2")
_SCRATCH = 0x1000_0000_0000


def grow_tlb(uc, bits):
    """Grow the software TLB to 2**bits entries. QEMU sizes its TLB only when it is
    flushed: a TLB more than 70% used doubles. A guest kernel flushes all the time;
    under Unicorn nothing does, so the TLB stays at 256 entries (1 MiB) and a larger
    working set misses on every page change. Touch as many pages as the TLB has
    entries, flush, and again, until it has the size wanted."""
    npages = 1 << bits
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
    data = mmap.mmap(-1, npages * PAGE, flags=flags)
    anchor = ctypes.c_char.from_buffer(data)
    uc.mem_map(_SCRATCH, PAGE, R | X)
    uc.mem_write(_SCRATCH, _TOUCH_PAGES)
    uc.mem_map_ptr(_SCRATCH + PAGE, npages * PAGE, R, ctypes.addressof(anchor))
    size = 256
    while size < npages:
        uc.reg_write(x86.UC_X86_REG_RBX, _SCRATCH + PAGE)
        uc.reg_write(x86.UC_X86_REG_RCX, size)
        uc.emu_start(_SCRATCH, _SCRATCH + len(_TOUCH_PAGES))
        uc.ctl(ucc.UC_CTL_TLB_FLUSH, ucc.UC_CTL_IO_WRITE)
        size *= 2
    uc.mem_unmap(_SCRATCH + PAGE, npages * PAGE)
    uc.mem_unmap(_SCRATCH, PAGE)
    uc.ctl_remove_cache(_SCRATCH, _SCRATCH + PAGE)
    del anchor
    data.close()


class BareMachine:
    """One Unicorn CPU configured by the knobs above, one program loaded by `load`."""

    def __init__(self, tlb="pyfill", invalid="none", wx=True, backing="ptr", tlb_bits=0, regrow=4096, extra=0):
        self.tlb, self.invalid, self.wx, self.backing, self.regrow = tlb, invalid, wx, backing, regrow
        self.fills = 0
        self.extra = extra
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.uch = self.uc._uch
        self.out = bytearray()
        self.status = None
        self._keep = []
        self._host = mmap.mmap(-1, SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.mem = memoryview(self._host)
        self._anchor = ctypes.c_char.from_buffer(self._host)
        self.pages = {}                          # page address -> perms
        if tlb in ("virtual", "pyfill"):
            self.uc.ctl_set_tlb_mode(ucc.UC_TLB_VIRTUAL)
        if tlb_bits:
            grow_tlb(self.uc, tlb_bits)
        if tlb == "pyfill":
            self._install_tlb_fill_hook()
        if invalid == "all":
            self.uc.hook_add(ucc.UC_HOOK_MEM_INVALID, self._invalid)
        elif invalid == "outside":
            self.uc.hook_add(ucc.UC_HOOK_MEM_INVALID, self._invalid, begin=0, end=BASE - 1)
            self.uc.hook_add(ucc.UC_HOOK_MEM_INVALID, self._invalid, begin=BASE + SIZE, end=(1 << 64) - 1)
        self._install_syscall_hook()

    # ---- memory ------------------------------------------------------------------
    def _set_pages(self, start, end, perms):
        if not self.wx:
            perms = R | W | X
        for page in range(start & ~(PAGE - 1), _page_up(end), PAGE):
            self.pages[page] = self.pages.get(page, 0) | perms

    def _map_regions(self):
        """One Unicorn region per run of pages with equal permissions."""
        runs, cur = [], None
        for page in sorted(self.pages):
            perms = self.pages[page]
            if cur and cur[1] == page and cur[2] == perms:
                cur[1] += PAGE
            else:
                cur = [page, page + PAGE, perms]
                runs.append(cur)
        for start, end, perms in runs:
            if self.backing == "ptr":
                self.uc.mem_map_ptr(start, end - start, perms, ctypes.addressof(self._anchor) + start - BASE)
            else:
                self.uc.mem_map(start, end - start, perms)
        for i in range(self.extra):       # every other page, so that none merge
            runs.append([_SCRATCH + 2 * i * PAGE, _SCRATCH + (2 * i + 1) * PAGE, R | W])
            self.uc.mem_map(runs[-1][0], PAGE, R | W)
        runs.sort()
        self.regions = runs
        self.region_starts = [r[0] for r in runs]

    def _write(self, addr, data):
        self.mem[addr - BASE:addr - BASE + len(data)] = data

    def _read(self, addr, size):
        if self.backing == "ptr":
            return self.mem[addr - BASE:addr - BASE + size].tobytes()
        return bytes(self.uc.mem_read(addr, size))

    def _place(self, elf, base):
        for vaddr, memsz, off, filesz, perms in elf.segments:
            self._write(base + vaddr, elf.data[off:off + filesz])
            self._set_pages(base + vaddr, base + vaddr + memsz, perms)

    # ---- loading -------------------------------------------------------------------
    def load(self, path, argv):
        prog = Elf(path)
        self._place(prog, BASE)
        entry, interp_base = BASE + prog.entry, 0
        if prog.interp:
            interp = Elf(prog.interp)
            interp_base = BASE + prog.span + 16 * PAGE
            self._place(interp, interp_base)
            entry = interp_base + interp.entry
            self.brk = self.heap = interp_base + interp.span + 16 * PAGE
        else:
            self.brk = self.heap = BASE + prog.span + 16 * PAGE
        self._set_pages(self.heap, self.heap + HEAP, R | W)
        top = BASE + SIZE
        self._set_pages(top - STACK, top, R | W)
        # stack contents: strings and AT_RANDOM bytes at the top, then the vectors
        sp = top - 256
        strings = []
        for arg in argv:
            raw = arg.encode() + b"\0"
            sp -= len(raw)
            self._write(sp, raw)
            strings.append(sp)
        sp -= 16
        random_at = sp
        self._write(sp, os.urandom(16))
        auxv = [(3, BASE + prog.phoff), (4, prog.phentsize), (5, prog.phnum), (6, PAGE),
                (7, interp_base), (9, BASE + prog.entry), (11, 0), (12, 0), (13, 0), (14, 0),
                (23, 0), (25, random_at), (0, 0)]
        words = [len(argv), *strings, 0, 0] + [v for pair in auxv for v in pair]
        sp = (sp - 8 * len(words)) & ~15
        self._write(sp, struct.pack("<%dQ" % len(words), *words))
        if self.backing == "uc":
            snapshot = bytes(self.mem)       # the image was built in host memory: copy it in
        self._map_regions()
        if self.backing == "uc":
            for start, end, _ in self.regions:
                self.uc.mem_write(start, snapshot[start - BASE:end - BASE])
        self.uc.reg_write(x86.UC_X86_REG_RSP, sp)
        self.entry = entry

    # ---- hooks -----------------------------------------------------------------------
    def _invalid(self, uc, access, address, size, value, data):
        self.fault = (access, address)
        return False

    def _install_tlb_fill_hook(self):
        """A raw ctypes UC_HOOK_TLB_FILL callback: 1:1 translation, the region's perms
        (found by bisection, as the LibOS does), a refusal for a missing permission."""
        import bisect
        find, need, words = bisect.bisect_right, (R, W, X), (ctypes.c_uint64 * 2).from_address
        flush = lambda: self.uc.ctl(ucc.UC_CTL_TLB_FLUSH, ucc.UC_CTL_IO_WRITE)   # noqa: E731

        def on_fill(_uc, vaddr, access, entry, _data):
            self.fills += 1
            if self.regrow and self.fills % self.regrow == 0:
                flush()          # safe here: tlb_fill's callers re-read the (resized) table
            i = find(self.region_starts, vaddr) - 1
            if i >= 0 and vaddr < self.regions[i][1]:
                perms = self.regions[i][2]
                if perms & need[access - ucc.UC_MEM_READ]:
                    pair = words(entry)
                    pair[0], pair[1] = vaddr, perms
                    return True
            self.fault = (access, vaddr)
            return False

        cb = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p,
                              ctypes.c_void_p)(on_fill)
        handle = _binding.uc_hook_h()
        err = _lib.uc_hook_add(self.uch, ctypes.byref(handle), ucc.UC_HOOK_TLB_FILL, ctypes.cast(cb, ctypes.c_void_p),
                               None, ctypes.c_uint64(1), ctypes.c_uint64(0))
        assert err == 0, err
        self._keep.append(cb)

    def _install_syscall_hook(self):
        """The system call path of occlum_tasks/libos/cpu.py, so that the getppid rate
        here is the floor the LibOS builds on: argtype-less calls with ctypes
        arguments made once, one uc_reg_read_batch, a memoryview to Python ints."""
        ids = (ctypes.c_int * 5)(*_ARG_REGS)
        vals = (ctypes.c_uint64 * 5)()
        ptrs = (ctypes.c_void_p * 5)(*[ctypes.addressof(vals) + 8 * i for i in range(5)])
        uch = ctypes.c_void_p(self.uch.value)
        read_batch, write = _raw.uc_reg_read_batch, _raw.uc_reg_write
        ids_p, ptrs_p, count = ctypes.c_void_p(ctypes.addressof(ids)), ctypes.c_void_p(ctypes.addressof(ptrs)), \
            ctypes.c_int(5)
        words = memoryview(vals).cast("B").cast("Q")
        rax_id, rax_p = ctypes.c_int(x86.UC_X86_REG_RAX), ctypes.c_void_p(ctypes.addressof(vals))
        answer = self._syscall
        self._keep += [ids, vals, ptrs]      # the closure holds only their addresses

        def on_syscall(_uc, _data):
            read_batch(uch, ids_p, ptrs_p, count)
            result = answer(*words.tolist())
            if result is not None:
                words[0] = result & 0xFFFF_FFFF_FFFF_FFFF
                write(uch, rax_id, rax_p)

        cb = _SYSCALL_CB(on_syscall)
        handle = _binding.uc_hook_h()
        err = _lib.uc_hook_add(self.uch, ctypes.byref(handle), ucc.UC_HOOK_INSN, ctypes.cast(cb, ctypes.c_void_p),
                               None, ctypes.c_uint64(1), ctypes.c_uint64(0), ctypes.c_int(x86.UC_X86_INS_SYSCALL))
        assert err == 0, err
        self._keep.append(cb)

    def _syscall(self, nr, a, b, c, d):
        if nr == 110:                        # getppid: the cheapest call, for the floor
            return 1
        if nr == 1:                          # write
            if a in (1, 2):
                self.out += self._read(b, c)
            return c
        if nr == 20:                         # writev
            total = 0
            for i in range(c):
                base, length = struct.unpack("<QQ", self._read(b + 16 * i, 16))
                if a in (1, 2):
                    self.out += self._read(base, length)
                total += length
            return total
        if nr == 158 and a == 0x1002:        # arch_prctl(ARCH_SET_FS)
            self.uc.reg_write(x86.UC_X86_REG_FS_BASE, b)
            return 0
        if nr == 218:                        # set_tid_address
            return 1
        if nr == 16:                         # ioctl: not a terminal
            return -25
        if nr == 12:                         # brk, inside the fixed heap
            if self.heap <= a <= self.heap + HEAP:
                self.brk = a
            return self.brk
        if nr == 10:                         # mprotect (RELRO): accepted, not enforced
            return 0
        if nr in (60, 231):                  # exit, exit_group
            self.status = a & 0xFF
            self.uc.emu_stop()
            return None
        return -38                           # ENOSYS

    # ---- running -------------------------------------------------------------------
    def run(self):
        """Run to exit; returns CPU seconds spent inside emu_start."""
        start = time.process_time()
        self.uc.emu_start(self.entry, 0)
        return time.process_time() - start


def run_bare(path, args=(), **knobs):
    """Load and run `path`; returns (exit status, output bytes, CPU seconds in emu_start)."""
    machine = BareMachine(**knobs)
    machine.load(path, [path, *map(str, args)])
    seconds = machine.run()
    return machine.status, bytes(machine.out), seconds


if __name__ == "__main__":
    import sys
    status, out, seconds = run_bare(sys.argv[1], sys.argv[2:])
    sys.stdout.write(out.decode(errors="replace"))
    print("status %s, %.3f s CPU in emu_start" % (status, seconds))

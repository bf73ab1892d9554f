"""The one Unicorn CPU of the enclave, and every use of Unicorn's binding internals.

Measured on unicorn 2.1.4 (DESIGN.md section 8); pinned in pyproject.toml. The system
call path is a raw `uc_hook_add` ctypes callback that reads the seven argument
registers with one `uc_reg_read_batch` into a preallocated array: about 3 us per call,
against 4.6 us through the binding's own callbacks. No per-instruction or per-block
hook is ever installed: they slow translated code down by 5-15x.

Memory goes through Unicorn's virtual TLB mode (UC_TLB_VIRTUAL) with a raw ctypes
UC_HOOK_TLB_FILL callback that translates 1:1 and gives each TLB entry the real
permissions of its region; there is no UC_HOOK_MEM_* hook at all. Why (bench/
unicorn_layouts.py; the source is qemu/accel/tcg/cputlb.c in unicorn 2.1.4): Unicorn
stubs QEMU's dirty-memory bitmap, so every TLB entry for writable RAM is born
TLB_NOTDIRTY and its stores take the C slow path (a flat-view lookup and a
translated-code check, ~40 ns each). notdirty_write() clears the flag after the first
store only when the entry has no execute permission (addr_code == -1) and no
UC_HOOK_MEM_* hook -- the unmapped and protection hooks included -- covers the
address. In the default TLB mode every entry is RWX (the guest has no page tables), so
that never happened; the UC_HOOK_MEM_INVALID hook the LibOS used for faults blocked it
too. With the fill hook, data entries are RW and stores run inline: on bare Unicorn
the 5 MB sieve x4 went from 2.3 s to 0.4-0.57 s, a call-heavy loop from 0.44-0.59 s to
0.12 s (bench/unicorn_layouts.py; in the LibOS 2.25 s -> 0.42 s and 0.51 s -> 0.12 s).
Without a fill hook the virtual TLB gives each entry only the permission of the access
that filled it, so a page read and written in turn -- any stack -- refills on every
switch (the call-heavy loop: 0.53 s). Keep W^X: an RWX entry keeps its execute address,
so stores to RWX pages stay on the slow path (the sieve: 3.2 s).

The price: Unicorn flushes its whole TLB on every map, unmap and protect, and each
page the guest touches afterwards is refilled through this Python callback (~1-2 us,
against ~0.15 us for Unicorn's own fill): mmap + munmap between passes over 1,000
pages costs ~2.5 ms a round against 0.52 ms before (bench/libos.py, row f). A fill
callback in C would remove that cost.

The fill hook is also where faults are found: a refused fill records the address and
the access, and Unicorn stops at the faulting instruction (the state is precise);
`run` reports it as a `Stop` and the caller delivers the signal outside `emu_start`.

Stops take effect only at the start of a translated block, where the state is exact:
the LibOS's own (`stop`, from the SYSCALL hook, whose block ends with the call) and
those from host threads (`stop_from_host_thread`: the scheduler's watchdog, host
signals), which go through engine fields rather than uc_emu_stop. cpu_engine.py says
why both of Unicorn 2.1.4's own ways are inexact, and checks the fields it uses.

QEMU sizes its TLB only when the TLB is flushed (a TLB more than 70% used doubles).
Under Unicorn only map/unmap/protect flush it, so a compute loop over a working set
larger than the initial 256 entries (1 MiB) would miss on every page, now through
Python (~1.3 us a fill). The fill hook therefore flushes the TLB after
TLB_REGROW_FILLS fills without a flush, which lets it double until the working set
fits.
"""
import bisect
import contextlib
import ctypes
import struct
import threading

from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_64
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86
from unicorn.unicorn_py3 import unicorn as _binding

from .cpu_engine import PREEMPTED, Engine, EngineLayoutError  # noqa: F401
from .cpuid import cpuid_table

_lib = _binding.uclib
# The same library through a second handle whose functions have no argtypes: called
# only with ctypes instances, a call skips argument conversion (0.6 us instead of 1.3 us
# for uc_reg_read_batch), which matters on the system call path.
_raw = ctypes.CDLL(_lib._name)
_raw.uc_reg_read_batch.restype = ctypes.c_int
_raw.uc_reg_write.restype = ctypes.c_int
_raw.uc_reg_write_batch.restype = ctypes.c_int
_raw.uc_reg_read.restype = ctypes.c_int
_raw.uc_ctl.restype = ctypes.c_int
_raw.uc_context_save.restype = ctypes.c_int
_raw.uc_context_restore.restype = ctypes.c_int

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, ucc.UC_PROT_READ, ucc.UC_PROT_WRITE, ucc.UC_PROT_EXEC

SIGINT, SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV = 2, 4, 5, 7, 8, 11

_SYSCALL_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_CPUID_CB = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p)
_INTR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
# bool (uc, vaddr, uc_mem_type, uc_tlb_entry *entry, user_data); entry = {u64 paddr; u32 perms}
_TLB_FILL_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p,
                                ctypes.c_void_p)
# uc_ctl(UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0)): the encoding of unicorn.h's UC_CTL_WRITE
_CTL_TLB_FLUSH = ctypes.c_int((ucc.UC_CTL_IO_WRITE << 30) | ucc.UC_CTL_TLB_FLUSH)
# Flush the TLB after this many fills with no flush in between, so that QEMU's resize
# policy can grow a TLB too small for the working set (see the module docstring). A
# flush costs a refill of the pages in use; a TLB that fits its working set fills
# rarely, and one that the LibOS's own map/unmap/protect flush anyway never gets here.
TLB_REGROW_FILLS = 4096
# registers whose write moves the PC (see Cpu.set_pc)
_PC_REGS = frozenset((x86.UC_X86_REG_RIP, x86.UC_X86_REG_EIP, x86.UC_X86_REG_IP))
_REGION = struct.Struct("<QQI4x")
assert _REGION.size == ctypes.sizeof(_binding.uc_mem_region)

# The argument registers of a Linux x86-64 system call, in order (rax = number).
_ARG_REGS = (x86.UC_X86_REG_RAX, x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX,
             x86.UC_X86_REG_R10, x86.UC_X86_REG_R8, x86.UC_X86_REG_R9)
_CPUID_REGS = (x86.UC_X86_REG_EAX, x86.UC_X86_REG_EBX, x86.UC_X86_REG_ECX, x86.UC_X86_REG_EDX)

_MEM_ACCESS = {
    ucc.UC_MEM_READ_UNMAPPED: "read of unmapped", ucc.UC_MEM_WRITE_UNMAPPED: "write to unmapped",
    ucc.UC_MEM_FETCH_UNMAPPED: "execution of unmapped", ucc.UC_MEM_READ_PROT: "read of protected",
    ucc.UC_MEM_WRITE_PROT: "write to protected", ucc.UC_MEM_FETCH_PROT: "execution of non-executable",
}
# by the fill hook's access type (UC_MEM_READ, _WRITE, _FETCH, in that order):
_ACCESS_NEEDS = (PROT_READ, PROT_WRITE, PROT_EXEC)
_ACCESS_UNMAPPED = (ucc.UC_MEM_READ_UNMAPPED, ucc.UC_MEM_WRITE_UNMAPPED, ucc.UC_MEM_FETCH_UNMAPPED)
_ACCESS_PROT = (ucc.UC_MEM_READ_PROT, ucc.UC_MEM_WRITE_PROT, ucc.UC_MEM_FETCH_PROT)
# What uc_emu_start returns when the fill hook refused an access (UC_ERR_EXCEPTION:
# the refusal is raised as an MMU exception, which no hook sees) or memory is missing.
# CPU exceptions proper reach the INTR hook and end with UC_ERR_OK.
_MEMORY_ERRORS = {ucc.UC_ERR_EXCEPTION, ucc.UC_ERR_READ_UNMAPPED, ucc.UC_ERR_WRITE_UNMAPPED, ucc.UC_ERR_FETCH_UNMAPPED,
                  ucc.UC_ERR_READ_PROT, ucc.UC_ERR_WRITE_PROT, ucc.UC_ERR_FETCH_PROT, ucc.UC_ERR_MAP}
# CPU exception vector -> (signal, what): what Linux delivers for each
_VECTORS = {0: (SIGFPE, "divide error"), 1: (SIGTRAP, "debug trap"), 3: (SIGTRAP, "breakpoint"),
            4: (SIGSEGV, "overflow"), 5: (SIGSEGV, "bound range"), 6: (SIGILL, "invalid opcode"),
            13: (SIGSEGV, "general protection"), 14: (SIGSEGV, "page fault"),
            16: (SIGFPE, "x87 floating point"), 17: (SIGBUS, "alignment check"),
            19: (SIGFPE, "SIMD floating point")}


class Stop:
    """Why `Cpu.run` returned: 'stopped' (asked by the LibOS, right after a system
    call); 'preempted' (stop_from_host_thread, between two blocks); 'fault' (the guest
    faulted), 'interrupted' (Ctrl-C in the host) or 'internal' (a LibOS failure), each
    with the signal the guest dies of."""

    __slots__ = ("kind", "signal", "address", "message")

    def __init__(self, kind, signal=0, address=0, message=""):
        self.kind, self.signal, self.address, self.message = kind, signal, address, message

    def __repr__(self):
        return "Stop(%s, sig=%d, %s)" % (self.kind, self.signal, self.message)


_STOPPED = Stop("stopped")
_PREEMPTED = Stop("preempted")


class Cpu:
    """One emulated x86-64 CPU; memory regions are host-backed (`map_host`)."""

    def __init__(self):
        self._uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self._uc.ctl_set_tlb_mode(ucc.UC_TLB_VIRTUAL)
        self._uch = self._uc._uch
        self._keep = []              # ctypes callbacks must outlive the engine's use of them
        self._fault = None           # (UC_MEM_* access, address) from the TLB fill hook
        # the Unicorn regions, for the fill hook: sorted starts, exclusive ends, perms
        # (updated in place: the hook holds these lists)
        self._starts, self._ends, self._perms = [], [], []
        self._fills = [0, 0]         # TLB fills: in all, since the last flush
        self._host_op = False        # the LibOS is changing memory: see _changing_memory
        self._granted = False
        self._intno = None
        self._stop_reason = None
        self._arg_ids = (ctypes.c_int * 7)(*_ARG_REGS)
        self._args = (ctypes.c_uint64 * 7)()
        self._reg_buf = ctypes.create_string_buffer(64)     # reg_read_bytes / reg_write_bytes
        self._arg_ptrs = (ctypes.c_void_p * 7)(*[ctypes.addressof(self._args) + 8 * i for i in range(7)])
        self._cpuid = cpuid_table()
        # before any hook and any translation (cpu_engine.py)
        self._engine = Engine(self._uc, _lib)
        self._add_hook(ucc.UC_HOOK_INTR, _INTR_CB(self._intr_hook))
        # Faults come from the fill hook: never add a UC_HOOK_MEM_* hook, not even a
        # bounded one over user space, or every store there is back on the slow path.
        self._add_hook(ucc.UC_HOOK_TLB_FILL, _TLB_FILL_CB(self._make_tlb_fill()))
        # inside run's emu_start and not in the LibOS's own memory calls: a host
        # thread may stop the guest (both under _guest_lock)
        self._in_guest = False
        self._guest_lock = threading.Lock()

    # ---- hooks ----------------------------------------------------------------
    def _add_hook(self, htype, cfunc, insn=None):
        handle = _binding.uc_hook_h()
        extra = (ctypes.c_int(insn),) if insn is not None else ()
        err = _lib.uc_hook_add(self._uch, ctypes.byref(handle), htype, ctypes.cast(cfunc, ctypes.c_void_p),
                               None, ctypes.c_uint64(1), ctypes.c_uint64(0), *extra)
        if err != ucc.UC_ERR_OK:
            raise UcError(err)
        self._keep.append(cfunc)

    def set_syscall_table(self, table, on_error, armed=(False,), after=None) -> None:
        """Route SYSCALL to `table[rax] = (handler, 1 + nargs)`: the handler gets the
        argument registers (rdi, rsi, rdx, r10, r8, r9; as many as it takes) and returns
        the value for RAX (negative numbers wrap, as the kernel's -errno do) or None to
        leave RAX alone. If the lookup or the handler raises, `on_error(args, exc)`
        (args = [rax, rdi, ...]) gives the result instead; it must not raise.
        The dispatch is inlined here: one Python frame less per call. `after()` runs
        after a call whenever `armed[0]` holds (signals pending: one index test per
        call otherwise)."""
        # every argument pre-built as a ctypes instance, for the argtype-less calls
        uch = ctypes.c_void_p(self._uch.value)
        read_batch, ids, ptrs = _raw.uc_reg_read_batch, ctypes.c_void_p(ctypes.addressof(self._arg_ids)), \
            ctypes.c_void_p(ctypes.addressof(self._arg_ptrs))
        count = ctypes.c_int(7)
        # a memoryview over the array: .tolist() is the cheapest way to Python ints
        words = memoryview(self._args).cast("B").cast("Q")
        tolist = words.tolist
        write, rax_id = _raw.uc_reg_write, ctypes.c_int(x86.UC_X86_REG_RAX)
        rax_ptr = ctypes.c_void_p(ctypes.addressof(self._args))
        mask = (1 << 64) - 1
        stop = self.stop

        def on_syscall(_uc, _data):
            # RIP still points at `syscall` here; Unicorn adds 2 after we return
            read_batch(uch, ids, ptrs, count)
            args = tolist()
            try:
                handler, nargs = table[args[0]]
                result = handler(*args[1:nargs])
            except BaseException as exc:  # noqa: BLE001 - nothing may escape into C
                try:
                    result = on_error(args, exc)
                except KeyboardInterrupt:
                    stop(Stop("interrupted", SIGINT, 0, "interrupted"))
                    return
                except BaseException as fatal:  # noqa: BLE001
                    stop(Stop("internal", SIGSEGV, 0, "LibOS error: %r" % (fatal,)))
                    return
            if result is not None:
                words[0] = result & mask
                write(uch, rax_id, rax_ptr)
            if armed[0]:
                try:
                    after()
                except BaseException as fatal:  # noqa: BLE001
                    stop(Stop("internal", SIGSEGV, 0, "LibOS error delivering a signal: %r" % (fatal,)))

        # SYSCALL's hook first in Unicorn's list of instruction hooks, then CPUID's:
        # helper_syscall walks the list and stops at the first entry after which a
        # stop is pending (cpu_engine.py, point 2), so nothing may come before it
        self._add_hook(ucc.UC_HOOK_INSN, _SYSCALL_CB(on_syscall), x86.UC_X86_INS_SYSCALL)
        self._add_hook(ucc.UC_HOOK_INSN, _CPUID_CB(self._cpuid_hook), x86.UC_X86_INS_CPUID)

    def _cpuid_hook(self, _uc, _data):
        try:
            leaf = self.reg_read(x86.UC_X86_REG_EAX) & 0xFFFFFFFF
            sub = self.reg_read(x86.UC_X86_REG_ECX) & 0xFFFFFFFF
            values = self._cpuid.get((leaf, sub if leaf in (4, 7) else 0), (0, 0, 0, 0))
            for reg, value in zip(_CPUID_REGS, values):
                self._uc.reg_write(reg, value)
        except Exception:  # noqa: BLE001
            return 0
        return 1   # skip Unicorn's own CPUID

    def _intr_hook(self, _uc, intno, _data):
        self._intno = intno
        _lib.uc_emu_stop(self._uch)

    def _make_tlb_fill(self):
        """The UC_HOOK_TLB_FILL callback: translate 1:1 and give the entry its region's
        permissions (R|W for data, R|X for code), or refuse the access, which stops the
        emulation at the faulting instruction. Refusals from probes (a helper asking
        whether a page is accessible) record a fault too; `run` uses the recorded
        fault only when emu_start failed with a memory error."""
        starts, ends, perms = self._starts, self._ends, self._perms
        find, needs = bisect.bisect_right, _ACCESS_NEEDS
        entry_words = (ctypes.c_uint64 * 2).from_address     # paddr, then perms (+ padding)
        flush, uch, flush_code = _raw.uc_ctl, ctypes.c_void_p(self._uch.value), _CTL_TLB_FLUSH
        regrow, fills = TLB_REGROW_FILLS, self._fills
        def on_tlb_fill(_uc, vaddr, access, entry, _data):
            try:
                fills[0] += 1
                fills[1] += 1
                if fills[1] >= regrow:
                    # So many fills since the last flush: the TLB is too small for the
                    # working set. Flushing lets QEMU double it. Safe inside a fill:
                    # tlb_fill's callers re-read the entry after it, since a fill may
                    # resize the table.
                    flush(uch, flush_code)
                    fills[1] = 0
                kind = access - ucc.UC_MEM_READ
                i = find(starts, vaddr) - 1
                page_perms = perms[i] if i >= 0 and vaddr < ends[i] else 0
                if page_perms & needs[kind]:
                    words = entry_words(entry)
                    words[0] = vaddr
                    words[1] = page_perms
                    return True
                if self._host_op:
                    # Not the guest: Unicorn translating an address for the LibOS's own
                    # call (uc_mem_unmap and ctl_remove_cache look pages up as
                    # instruction fetches to find translated code). A refusal there
                    # raises a guest exception from inside that call; grant it, and
                    # _changing_memory flushes the entry afterwards.
                    words = entry_words(entry)
                    words[0] = vaddr
                    words[1] = page_perms | needs[kind]
                    self._granted = True
                    return True
                if page_perms:
                    self._fault = (_ACCESS_PROT[kind], vaddr)
                else:
                    self._fault = (_ACCESS_UNMAPPED[kind], vaddr)
            except KeyboardInterrupt:
                self.stop(Stop("interrupted", SIGINT, 0, "interrupted"))
            except BaseException as fatal:  # noqa: BLE001 - nothing may escape into C
                self.stop(Stop("internal", SIGSEGV, 0, "LibOS error in the TLB fill: %r" % (fatal,)))
            return False

        return on_tlb_fill

    # ---- running ----------------------------------------------------------------
    def run(self, pc: int) -> Stop:
        """Run from `pc` until the LibOS calls `stop` or the guest faults."""
        self._fault = self._intno = self._stop_reason = None
        with self._guest_lock:
            self._in_guest = True
        err = _lib.uc_emu_start(self._uch, pc, 0, 0, 0)
        with self._guest_lock:
            self._in_guest = False
        if self._stop_reason is not None:
            # asked from the SYSCALL hook: the block ends with the system call, so the
            # CPU stops right after it even when a preemption came in the meantime
            return self._stop_reason
        if self._intno is not None:
            signal, what = _VECTORS.get(self._intno, (SIGSEGV, "interrupt %d" % self._intno))
            return Stop("fault", signal, 0, "%s at rip %#x" % (what, self.pc))
        if err in _MEMORY_ERRORS and self._fault is not None:
            access, address = self._fault
            return Stop("fault", SIGSEGV, address, "%s memory at %#x" % (_MEM_ACCESS.get(access, "bad access"), address))
        if err == ucc.UC_ERR_INSN_INVALID:
            return Stop("fault", SIGILL, 0, "invalid instruction at rip %#x" % self.pc)
        if err not in (ucc.UC_ERR_OK, PREEMPTED):
            return Stop("fault", SIGSEGV, 0, "%s at rip %#x" % (_lib.uc_strerror(err).decode(), self.pc))
        if err == PREEMPTED:
            return _PREEMPTED            # stop_from_host_thread, between two blocks
        # emulation ended without anyone asking (e.g. HLT): Linux sends SIGSEGV
        return Stop("fault", SIGSEGV, 0, "the CPU halted at rip %#x" % self.pc)

    def stop(self, reason: Stop = None) -> None:
        """Make `run` return (with `reason`, default 'stopped') once the current
        instruction or hook is done."""
        self._stop_reason = reason or _STOPPED
        _lib.uc_emu_stop(self._uch)

    # ---- thread contexts ----------------------------------------------------------
    # A thread off the CPU is a Unicorn context: every register, FS base included.
    # Measured: save + restore through the raw library 1.4 us, against 3-6 us for
    # each single register through the binding (a batched save of the GPRs, RIP,
    # RFLAGS, FS base and the SSE state would cost several times more).
    def new_context(self):
        ctx = ctypes.c_void_p()
        err = _lib.uc_context_alloc(self._uch, ctypes.byref(ctx))
        if err != ucc.UC_ERR_OK:
            raise UcError(err)
        return ctx

    def save_context(self, ctx) -> None:
        _raw.uc_context_save(ctypes.c_void_p(self._uch.value), ctx)

    def restore_context(self, ctx) -> None:
        _raw.uc_context_restore(ctypes.c_void_p(self._uch.value), ctx)

    @staticmethod
    def free_context(ctx) -> None:
        if ctx:
            _lib.uc_context_free(ctx)

    def stop_from_host_thread(self) -> bool:
        """Preemption, from a host thread while the guest runs (the GIL is released
        inside emu_start): `run` returns 'preempted' with the CPU state exact, between
        two translated blocks (cpu_engine.Engine.request_stop). Never touches the stop
        reason, so a fault or a LibOS error in the same slice is not hidden. Under the
        lock `run` takes around emu_start, so that a stop lands in the slice it was
        meant for (one left over is reset by the next emu_start); False when no slice
        is running."""
        with self._guest_lock:
            if not self._in_guest:
                return False
            self._engine.request_stop()
            return True

    # ---- registers ----------------------------------------------------------------
    # RIP and RAX through the raw library (~0.5 us against 3-6 us through the
    # binding): the scheduler reads and writes them at every thread switch.
    def _raw_reg(self):
        cell = getattr(self, "_cell", None)
        if cell is None:
            value = ctypes.c_uint64()
            cell = self._cell = (ctypes.c_void_p(self._uch.value), value, ctypes.byref(value),
                                 ctypes.c_int(x86.UC_X86_REG_RIP), ctypes.c_int(x86.UC_X86_REG_RAX))
            self._pc_ids = (ctypes.c_int * 1)(x86.UC_X86_REG_RIP)
            self._pc_vals = (ctypes.c_void_p * 1)(ctypes.addressof(value))
            self._pc_id = ctypes.c_void_p(ctypes.addressof(self._pc_ids))
            self._pc_ptr = ctypes.c_void_p(ctypes.addressof(self._pc_vals))
        return cell

    def get_pc(self) -> int:
        uch, value, ref, rip, _ = self._raw_reg()
        _raw.uc_reg_read(uch, rip, ref)
        return value.value

    def set_pc(self, pc: int) -> None:
        """Write RIP through uc_reg_write_batch, never uc_reg_write: on unicorn 2.1.4
        uc_reg_write of the PC also sets skip_sync_pc_on_exit, a flag only the next
        block-start stop check clears. A PC written in a hook (an in-hook thread
        switch, a signal handler) ends the block through the syscall's own exit, so
        the flag stayed set, and the next stop from the watchdog then left without
        restoring RIP: the thread resumed at a stale RIP with newer registers and ran
        instructions again (a CAS loop lost an increment in most runs)."""
        uch, value, _, _, _ = self._raw_reg()
        value.value = pc
        _raw.uc_reg_write_batch(uch, self._pc_id, self._pc_ptr, ctypes.c_int(1))

    def set_rax(self, result: int) -> None:
        uch, value, ref, _, rax = self._raw_reg()
        value.value = result & 0xFFFFFFFFFFFFFFFF
        _raw.uc_reg_write(uch, rax, ref)

    def reg_read_bytes(self, reg: int, size: int) -> bytes:
        """A register's raw bytes (x87 ST registers: 10, XMM: 16), through the raw
        library: the binding converts these to numbers and back."""
        buf = self._reg_buf
        _raw.uc_reg_read(ctypes.c_void_p(self._uch.value), ctypes.c_int(reg), buf)
        return buf.raw[:size]

    def reg_write_bytes(self, reg: int, value: bytes) -> None:
        buf = self._reg_buf
        ctypes.memmove(buf, value, len(value))
        _raw.uc_reg_write(ctypes.c_void_p(self._uch.value), ctypes.c_int(reg), buf)

    def reg_read(self, reg: int) -> int:
        return self._uc.reg_read(reg)

    def reg_write(self, reg: int, value: int) -> None:
        if reg in _PC_REGS:
            self.set_pc(value)           # see set_pc: never through uc_reg_write
        else:
            self._uc.reg_write(reg, value)

    @property
    def pc(self) -> int:
        return self._uc.reg_read(x86.UC_X86_REG_RIP)

    def set_sp(self, value: int) -> None:
        self._uc.reg_write(x86.UC_X86_REG_RSP, value)

    def set_fs_base(self, value: int) -> None:
        self._uc.reg_write(x86.UC_X86_REG_FS_BASE, value)

    def get_fs_base(self) -> int:
        return self._uc.reg_read(x86.UC_X86_REG_FS_BASE)

    def set_gs_base(self, value: int) -> None:
        self._uc.reg_write(x86.UC_X86_REG_GS_BASE, value)

    def get_gs_base(self) -> int:
        return self._uc.reg_read(x86.UC_X86_REG_GS_BASE)

    # ---- memory regions (host-backed: splitting never copies) -----------------
    # Each of these makes Unicorn flush its whole TLB (measured), so no entry outlives
    # the permissions it was filled with.
    def map_host(self, addr: int, size: int, perms: int, host_addr: int) -> None:
        with self._changing_memory(flushes=True):
            self._uc.mem_map_ptr(addr, size, perms, host_addr)

    def unmap(self, addr: int, size: int) -> None:
        with self._changing_memory(flushes=True):
            self._uc.mem_unmap(addr, size)

    def protect(self, addr: int, size: int, perms: int) -> None:
        with self._changing_memory(flushes=True):
            self._uc.mem_protect(addr, size, perms)

    @contextlib.contextmanager
    def _changing_memory(self, flushes):
        """Around the LibOS's own Unicorn memory calls: the fill hook grants the lookups
        Unicorn makes for them (see on_tlb_fill); any entry so granted is flushed at
        the end, and the fill hook's copy of the regions is brought up to date.
        `flushes`: Unicorn flushes the whole TLB in this call."""
        # no stop from a host thread meanwhile: uc_mem_map reads uc->invalid_error
        self._guest_lock.acquire()
        self._host_op, self._granted = True, False
        try:
            yield
        finally:
            self._host_op = False
            self._guest_lock.release()
            self._mirror_regions()
            if self._granted:
                # Unicorn's own flush may come before its lookup: flush again
                self.flush_tlb()
            elif flushes:
                self._fills[1] = 0

    def _mirror_regions(self):
        """Copy Unicorn's region list for the fill hook (in place: the hook holds the
        lists). One uc_mem_regions call read as raw bytes: ~5 us for 20 regions,
        against ~35 us through the binding's generator of tuples."""
        array, count = ctypes.POINTER(_binding.uc_mem_region)(), ctypes.c_uint32()
        err = _lib.uc_mem_regions(self._uch, ctypes.byref(array), ctypes.byref(count))
        if err != ucc.UC_ERR_OK:
            raise UcError(err)
        try:
            # struct uc_mem_region {u64 begin; u64 end (inclusive); u32 perms;}, 24 bytes
            regions = sorted(_REGION.iter_unpack(ctypes.string_at(array, count.value * _REGION.size)))
        finally:
            _lib.uc_free(array)
        self._starts[:] = [begin for begin, _, _ in regions]
        self._ends[:] = [end + 1 for _, end, _ in regions]
        self._perms[:] = [perms for _, _, perms in regions]

    def invalidate_code(self, start: int, end: int) -> None:
        """Drop translated code for [start, end): the host wrote to code memory."""
        with self._changing_memory(flushes=False):
            self._uc.ctl_remove_cache(start, end)

    def regions(self):
        """(start, end_exclusive, perms) of every Unicorn region, for tests and debugging."""
        return [(b, e + 1, p) for b, e, p in self._uc.mem_regions()]

    def flush_tlb(self) -> None:
        """Drop every TLB entry (also lets QEMU resize the TLB)."""
        _raw.uc_ctl(ctypes.c_void_p(self._uch.value), _CTL_TLB_FLUSH)
        self._fills[1] = 0

    @property
    def tlb_fills(self) -> int:
        """TLB fills so far (each one a call of the fill hook), for tests and tuning."""
        return self._fills[0]

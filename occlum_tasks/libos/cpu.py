"""The one Unicorn CPU of the enclave, and every use of Unicorn's binding internals.

Measured on unicorn 2.1.4 (DESIGN.md section 8); pinned in pyproject.toml. The system
call path is a raw `uc_hook_add` ctypes callback that reads the seven argument
registers with one `uc_reg_read_batch` into a preallocated array: about 3 us per call,
against 4.6 us through the binding's own callbacks. No per-instruction or per-block
hook is ever installed: they slow translated code down by 5-15x.

Faults (unmapped or protected memory, CPU exceptions, invalid instructions) stop the
emulation; `run` reports them as a `Stop` and the caller delivers the signal outside
`emu_start`, since a memory hook cannot redirect RIP.
"""
import ctypes

from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_64
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86
from unicorn.unicorn_py3 import unicorn as _binding

_lib = _binding.uclib
# The same library through a second handle whose functions have no argtypes: called
# only with ctypes instances, a call skips argument conversion (0.6 us instead of 1.3 us
# for uc_reg_read_batch), which matters on the system call path.
_raw = ctypes.CDLL(_lib._name)
_raw.uc_reg_read_batch.restype = ctypes.c_int
_raw.uc_reg_write.restype = ctypes.c_int

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, ucc.UC_PROT_READ, ucc.UC_PROT_WRITE, ucc.UC_PROT_EXEC

SIGINT, SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV = 2, 4, 5, 7, 8, 11

_SYSCALL_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_CPUID_CB = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p)
_INTR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_MEM_INVALID_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64,
                                   ctypes.c_int, ctypes.c_int64, ctypes.c_void_p)

# The argument registers of a Linux x86-64 system call, in order (rax = number).
_ARG_REGS = (x86.UC_X86_REG_RAX, x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX,
             x86.UC_X86_REG_R10, x86.UC_X86_REG_R8, x86.UC_X86_REG_R9)
_CPUID_REGS = (x86.UC_X86_REG_EAX, x86.UC_X86_REG_EBX, x86.UC_X86_REG_ECX, x86.UC_X86_REG_EDX)

_MEM_ACCESS = {
    ucc.UC_MEM_READ_UNMAPPED: "read of unmapped", ucc.UC_MEM_WRITE_UNMAPPED: "write to unmapped",
    ucc.UC_MEM_FETCH_UNMAPPED: "execution of unmapped", ucc.UC_MEM_READ_PROT: "read of protected",
    ucc.UC_MEM_WRITE_PROT: "write to protected", ucc.UC_MEM_FETCH_PROT: "execution of non-executable",
}
# CPU exception vector -> (signal, what): what Linux delivers for each
_VECTORS = {0: (SIGFPE, "divide error"), 1: (SIGTRAP, "debug trap"), 3: (SIGTRAP, "breakpoint"),
            4: (SIGSEGV, "overflow"), 5: (SIGSEGV, "bound range"), 6: (SIGILL, "invalid opcode"),
            13: (SIGSEGV, "general protection"), 14: (SIGSEGV, "page fault"),
            16: (SIGFPE, "x87 floating point"), 17: (SIGBUS, "alignment check"),
            19: (SIGFPE, "SIMD floating point")}


def _cpuid_table():
    """The CPU the guest sees: SSE up to 4.2, AES, PCLMUL, POPCNT, BMI1/2, RDRAND, no
    AVX/AVX2/FMA/XSAVE, so that libc IFUNCs pick paths Unicorn implements."""
    brand = b"occlum-py emulated x86-64 (unicorn)".ljust(48, b"\0")
    words = [int.from_bytes(brand[i:i + 4], "little") for i in range(0, 48, 4)]
    sse = (1 << 0) | (1 << 1) | (1 << 9) | (1 << 13) | (1 << 19) | (1 << 20) | (1 << 22) | (1 << 23) \
        | (1 << 25) | (1 << 30) | (1 << 31)   # SSE3 PCLMUL SSSE3 CX16 SSE4.1/2 MOVBE POPCNT AES RDRAND HV
    return {
        (0, 0): (7, 0x756E6547, 0x6C65746E, 0x49656E69),           # max leaf 7, GenuineIntel
        (1, 0): (0x000206C2, 0x00010800, sse, 0x078BFBFD),          # family 6 model 0x2c
        (2, 0): (0x00000001, 0, 0, 0x002C307D),                     # cache descriptors
        (4, 0): (0x121, 0x01C0003F, 63, 0),                          # L1d 32K 8-way
        (4, 1): (0x122, 0x01C0003F, 63, 0),                          # L1i 32K
        (4, 2): (0x143, 0x01C0003F, 511, 0),                         # L2 256K
        (4, 3): (0x163, 0x03C0003F, 8191, 0),                        # L3 8M 16-way
        (7, 0): (0, (1 << 3) | (1 << 8) | (1 << 9), 0, 0),           # BMI1 BMI2 ERMS
        (0x80000000, 0): (0x80000008, 0, 0, 0),
        (0x80000001, 0): (0, 0, (1 << 0) | (1 << 5), (1 << 11) | (1 << 20) | (1 << 29)),  # LAHF LZCNT; SYSCALL NX LM
        (0x80000002, 0): tuple(words[0:4]), (0x80000003, 0): tuple(words[4:8]),
        (0x80000004, 0): tuple(words[8:12]),
        (0x80000006, 0): (0, 0, 0x01006040, 0),
        (0x80000008, 0): (0x00003028, 0, 0, 0),
    }


class Stop:
    """Why `Cpu.run` returned: 'stopped' (asked by the LibOS); 'fault' (the guest
    faulted), 'interrupted' (Ctrl-C in the host) or 'internal' (a LibOS failure), each
    with the signal the guest dies of."""

    __slots__ = ("kind", "signal", "address", "message")

    def __init__(self, kind, signal=0, address=0, message=""):
        self.kind, self.signal, self.address, self.message = kind, signal, address, message

    def __repr__(self):
        return "Stop(%s, sig=%d, %s)" % (self.kind, self.signal, self.message)


_STOPPED = Stop("stopped")


class Cpu:
    """One emulated x86-64 CPU; memory regions are host-backed (`map_host`)."""

    def __init__(self):
        self._uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self._uch = self._uc._uch
        self._keep = []              # ctypes callbacks must outlive the engine's use of them
        self._fault = None           # (access, address) from the invalid-memory hook
        self._intno = None
        self._stop_reason = None
        self._arg_ids = (ctypes.c_int * 7)(*_ARG_REGS)
        self._args = (ctypes.c_uint64 * 7)()
        self._arg_ptrs = (ctypes.c_void_p * 7)(*[ctypes.addressof(self._args) + 8 * i for i in range(7)])
        self._cpuid = _cpuid_table()
        self._add_hook(ucc.UC_HOOK_INSN, _CPUID_CB(self._cpuid_hook), x86.UC_X86_INS_CPUID)
        self._add_hook(ucc.UC_HOOK_INTR, _INTR_CB(self._intr_hook))
        self._add_hook(ucc.UC_HOOK_MEM_INVALID, _MEM_INVALID_CB(self._mem_invalid_hook))

    # ---- hooks ----------------------------------------------------------------
    def _add_hook(self, htype, cfunc, insn=None):
        handle = _binding.uc_hook_h()
        extra = (ctypes.c_int(insn),) if insn is not None else ()
        err = _lib.uc_hook_add(self._uch, ctypes.byref(handle), htype, ctypes.cast(cfunc, ctypes.c_void_p),
                               None, ctypes.c_uint64(1), ctypes.c_uint64(0), *extra)
        if err != ucc.UC_ERR_OK:
            raise UcError(err)
        self._keep.append(cfunc)

    def set_syscall_table(self, table, on_error) -> None:
        """Route SYSCALL to `table[rax] = (handler, 1 + nargs)`: the handler gets the
        argument registers (rdi, rsi, rdx, r10, r8, r9; as many as it takes) and returns
        the value for RAX (negative numbers wrap, as the kernel's -errno do) or None to
        leave RAX alone. If the lookup or the handler raises, `on_error(args, exc)`
        (args = [rax, rdi, ...]) gives the result instead; it must not raise.
        The dispatch is inlined here: one Python frame less per call."""
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

        self._add_hook(ucc.UC_HOOK_INSN, _SYSCALL_CB(on_syscall), x86.UC_X86_INS_SYSCALL)

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

    def _mem_invalid_hook(self, _uc, access, address, _size, _value, _data):
        self._fault = (access, address)
        return False   # not handled: emulation stops with the matching error

    # ---- running ----------------------------------------------------------------
    def run(self, pc: int) -> Stop:
        """Run from `pc` until the LibOS calls `stop` or the guest faults."""
        self._fault = self._intno = self._stop_reason = None
        err = _lib.uc_emu_start(self._uch, pc, 0, 0, 0)
        if self._stop_reason is not None:
            return self._stop_reason
        if self._fault is not None:
            access, address = self._fault
            return Stop("fault", SIGSEGV, address, "%s memory at %#x" % (_MEM_ACCESS.get(access, "bad access"), address))
        if self._intno is not None:
            signal, what = _VECTORS.get(self._intno, (SIGSEGV, "interrupt %d" % self._intno))
            return Stop("fault", signal, 0, "%s at rip %#x" % (what, self.pc))
        if err == ucc.UC_ERR_INSN_INVALID:
            return Stop("fault", SIGILL, 0, "invalid instruction at rip %#x" % self.pc)
        if err != ucc.UC_ERR_OK:
            return Stop("fault", SIGSEGV, 0, "%s at rip %#x" % (_lib.uc_strerror(err).decode(), self.pc))
        # emulation ended without anyone asking (e.g. HLT): Linux sends SIGSEGV
        return Stop("fault", SIGSEGV, 0, "the CPU halted at rip %#x" % self.pc)

    def stop(self, reason: Stop = None) -> None:
        """Make `run` return (with `reason`, default 'stopped') once the current
        instruction or hook is done."""
        self._stop_reason = reason or _STOPPED
        _lib.uc_emu_stop(self._uch)

    # ---- registers ----------------------------------------------------------------
    def reg_read(self, reg: int) -> int:
        return self._uc.reg_read(reg)

    def reg_write(self, reg: int, value: int) -> None:
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
    def map_host(self, addr: int, size: int, perms: int, host_addr: int) -> None:
        self._uc.mem_map_ptr(addr, size, perms, host_addr)

    def unmap(self, addr: int, size: int) -> None:
        self._uc.mem_unmap(addr, size)

    def protect(self, addr: int, size: int, perms: int) -> None:
        self._uc.mem_protect(addr, size, perms)

    def invalidate_code(self, start: int, end: int) -> None:
        """Drop translated code for [start, end): the host wrote to code memory."""
        self._uc.ctl_remove_cache(start, end)

    def regions(self):
        """(start, end_exclusive, perms) of every Unicorn region, for tests and debugging."""
        return [(b, e + 1, p) for b, e, p in self._uc.mem_regions()]

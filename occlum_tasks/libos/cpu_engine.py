"""The fields of Unicorn's engine that make a stop exact, which no API reaches.

Used only by cpu.py (DESIGN.md section 8: binding internals stay behind the CPU's
interface). Measured on the unicorn 2.1.4 wheel for x86-64 Linux, pinned in
pyproject.toml; every offset is checked when a CPU is made (static fields against
values the API sets, dynamic ones by a probe run), and a build whose fields are
elsewhere is refused (EngineLayoutError) rather than run inexactly.

Two ways out of emu_start are not exact on 2.1.4, and the CPU uses neither:

1. A stop request is checked after every guest load and store (tcg_gen_qemu_ld/st
   call check_exit_request), and seen there it unwinds to the start of an
   instruction whose store has landed: resuming runs it again (`add [m], 1` counts
   twice, a successful `lock cmpxchg` looks failed). uc->no_exit_request (Unicorn's
   switch for ARM IT blocks, read while translating) leaves only the check at the
   start of each translated block, which unwinds to the block's first instruction
   before any of it ran. It also drops a helper call from every memory access.
2. uc_emu_stop sets uc->stop_request, and the helpers of SYSCALL and CPUID walk the
   list of instruction hooks stopping at the first hook after which stop_request is
   set. A stop from another thread that lands between a block's start and its
   SYSCALL skips the system call hook: the call is never made and RAX keeps the
   call's number (a pthread_create returned success without a clone). So a stop from
   a host thread (`request_stop`) does what uc_emu_stop does but leaves stop_request
   alone: cpu->exit_request and the icount word make the next block start leave the
   CPU loop, exactly, and uc->invalid_error = PREEMPTED makes Unicorn's loop end and
   uc_emu_start return that code. invalid_error is also read while Unicorn maps RAM
   (uc_mem_map): the CPU never requests a stop during its own memory calls.
"""
import ctypes
import os
import struct

from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

# struct uc_struct (include/uc_priv.h)
UC_CPU = 440                 # CPUState *cpu (an X86CPU)
UC_STOP_REQUEST = 1389       # bool stop_request
UC_INVALID_ADDR = 1416       # uint64_t invalid_addr
UC_INVALID_ERROR = 1424      # int invalid_error
UC_TARGET_PAGE_SIZE = 1984   # uint32_t target_page_size (4096)
UC_CONTEXT_CONTENT = 2012    # uc_context_content context_content (UC_CTL_CONTEXT_MODE)
UC_HOOK_INSERT = 2032        # bool hook_insert (false outside uc_hook_add)
UC_NO_EXIT_REQUEST = 2034    # bool no_exit_request
UC_INIT_DONE = 2035          # bool init_done (true once the engine is set up)
# struct X86CPU: CPUState parent_obj, CPUNegativeOffsetState neg, CPUX86State env
CPU_CREATED = 16             # bool created (true inside uc_emu_start)
CPU_EXIT_REQUEST = 21        # bool exit_request
CPU_ICOUNT_DECR_PTR = 304    # IcountDecr *icount_decr_ptr (-> neg.icount_decr)
CPU_ENV = 35408              # CPUX86State env; regs[R_EAX] first
ICOUNT_BEFORE_ENV = 16       # neg.icount_decr is 16 bytes before env
# what uc_emu_start returns after request_stop: no uc_err has this value
PREEMPTED = 0x7E57

_PROBE_PAGE = 0x1000
_PROBE_CODE = b"\x0f\x05\xf4" + b"\x48\x8b\x04\x25\x10\x00\x00\x00\xf4"  # syscall; hlt; mov rax,[0x10]; hlt
_MAGIC = 0x0CC1_0E5E_F1E1_D5A5           # RAX, and its complement RCX, while checking
_MAGIC_NOT = ~_MAGIC & (2 ** 64 - 1)


class EngineLayoutError(RuntimeError):
    """The Unicorn library is not the build whose internals cpu_engine.py knows."""


def _refuse(what):
    from unicorn.unicorn_py3 import unicorn as binding
    raise EngineLayoutError(
        "the Unicorn library in use (%s) is not the unicorn 2.1.4 build occlum-py was measured on (%s), and "
        "without it a preempted thread may run an instruction twice; install unicorn==2.1.4 from PyPI"
        % (binding.uclib._name, what))


def _u(ctype, address):
    return ctype.from_address(address)


def _peek(address: int, size: int):
    """`size` bytes of this process's memory, or None where nothing is mapped."""
    if not 0 < address < 1 << 47:
        return None
    try:
        fd = os.open("/proc/self/mem", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.pread(fd, size, address)
    except OSError:
        return None
    finally:
        os.close(fd)


class Engine:
    """The engine fields of one Uc, checked; made before any hook is added."""

    def __init__(self, uc, lib):
        self._lib, self._uch = lib, uc._uch
        base = self._uch.value
        self._check_static(uc, base)
        cpu = _u(ctypes.c_uint64, base + UC_CPU).value
        env = cpu + CPU_ENV
        uc.reg_write(x86.UC_X86_REG_RAX, _MAGIC)
        uc.reg_write(x86.UC_X86_REG_RCX, _MAGIC_NOT)
        # read through /proc/self/mem: a wrong offset gives a wild pointer, which must
        # be refused, not dereferenced
        regs, icount_ptr = _peek(env, 16), _peek(cpu + CPU_ICOUNT_DECR_PTR, 8)
        if regs != struct.pack("<QQ", _MAGIC, _MAGIC_NOT) \
                or icount_ptr != struct.pack("<Q", env - ICOUNT_BEFORE_ENV):
            _refuse("the CPU state is not where it was")
        uc.reg_write(x86.UC_X86_REG_RAX, 0)
        uc.reg_write(x86.UC_X86_REG_RCX, 0)
        self._exit_request = _u(ctypes.c_bool, cpu + CPU_EXIT_REQUEST)
        self._icount_high = _u(ctypes.c_uint16, env - ICOUNT_BEFORE_ENV + 2)
        self._invalid_error = _u(ctypes.c_int, base + UC_INVALID_ERROR)
        # before anything is translated: the block-start check only (see the docstring)
        _u(ctypes.c_bool, base + UC_NO_EXIT_REQUEST).value = True
        self._probe(uc, base, cpu)

    def _check_static(self, uc, base):
        content = _u(ctypes.c_int, base + UC_CONTEXT_CONTENT)
        seen = content.value
        flags = [_u(ctypes.c_bool, base + off).value for off in (UC_HOOK_INSERT, UC_NO_EXIT_REQUEST, UC_INIT_DONE)]
        mode = ucc.UC_CTL_CONTEXT_CPU | ucc.UC_CTL_CONTEXT_MEMORY
        uc.ctl(ucc.UC_CTL_CONTEXT_MODE, ucc.UC_CTL_IO_WRITE, mode)
        toggled = content.value
        uc.ctl(ucc.UC_CTL_CONTEXT_MODE, ucc.UC_CTL_IO_WRITE, ucc.UC_CTL_CONTEXT_CPU)
        page_size = _u(ctypes.c_uint32, base + UC_TARGET_PAGE_SIZE).value
        if (page_size, seen, toggled, flags) != (4096, ucc.UC_CTL_CONTEXT_CPU, mode, [False, False, True]) \
                or content.value != ucc.UC_CTL_CONTEXT_CPU:
            _refuse("its engine fields are not where they were")

    def _probe(self, uc, base, cpu):
        """Run a few instructions and watch the dynamic fields move as measured:
        inside emu_start `created` is set; uc_emu_stop from the SYSCALL hook sets
        stop_request, exit_request and the icount word; an access to unmapped memory
        leaves its address in invalid_addr."""
        seen = {}
        stop_request = _u(ctypes.c_bool, base + UC_STOP_REQUEST)

        def on_syscall(uc_, _data):
            seen["inside"] = (_u(ctypes.c_bool, cpu + CPU_CREATED).value, self._exit_request.value,
                              self._icount_high.value, stop_request.value)
            uc_.emu_stop()
            seen["stopped"] = (self._exit_request.value, self._icount_high.value, stop_request.value)

        uc.mem_map(_PROBE_PAGE, 0x1000, ucc.UC_PROT_ALL)
        hook = uc.hook_add(ucc.UC_HOOK_INSN, on_syscall, None, 1, 0, x86.UC_X86_INS_SYSCALL)
        try:
            uc.mem_write(_PROBE_PAGE, _PROBE_CODE)
            uc.emu_start(_PROBE_PAGE, 0)
            err = self._lib.uc_emu_start(self._uch, _PROBE_PAGE + 3, 0, 0, 0)
            unmapped_at = _u(ctypes.c_uint64, base + UC_INVALID_ADDR).value
        except Exception:  # noqa: BLE001 - any surprise is a different engine
            err, unmapped_at = None, None
        finally:
            uc.hook_del(hook)
            uc.mem_unmap(_PROBE_PAGE, 0x1000)
        if seen.get("inside") != (True, False, 0, False) or seen.get("stopped") != (True, 0xFFFF, True) \
                or err != ucc.UC_ERR_READ_UNMAPPED or unmapped_at != 0x10:
            _refuse("the probe saw %r, error %r at %r" % (seen, err, unmapped_at))

    def request_stop(self) -> None:
        """Leave the guest at the next block start (see the docstring). The caller
        makes sure that the guest runs and that the CPU is not inside uc_mem_map."""
        self._invalid_error.value = PREEMPTED
        self._exit_request.value = True
        self._icount_high.value = 0xFFFF

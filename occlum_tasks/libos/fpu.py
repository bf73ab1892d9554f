"""The x87/SSE state of a thread: Linux's initial state, and the 512-byte FXSAVE area.

Linux starts every program (execve) and every signal handler with the FPU in its
initial state: x87 control word 0x37F (round to nearest, 64-bit precision, exceptions
masked), an empty register stack, MXCSR 0x1F80, every ST and XMM register zero. A
thread created with clone inherits its creator's state as it is. Unicorn's fresh CPU
has a control word and MXCSR of 0 (single precision, exceptions unmasked) and a stack
tagged full, which makes `long double`, printf and strtod compute wrong results, so
`reset` must run before any guest code. A thread switch keeps the whole state: it is
part of the Unicorn context (cpu.save_context).

The FXSAVE area (Intel SDM vol. 1, 10.5.1, 64-bit format) is what a signal frame holds
at uc_mcontext.fpregs (Linux's struct _fpstate_64): its fields, as a table of
(name, offset, struct code). ST(i) are stack-relative, ten bytes in a 16-byte slot;
FTW is the abridged tag word: bit i set when physical register i is not empty.
"""
import struct

from unicorn import x86_const as x86

SIZE = 512
FIELDS = (
    ("fcw", 0, "<H"), ("fsw", 2, "<H"), ("ftw", 4, "<B"), ("fop", 6, "<H"),
    ("fip", 8, "<Q"), ("fdp", 16, "<Q"), ("mxcsr", 24, "<I"), ("mxcsr_mask", 28, "<I"),
)
ST_OFFSET, XMM_OFFSET = 32, 160
_OFFSET = {name: (offset, code) for name, offset, code in FIELDS}

FCW_INIT, MXCSR_INIT = 0x037F, 0x1F80
# what FXSAVE stores as MXCSR_MASK on CPUs with DAZ: every MXCSR bit but 16-31 writable
MXCSR_MASK = 0xFFFF
# the fields that are one Unicorn register each, with the bits FXRSTOR keeps; FSW
# (which holds TOP) is written before the stack-relative ST(i)
_REGISTERS = (("fcw", x86.UC_X86_REG_FPCW, 0xFFFF), ("fsw", x86.UC_X86_REG_FPSW, 0xFFFF),
              ("fop", x86.UC_X86_REG_FOP, 0x7FF), ("fip", x86.UC_X86_REG_FIP, 2 ** 64 - 1),
              ("fdp", x86.UC_X86_REG_FDP, 2 ** 64 - 1), ("mxcsr", x86.UC_X86_REG_MXCSR, MXCSR_MASK))
_ST = tuple(getattr(x86, "UC_X86_REG_ST%d" % i) for i in range(8))
_XMM = tuple(getattr(x86, "UC_X86_REG_XMM%d" % i) for i in range(16))


def _get(area, name):
    offset, code = _OFFSET[name]
    return struct.unpack_from(code, area, offset)[0]


def _put(area, name, value):
    offset, code = _OFFSET[name]
    struct.pack_into(code, area, offset, value)


def _size(name):
    return struct.calcsize(_OFFSET[name][1])


def save(cpu) -> bytes:
    """FXSAVE: the CPU's x87 and SSE state as the 512-byte area."""
    read = cpu.reg_read_bytes
    area = bytearray(SIZE)
    for name, reg, _ in _REGISTERS:
        _put(area, name, int.from_bytes(read(reg, _size(name)), "little"))
    tags = int.from_bytes(read(x86.UC_X86_REG_FPTAG, 2), "little")      # 2 bits a register, 3: empty
    _put(area, "ftw", sum(1 << i for i in range(8) if (tags >> (2 * i)) & 3 != 3))
    _put(area, "mxcsr_mask", MXCSR_MASK)
    for i, reg in enumerate(_ST):
        area[ST_OFFSET + 16 * i:ST_OFFSET + 16 * i + 10] = read(reg, 10)
    for i, reg in enumerate(_XMM):
        area[XMM_OFFSET + 16 * i:XMM_OFFSET + 16 * (i + 1)] = read(reg, 16)
    return bytes(area)


def restore(cpu, area: bytes) -> None:
    """FXRSTOR from a 512-byte area (as rt_sigreturn does; MXCSR bits the CPU does
    not have are dropped rather than faulting)."""
    write = cpu.reg_write_bytes
    for name, reg, keep in _REGISTERS:
        write(reg, (_get(area, name) & keep).to_bytes(_size(name), "little"))
    abridged = _get(area, "ftw")
    tags = sum((0 if abridged >> i & 1 else 3) << (2 * i) for i in range(8))
    write(x86.UC_X86_REG_FPTAG, tags.to_bytes(2, "little"))
    for i, reg in enumerate(_ST):
        write(reg, bytes(area[ST_OFFSET + 16 * i:ST_OFFSET + 16 * i + 10]))
    for i, reg in enumerate(_XMM):
        write(reg, bytes(area[XMM_OFFSET + 16 * i:XMM_OFFSET + 16 * (i + 1)]))


def _initial_area() -> bytes:
    area = bytearray(SIZE)          # empty stack (FTW 0), every register zero
    _put(area, "fcw", FCW_INIT)
    _put(area, "mxcsr", MXCSR_INIT)
    _put(area, "mxcsr_mask", MXCSR_MASK)
    return bytes(area)


INITIAL = _initial_area()


def reset(cpu) -> None:
    """Linux's initial FPU state (fpu__clear_user_states), in the CPU now."""
    restore(cpu, INITIAL)

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
_TAGS_EMPTY = 0xFFFF               # the full tag word: 0b11 (empty) for each register
_ST = tuple(getattr(x86, "UC_X86_REG_ST%d" % i) for i in range(8))
_XMM = tuple(getattr(x86, "UC_X86_REG_XMM%d" % i) for i in range(16))
_ZERO16 = bytes(16)
_INIT_WORDS = ((x86.UC_X86_REG_FPCW, FCW_INIT, 2), (x86.UC_X86_REG_FPSW, 0, 2),
               (x86.UC_X86_REG_FPTAG, _TAGS_EMPTY, 2), (x86.UC_X86_REG_FOP, 0, 2),
               (x86.UC_X86_REG_FIP, 0, 8), (x86.UC_X86_REG_FDP, 0, 8),
               (x86.UC_X86_REG_MXCSR, MXCSR_INIT, 4))


def reset(cpu) -> None:
    """Linux's initial FPU state (fpu__clear_user_states), in the CPU now."""
    write = cpu.reg_write_bytes
    for reg in _ST + _XMM:
        write(reg, _ZERO16)
    for reg, value, size in _INIT_WORDS:
        write(reg, value.to_bytes(size, "little"))


def _get(area, name):
    offset, code = _OFFSET[name]
    return struct.unpack_from(code, area, offset)[0]


def _put(area, name, value):
    offset, code = _OFFSET[name]
    struct.pack_into(code, area, offset, value)


def save(cpu) -> bytes:
    """FXSAVE: the CPU's x87 and SSE state as the 512-byte area."""
    read = cpu.reg_read_bytes
    area = bytearray(SIZE)
    word = lambda reg, size: int.from_bytes(read(reg, size), "little")  # noqa: E731
    tags = word(x86.UC_X86_REG_FPTAG, 2)
    _put(area, "fcw", word(x86.UC_X86_REG_FPCW, 2))
    _put(area, "fsw", word(x86.UC_X86_REG_FPSW, 2))
    _put(area, "ftw", sum(1 << i for i in range(8) if (tags >> (2 * i)) & 3 != 3))
    _put(area, "fop", word(x86.UC_X86_REG_FOP, 2))
    _put(area, "fip", word(x86.UC_X86_REG_FIP, 8))
    _put(area, "fdp", word(x86.UC_X86_REG_FDP, 8))
    _put(area, "mxcsr", word(x86.UC_X86_REG_MXCSR, 4))
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
    abridged = _get(area, "ftw")
    tags = sum((0 if abridged >> i & 1 else 3) << (2 * i) for i in range(8))
    write(x86.UC_X86_REG_FPCW, struct.pack("<H", _get(area, "fcw")))
    write(x86.UC_X86_REG_FPSW, struct.pack("<H", _get(area, "fsw")))     # TOP first: ST(i) are relative
    write(x86.UC_X86_REG_FPTAG, struct.pack("<H", tags))
    write(x86.UC_X86_REG_FOP, struct.pack("<H", _get(area, "fop") & 0x7FF))
    write(x86.UC_X86_REG_FIP, struct.pack("<Q", _get(area, "fip")))
    write(x86.UC_X86_REG_FDP, struct.pack("<Q", _get(area, "fdp")))
    write(x86.UC_X86_REG_MXCSR, struct.pack("<I", _get(area, "mxcsr") & MXCSR_MASK))
    for i, reg in enumerate(_ST):
        write(reg, bytes(area[ST_OFFSET + 16 * i:ST_OFFSET + 16 * i + 10]))
    for i, reg in enumerate(_XMM):
        write(reg, bytes(area[XMM_OFFSET + 16 * i:XMM_OFFSET + 16 * (i + 1)]))

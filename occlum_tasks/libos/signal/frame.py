"""The x86-64 rt_sigframe: what a handler finds on its stack, and what rt_sigreturn
reads back. The layout is Linux's (arch/x86/include/uapi/asm/sigcontext.h, ucontext.h)
because musl's restorer, siglongjmp and any program reading uc_mcontext rely on it:

    rsp -> pretcode (sa_restorer: the handler's return address)
           struct ucontext  (uc_flags, uc_link, uc_stack, uc_mcontext, uc_sigmask)
           struct siginfo   (128 bytes)
    ...    fpstate          (the 512-byte FXSAVE area, 64-byte aligned: fpu.py)

Registers go through the CPU's register calls one by one: a delivery costs a few
hundred microseconds, paid only when a signal is delivered."""
import struct

from unicorn import x86_const as x86

from .. import fpu
from ..vm import user_mem

# uc_mcontext.gregs in Linux's order, the first 18 (csgsfs, err, trapno, oldmask and
# cr2 follow, with no Unicorn register behind them)
GREGS = (x86.UC_X86_REG_R8, x86.UC_X86_REG_R9, x86.UC_X86_REG_R10, x86.UC_X86_REG_R11,
         x86.UC_X86_REG_R12, x86.UC_X86_REG_R13, x86.UC_X86_REG_R14, x86.UC_X86_REG_R15,
         x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RBP, x86.UC_X86_REG_RBX,
         x86.UC_X86_REG_RDX, x86.UC_X86_REG_RAX, x86.UC_X86_REG_RCX, x86.UC_X86_REG_RSP,
         x86.UC_X86_REG_RIP, x86.UC_X86_REG_EFLAGS)
REG_RSP, REG_RIP, REG_EFLAGS = 15, 16, 17
NGREG = 23
UC_OFFSET = 8                      # after pretcode
MCONTEXT = 40                      # in the ucontext: after uc_flags, uc_link, uc_stack
FPREGS_PTR = MCONTEXT + NGREG * 8  # 224
SIGMASK = FPREGS_PTR + 8 + 64      # 296: after fpregs and the reserved words
UC_SIZE = SIGMASK + 8              # 304
INFO_OFFSET = UC_OFFSET + UC_SIZE  # 312
INFO_SIZE = 128
FRAME_SIZE = INFO_OFFSET + INFO_SIZE
FPSTATE_SIZE = fpu.SIZE
RED_ZONE = 128
_USER_FLAGS = 0x40DD5              # CF PF AF ZF SF TF DF OF AC: what a user may change
_CSGSFS = 0x33 | (0x2B << 48)      # user cs; ss in the top bits, as Linux reports


def siginfo(signum: int, code: int, pid: int = 0, uid: int = 0, addr: int = None) -> bytes:
    """A struct siginfo: signo, errno, code, then the union (sender, or fault address)."""
    head = struct.pack("<iii4x", signum, 0, code)
    body = struct.pack("<Q", addr) if addr is not None else struct.pack("<iI", pid, uid)
    return (head + body).ljust(INFO_SIZE, b"\0")


def push(cpu, resume_pc: int, info: bytes, action, old_mask: int, altstack, stack_top=None) -> int:
    """Write a frame for handler `action` = (handler, flags, restorer, mask) below the
    current stack (or at `stack_top`, the alternate stack's top) and point the
    registers at the handler: rdi, rsi, rdx its arguments, rsp the frame. The thread
    will resume at `resume_pc` after rt_sigreturn. Returns the handler's address (the
    caller sets RIP: the SYSCALL hook adds 2 to it). `altstack` = (sp, flags, size)
    is what uc_stack reports."""
    handler, _flags, restorer, _mask = action
    regs = [cpu.reg_read(r) for r in GREGS]
    regs[REG_RIP] = resume_pc
    sp = stack_top if stack_top is not None else regs[REG_RSP] - RED_ZONE
    fpstate = (sp - FPSTATE_SIZE) & ~63
    # at handler entry rsp + 8 is 16-byte aligned, as after a call
    frame = ((fpstate - FRAME_SIZE) & ~15) - 8
    mcontext = regs + [_CSGSFS, 0, 0, old_mask, 0]
    uc = struct.pack("<QQQi4xQ", 0, 0, altstack[0], altstack[1], altstack[2]) \
        + struct.pack("<%dQ" % NGREG, *mcontext) + struct.pack("<Q", fpstate) + bytes(64) \
        + struct.pack("<Q", old_mask)
    assert len(uc) == UC_SIZE
    user_mem.write(fpstate, fpu.save(cpu))
    user_mem.write(frame, struct.pack("<Q", restorer) + uc + info)
    signum = struct.unpack_from("<i", info)[0]
    cpu.reg_write(x86.UC_X86_REG_RSP, frame)
    cpu.reg_write(x86.UC_X86_REG_RDI, signum)
    cpu.reg_write(x86.UC_X86_REG_RSI, frame + INFO_OFFSET)
    cpu.reg_write(x86.UC_X86_REG_RDX, frame + UC_OFFSET)
    cpu.reg_write(x86.UC_X86_REG_RAX, 0)
    # Linux clears DF and TF for the handler, and starts it with a fresh FPU state
    cpu.reg_write(x86.UC_X86_REG_EFLAGS, regs[REG_EFLAGS] & ~0x500)
    fpu.reset(cpu)
    return handler


def pop(cpu, uc_addr: int):
    """rt_sigreturn: load every register from the ucontext at `uc_addr` (as the
    handler may have left it). Returns (rip to resume at, the mask to restore)."""
    raw = user_mem.read(uc_addr, UC_SIZE)
    mcontext = struct.unpack_from("<%dQ" % NGREG, raw, MCONTEXT)
    (fpstate,) = struct.unpack_from("<Q", raw, FPREGS_PTR)
    (mask,) = struct.unpack_from("<Q", raw, SIGMASK)
    if fpstate:
        fpu.restore(cpu, user_mem.read(fpstate, FPSTATE_SIZE))
    for i, reg in enumerate(GREGS):
        if i == REG_RIP:
            continue
        value = mcontext[i]
        if i == REG_EFLAGS:
            value = (cpu.reg_read(reg) & ~_USER_FLAGS) | (value & _USER_FLAGS)
        cpu.reg_write(reg, value)
    return mcontext[REG_RIP], mask

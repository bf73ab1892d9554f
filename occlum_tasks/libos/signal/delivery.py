"""Running handlers: on the way back to user mode (after a system call, from the
SYSCALL hook; when the scheduler resumes a thread; after a CPU fault) a thread with a
deliverable signal (pending, not blocked, a handler set) gets a frame (frame.py) and
starts in the handler; rt_sigreturn (syscalls.py) undoes it."""
import weakref

from unicorn import x86_const as x86

from .. import sched
from ..process import current
from . import SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SIG_DFL, SIG_IGN, SI_KERNEL
from . import _pending, _thread_pending, actions_of, armed, frame, host, mask_of, set_mask, take

SS_ONSTACK, SS_DISABLE = 1, 2
# thread -> (ss_sp, ss_flags, ss_size) set by sigaltstack
altstacks = weakref.WeakKeyDictionary()
# thread -> the mask rt_sigsuspend replaced, for the handler's frame to restore
suspended_masks = weakref.WeakKeyDictionary()
SEGV_MAPERR, SEGV_ACCERR = 1, 2
SIGFPE, SIGSEGV, FPE_INTDIV = 8, 11, 1


def _rearm() -> None:
    armed[0] = any(_pending.values()) or any(_thread_pending.values()) or host.waiting()


def between() -> None:
    """From the scheduler between slices: forward the host's signals."""
    if host.waiting():
        host.forward()
    _rearm()


def next_signal(thread) -> int:
    """The bit of the lowest deliverable signal of `thread` with a handler, or 0.
    Signals pending with their default action are left to signal.recheck_pending."""
    deliverable = (_thread_pending.get(thread, 0) | _pending.get(thread.process, 0)) & ~mask_of(thread)
    actions = actions_of(thread.process)
    while deliverable:
        bit = deliverable & -deliverable
        if actions.get(bit.bit_length(), (SIG_DFL,))[0] not in (SIG_DFL, SIG_IGN):
            return bit
        deliverable &= ~bit
    return 0


def on_stack(thread, sp: int) -> bool:
    stack = altstacks.get(thread)
    return stack is not None and not stack[1] & SS_DISABLE and stack[0] < sp <= stack[0] + stack[2]


def _run_handler(thread, signum, info, resume_pc) -> int:
    """Push the frame and switch the mask; returns the handler's address."""
    cpu = sched.cpu()
    process = thread.process
    action = actions_of(process)[signum]
    _handler, flags, _restorer, sa_mask = action
    old_mask = suspended_masks.pop(thread, mask_of(thread))
    stack = altstacks.get(thread, (0, SS_DISABLE, 0))
    sp = cpu.reg_read(x86.UC_X86_REG_RSP)
    top = None
    if flags & SA_ONSTACK and not stack[1] & SS_DISABLE and not on_stack(thread, sp):
        top = stack[0] + stack[2]
    reported = (stack[0], SS_ONSTACK if on_stack(thread, sp) or top else stack[1], stack[2])
    handler = frame.push(cpu, resume_pc, info, action, old_mask, reported, top)
    new_mask = mask_of(thread) | sa_mask
    if not flags & SA_NODEFER:
        new_mask |= 1 << (signum - 1)
    set_mask(thread, new_mask)
    if flags & SA_RESETHAND:
        actions_of(process).pop(signum, None)
    _rearm()
    return handler


def _push_or_die(thread, signum, info, resume_pc):
    """_run_handler; a frame that cannot be written (a bad stack) kills the process
    with SIGSEGV, as on Linux. None then."""
    from ..errno import SysError
    from ..process import lifecycle
    try:
        return _run_handler(thread, signum, info, resume_pc)
    except SysError:
        lifecycle.kill(thread.process, SIGSEGV, "cannot write the frame of a handler for signal %d" % signum)
        _rearm()
        return None


def _deliver(thread, resume_pc):
    bit = next_signal(thread)
    if not bit:
        _rearm()
        return None
    signum = bit.bit_length()
    code, pid = take(thread, bit)
    return _push_or_die(thread, signum, frame.siginfo(signum, code, pid), resume_pc)


def after_syscall() -> None:
    """From the SYSCALL hook when something is pending. RIP is the syscall
    instruction of the thread now on the CPU, which resumes 2 bytes further."""
    if host.waiting():
        host.forward()
    thread = current.thread
    if thread is None or thread.state != sched.RUNNABLE or thread.pending_regs or thread.exited:
        return
    cpu = sched.cpu()
    handler = _deliver(thread, cpu.get_pc() + 2)
    if handler is not None:
        cpu.set_pc(handler - 2)        # Unicorn adds 2 when the hook returns


def on_resume(thread, pc: int) -> int:
    """From the scheduler, before the thread runs from `pc`: where it runs instead."""
    handler = _deliver(thread, pc)
    if handler is None:
        return pc
    sched.cpu().set_pc(handler)
    return handler


def deliver_fault(thread, signum: int, address: int, access_error: bool) -> bool:
    """A CPU fault: run the handler if one is set and the signal is not blocked (the
    faulting instruction runs again when it returns); False: the default action."""
    bit = 1 << (signum - 1)
    handler = actions_of(thread.process).get(signum, (SIG_DFL,))[0]
    if handler in (SIG_DFL, SIG_IGN) or mask_of(thread) & bit:
        return False
    if signum == SIGSEGV:
        code = SEGV_ACCERR if access_error else SEGV_MAPERR
    else:
        # the CPU stop does not say which FP exception: a divide error is the usual one
        code = FPE_INTDIV if signum == SIGFPE else SI_KERNEL
    cpu = sched.cpu()
    info = frame.siginfo(signum, code, addr=address)
    entry = _push_or_die(thread, signum, info, cpu.get_pc())
    if entry is not None:
        cpu.set_pc(entry)
    return True                        # handled: run, or the process is dead

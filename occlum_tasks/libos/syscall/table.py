"""The one system call table: x86-64 numbers to the handlers of every subsystem.

Each subsystem's `syscalls.py` exports SYSCALLS, a {name: handler} dict; a handler
takes the call's arguments as unsigned 64-bit ints (as many as it declares) and
returns the result (or -errno), raises errno.SysError, or returns None to leave RAX
untouched (a call that does not return, like exit_group).
"""
from ..fs import syscalls as fs_syscalls
from ..ipc import syscalls as ipc_syscalls
from ..misc import syscalls as misc_syscalls
from ..process import syscalls as process_syscalls
from ..signal import syscalls as signal_syscalls
from ..time import syscalls as time_syscalls
from ..vm import syscalls as vm_syscalls
from .numbers import MAX_NR, NUMBERS

SUBSYSTEMS = (vm_syscalls, process_syscalls, fs_syscalls, time_syscalls, misc_syscalls,
              signal_syscalls, ipc_syscalls)


def build():
    """A list indexed by number: (handler, 1 + its argument count) or None."""
    table = [None] * (MAX_NR + 1)
    for module in SUBSYSTEMS:
        for name, handler in module.SYSCALLS.items():
            nr = NUMBERS[name]
            if table[nr] is not None:
                raise RuntimeError("system call %s registered twice" % name)
            nargs = getattr(handler, "nargs", None)   # set by syscall.lazy stand-ins
            if nargs is None:
                nargs = handler.__code__.co_argcount
            table[nr] = (handler, nargs + 1)
    return table


def implemented():
    """Names of the calls the LibOS answers (others are ENOSYS)."""
    return sorted(name for module in SUBSYSTEMS for name in module.SYSCALLS)

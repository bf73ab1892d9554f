"""From the SYSCALL hook to the handlers: the table the CPU dispatches through.

Two forms with the same results, chosen once at boot (the level does not change
during a run): with logging off the CPU calls the subsystems' handlers directly, with
no bookkeeping at all; otherwise every entry is wrapped to keep the log context
(thread, round, call name) and, at trace level, to write one strace-like line per call.
"""
import traceback

from unicorn import UcError

from .. import log, sched, signal
from ..errno import EFAULT, EIO, ENOSYS, NAMES as ERRNO_NAMES, SysError
from ..process import current
from ..signal import delivery
from . import trace
from .numbers import name_of

# calls after which there is no result to show in a trace line
_NO_RETURN = {"exit", "exit_group"}


class Dispatcher:
    def __init__(self, handlers):
        """`handlers`: list indexed by number of (handler, 1 + nargs) or None."""
        self._warned = set()
        self.size = len(handlers)
        self.handlers = list(handlers)
        for nr, entry in enumerate(self.handlers):
            if entry is None:      # every free slot answers ENOSYS: no None test per call
                self.handlers[nr] = (lambda nr=nr: self.unknown(nr), 1)

    def install(self, cpu) -> None:
        # signal handlers start on the way back from a call (signal/delivery.py)
        signal.armed[0] = False
        hooks = dict(armed=signal.armed, after=delivery.after_syscall)
        sched.set_signal_hook(signal.armed, delivery.on_resume, delivery.between)
        if log.level == log.OFF:
            cpu.set_syscall_table(self.handlers, self.on_error, **hooks)
        else:
            cpu.set_syscall_table([(self._logged(nr, h, n), 7) for nr, (h, n) in enumerate(self.handlers)],
                                  self.on_error, **hooks)

    def unknown(self, nr: int) -> int:
        if nr not in self._warned:
            self._warned.add(nr)
            log.warn("unsupported system call %s (#%d): ENOSYS", name_of(nr), nr)
        return -ENOSYS

    def on_error(self, args, exc) -> int:
        """The result of a call whose handler raised."""
        if isinstance(exc, SysError):
            return -exc.errno
        if isinstance(exc, sched.Block):
            sched.park(exc)              # RAX untouched: the call runs again or gets its result
            return None
        if not isinstance(exc, Exception):
            raise exc                     # KeyboardInterrupt and the like stop the run
        if isinstance(exc, IndexError) and args[0] >= self.size:
            return self.unknown(args[0])
        # a LibOS bug or a host failure: the guest gets an error, never a crash
        errno = EFAULT if isinstance(exc, UcError) else EIO
        log.error("%s failed inside the LibOS: %r; returning %s", name_of(args[0]), exc, ERRNO_NAMES[errno])
        if log.level >= log.DEBUG:
            log.debug("%s", "".join(traceback.format_exception(exc)).rstrip().replace("\n", " | "))
        return -errno

    def _logged(self, nr, handler, nargs):
        name = name_of(nr)
        no_return = name in _NO_RETURN
        on_error = self.on_error

        def call(*args):
            thread = current.thread
            thread.sys_round += 1
            log.set_context(thread.tid, thread.sys_round, name)
            tracing = log.level >= log.TRACE
            text = trace.format_call(name, args) if tracing else None
            if tracing and no_return:
                log.emit(log.TRACE, "%s = ?", (text,))
            try:
                result = handler(*args[:nargs - 1])
            except BaseException as exc:  # noqa: BLE001
                result = on_error([nr, *args], exc)
            if tracing and not no_return:
                log.emit(log.TRACE, "%s = %s", (text, trace.format_result(name, args, result)))
            return result

        return call

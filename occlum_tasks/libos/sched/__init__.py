"""The scheduler: puts the threads of every LibOS process on the one CPU.

A thread off the CPU is a saved Unicorn context (cpu.new_context; 1.4 us to save and
restore, FS base included). `run` is the only place that calls `Cpu.run`: one slice at
a time, the slice ending when the running thread blocks (a handler raised `Block`),
exits, faults, yields, or is preempted.

Fast path: a system call that neither blocks nor wakes anyone does nothing here; with
one thread the slice never ends until that thread is done.

Preemption: a watchdog host thread (started with the second thread) acts when the same
slice has lasted a whole tick and there is something else to do; the GIL is released
inside emu_start, so the watchdog runs while the guest computes. It stops the CPU
(cpu.stop_from_host_thread), which takes effect at the start of the next translated
block with the state exact: no instruction runs twice and no system call is skipped
(cpu_engine.py explains why that needs care on unicorn 2.1.4). No per-instruction or
per-block hook and no emu_start count/timeout (DESIGN.md section 8).

Signals: when one is pending (signal.armed), the signal subsystem's hooks run between
slices and before a thread resumes (a handler's frame), and the SYSCALL hook asks it
after each call (signal/delivery.py); nothing is added to a call otherwise.

Idle: with nothing runnable the scheduler sleeps in select() on the host descriptors
blocked threads read (stdin) until the nearest deadline (IDLE_MAX at most). With
nothing runnable, no deadline and no host descriptor, nothing can ever wake anyone: a
deadlock, reported one line per thread, and the run ends.
"""
import collections
import select
import threading
import time

from .. import fpu, log
from ..process import current
from .wait import BLOCKED, EXITED, RUNNABLE, Block, WaitQueue  # noqa: F401

TICK = 0.005          # the watchdog's period: a computing thread runs 1-2 ticks

# a key of pending_regs (start_thread, redirect): put the FPU in Linux's initial state
FPU_INIT = "fpu-init"

_cpu = None
_runq = collections.deque()
_timed = set()          # blocked threads with a deadline
_host = {}              # blocked thread -> its Block, for those waiting on host fds
_blocked = set()        # every blocked thread (for the deadlock report)
_deferred = []          # work for after the slice (freeing memory the guest may be running in)
_live = set()           # threads known to the scheduler and not exited
_on_cpu = None          # the thread whose registers are in the CPU
_slice = [0, False]     # slice number, in the guest now
_finished = [None]      # run()'s finished(), for switches inside the hook
_watchdog = None
# set by the signal subsystem (set_signal_hook): its `armed` flag, on_resume(thread,
# pc) -> pc asked before a thread runs, and between() called between slices and while
# idle (host signals to forward), whenever a signal is pending somewhere
_signals = [(False,), None, None]
# longest idle sleep: between() must get to run (a host SIGTERM while all sleep)
IDLE_MAX = 0.1


def boot(cpu) -> None:
    global _cpu, _on_cpu
    _cpu, _on_cpu = cpu, None
    _runq.clear()
    _timed.clear()
    _host.clear()
    _blocked.clear()
    _deferred.clear()
    _live.clear()


def shutdown() -> None:
    global _cpu, _watchdog, _on_cpu
    if _watchdog is not None:
        _watchdog.stop()
        _watchdog = None
    while _deferred:
        _deferred.pop(0)()
    for thread in list(_live):
        _drop_context(thread)
    _live.clear()
    _runq.clear()
    _timed.clear()
    _host.clear()
    _blocked.clear()
    _deferred.clear()
    _cpu, _on_cpu = None, None
    _finished[0] = None
    current.set(None)


def cpu():
    return _cpu


def set_signal_hook(armed, on_resume, between) -> None:
    _signals[:] = [armed, on_resume, between]


def stop_for_host_signal() -> None:
    """From a host thread: a host signal waits to be forwarded; the guest leaves the
    CPU between two blocks, and the scheduler loop forwards it."""
    cpu_ = _cpu
    if cpu_ is not None:
        cpu_.stop_from_host_thread()


def alone() -> bool:
    """Only the current thread exists: it may wait on the host directly."""
    return len(_live) <= 1


def defer(work) -> None:
    """Call work() once the current slice has ended (emu_start returned)."""
    _deferred.append(work)


# ---- threads -------------------------------------------------------------------------------
def start_thread(thread, regs) -> None:
    """Make a new thread runnable. Its context is the current CPU state (clone: the
    parent's registers; at boot: the fresh CPU's), then `regs` {unicorn reg id:
    value} on top."""
    global _watchdog
    thread.ctx = _cpu.new_context()
    _cpu.save_context(thread.ctx)
    thread.pending_regs = dict(regs)
    thread.at_syscall = True          # saved in a hook (clone) or on a fresh CPU (boot)
    thread.state = RUNNABLE
    _live.add(thread)
    _runq.append(thread)
    if len(_live) > 1 and _watchdog is None:
        _watchdog = _Watchdog()


def redirect(thread, regs) -> None:
    """The current thread continues with these registers (execve): takes effect after
    this system call, outside the hook."""
    thread.pending_regs = dict(regs)
    _cpu.stop()


def thread_exited(thread) -> None:
    """The thread will never run again (exit, exit_group, a kill)."""
    if thread.state == EXITED:
        return
    if thread.state == BLOCKED:
        _unblock(thread)
    elif thread in _runq:
        _runq.remove(thread)
    thread.state = EXITED
    _live.discard(thread)
    if thread is _on_cpu or thread is current.thread:
        _cpu.stop()                 # off the CPU after this call; the context goes then
    else:
        _drop_context(thread)


def _drop_context(thread) -> None:
    ctx, thread.ctx = getattr(thread, "ctx", None), None
    if ctx is not None:
        _cpu.free_context(ctx)


def yield_now() -> None:
    """sched_yield: the current thread goes to the back of the run queue."""
    if _runq:
        _cpu.stop()


# ---- blocking and waking ----------------------------------------------------------------------
def park(block: Block) -> None:
    """The current thread waits (called with the Block its handler raised, inside the
    system call hook). The call is re-executed or completed when it is woken."""
    thread = current.thread
    thread.state = BLOCKED
    thread.wait = block
    thread.parked_now = True
    thread.restart = block.restart
    thread.timed_out = False
    thread.resume_result = None
    for queue in block.queues:
        queue.waiters.append(thread)
    if block.deadline is not None:
        _timed.add(thread)
    if block.host_read or block.host_write:
        _host[thread] = block
    _blocked.add(thread)
    if not _switch_in_hook(thread):
        _cpu.stop()


def _switch_in_hook(thread) -> bool:
    """Give the CPU to the next runnable thread without leaving emu_start (saves the
    emu_stop + emu_start pair, ~15 us of a ~35 us switch).

    Done inside the SYSCALL hook: `thread` parks with its context saved here (RIP on
    its syscall instruction), the next one's context is restored, and RIP is set 2
    bytes short of where it resumes because Unicorn adds 2 when the hook returns.
    Only for a next thread whose context was saved at a system call boundary
    (`at_syscall`): a thread stopped anywhere else may carry lazily computed flags that
    the code after this syscall instruction would not expect. Not when there is work
    for the loop: memory to free, or the run is over; deadlines and host descriptors
    are looked at by the loop, which the watchdog brings back when one is due."""
    global _on_cpu
    if not _runq or _deferred or not _runq[0].at_syscall or _finished[0] is None or _finished[0]():
        return False
    following = _runq.popleft()
    _cpu.save_context(thread.ctx)
    thread.parked_now = False
    thread.at_syscall = True
    _cpu.restore_context(following.ctx)
    _cpu.set_pc(_resume_pc(following) - 2)
    _on_cpu = following
    current.set(following)
    _slice[0] += 1
    return True


def _unblock(thread) -> None:
    block = thread.wait
    if block is not None:
        for queue in block.queues:
            try:
                queue.waiters.remove(thread)
            except ValueError:
                pass
    thread.wait = None
    _timed.discard(thread)
    _host.pop(thread, None)
    _blocked.discard(thread)


def wake_thread(thread, result=None) -> None:
    """Make a blocked thread runnable: its call returns `result`, or is re-executed
    when result is None."""
    if thread.state != BLOCKED:
        return
    _unblock(thread)
    thread.resume_result = result
    if result is not None:
        thread.restart = None       # completed: the call does not run again
    thread.state = RUNNABLE
    _runq.append(thread)


def interrupt(thread, error: int, restart: bool) -> None:
    """A signal handler is to run in blocked `thread`: its call returns `error` (-EINTR),
    or what it already did (Block.partial), or runs again after the handler when
    `restart` (SA_RESTART). Waits that are not interruptible stay."""
    block = thread.wait
    if thread.state != BLOCKED or block is None or not block.interruptible:
        return
    if restart:
        wake_thread(thread)
        return
    done = block.partial(thread.restart) if block.partial else None
    wake_thread(thread, error if done is None else done)


def update_restart(thread, state) -> None:
    """A blocked thread's call made progress on its behalf (a pipe reader moved part
    of a blocked write): what its re-execution gets from restart_state()."""
    thread.restart = state


def still_blocked(thread, block) -> bool:
    """`thread` is still parked on this very Block (not woken since, not gone)."""
    return thread.state == BLOCKED and thread.wait is block


def restart_state():
    """(restart, timed_out) for a re-executed call: what its Block passed as `restart`,
    and whether its deadline passed. Read once: it is cleared. A call that can fail
    before reading it (EBADF...) leaves it behind, so callers tag their state and
    check the tag (see ipc/pipe.py)."""
    thread = current.thread
    state, timed_out = thread.restart, thread.timed_out
    thread.restart, thread.timed_out = None, False
    return state, timed_out


def blocked_report():
    """(thread, what) for every blocked thread, for the deadlock report."""
    return sorted(((t, t.wait.what if t.wait else "?") for t in _blocked), key=lambda p: p[0].tid)


# ---- the loop ----------------------------------------------------------------------------------
class Deadlock(Exception):
    """Every thread waits on something only another thread could do."""


def set_fs_base(value: int) -> None:
    _cpu.set_fs_base(value)


def get_fs_base() -> int:
    return _cpu.get_fs_base()


def stop_current() -> None:
    """The current thread leaves the CPU after this system call."""
    _cpu.stop()


def run(finished, on_stop):
    """Run threads until finished() holds (the first process ended). on_stop(thread,
    stop) handles a slice that ended in a fault or a LibOS error; a Stop it returns
    ends the run with it. Raises Deadlock when nothing can ever run again."""
    global _on_cpu
    _finished[0] = finished
    while not finished():
        if _signals[0][0]:
            _signals[2]()
            if finished():
                break
        thread = _pick()
        if thread is None:
            break                     # finished while idle
        if thread is not _on_cpu:
            if _on_cpu is not None and _on_cpu.state != EXITED:
                _cpu.save_context(_on_cpu.ctx)
            _cpu.restore_context(thread.ctx)
            _on_cpu = thread
        pc = _resume_pc(thread)
        current.set(thread)
        if _signals[0][0]:
            pc = _signals[1](thread, pc)      # a handler to run first
            if thread.state == EXITED:        # its frame could not be written: killed
                _drop_context(thread)
                _on_cpu = None
                continue
        _slice[0] += 1
        _slice[1] = True
        stop = _cpu.run(pc)
        _slice[1] = False
        thread = current.thread            # switches inside the hook may have changed it
        # 'preempted': between two blocks, not at a system call
        thread.at_syscall = stop.kind == "stopped"
        if thread.state == BLOCKED and thread.parked_now:
            # RIP is past the syscall (Unicorn added 2): back onto it, to re-execute
            thread.parked_now = False
            _cpu.set_pc(_cpu.get_pc() - 2)
        if stop.kind not in ("stopped", "preempted") and thread.state != EXITED:
            final = on_stop(thread, stop)
            if final is not None:
                return final
        if thread.state == EXITED:
            _drop_context(thread)
            _on_cpu = None
        elif thread.state == RUNNABLE:
            _runq.append(thread)
        while _deferred:
            _deferred.pop(0)()
    return None


def _pick():
    while True:
        if _signals[0][0]:
            _signals[2]()
            if _finished[0]():
                return None
        if _timed or _host:
            _poll_waits(0)
        if _runq:
            return _runq.popleft()
        if not _timed and not _host:
            raise Deadlock()
        now = time.monotonic_ns()
        nearest = min((t.wait.deadline for t in _timed), default=None)
        _poll_waits(IDLE_MAX if nearest is None else min(IDLE_MAX, max(0, nearest - now) / 1e9))


def _poll_waits(timeout) -> None:
    """Wake the threads whose deadline passed or whose host descriptor is ready;
    waits up to `timeout` seconds (None: until a host descriptor is ready)."""
    if _host:
        reads = {fd for b in _host.values() for fd in b.host_read}
        writes = {fd for b in _host.values() for fd in b.host_write}
        try:
            ready_r, ready_w, _ = select.select(list(reads), list(writes), [], timeout)
        except (OSError, ValueError):
            ready_r, ready_w = list(reads), list(writes)    # let the call see the error
        ready = set(ready_r) | set(ready_w)
        for thread, block in list(_host.items()):
            if ready.intersection(block.host_read) or ready.intersection(block.host_write):
                wake_thread(thread)
    elif timeout:
        time.sleep(timeout)
    if _timed:
        now = time.monotonic_ns()
        for thread in [t for t in _timed if t.wait.deadline <= now]:
            result = thread.wait.timeout_result
            wake_thread(thread, result)
            if result is None:
                thread.timed_out = True


def _someone_due() -> bool:
    """From the watchdog thread: another thread could run now (runnable, its deadline
    passed, or its host descriptor ready). A thread sleeping far ahead does not make
    the running one stop."""
    if _runq:
        return True
    try:
        now = time.monotonic_ns()
        if any(t.wait is not None and t.wait.deadline is not None and t.wait.deadline <= now
               for t in list(_timed)):
            return True
        if _host:
            reads = [fd for b in list(_host.values()) for fd in b.host_read]
            writes = [fd for b in list(_host.values()) for fd in b.host_write]
            ready = select.select(reads, writes, [], 0)
            return bool(ready[0] or ready[1])
    except (RuntimeError, OSError, ValueError, AttributeError):
        return True           # the main thread changed the sets meanwhile: look again later
    return False


class _Watchdog:
    """The host thread that preempts a thread computing for more than a tick."""

    def __init__(self):
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="occlum-py watchdog", daemon=True)
        self._thread.start()

    def _loop(self):
        seen = -1
        while not self._done.wait(TICK):
            number, in_guest = _slice
            cpu_ = _cpu
            if in_guest and number == seen and cpu_ is not None and _someone_due():
                cpu_.stop_from_host_thread()
            seen = number

    def stop(self):
        self._done.set()
        self._thread.join(1)


def _resume_pc(thread) -> int:
    """Apply what was decided for `thread` while it was off the CPU (registers set by
    exec or a signal frame; the result a waker completed its call with) to the CPU,
    whose context is the thread's; returns the pc it resumes at."""
    if thread.pending_regs:
        for reg, value in thread.pending_regs.items():
            if reg == FPU_INIT:
                fpu.reset(_cpu)
            else:
                _cpu.reg_write(reg, value)
        thread.pending_regs = None
    pc = _cpu.get_pc()
    if thread.resume_result is not None:
        # the waker completed the call: its result, and on past the syscall
        _cpu.set_rax(thread.resume_result)
        pc += 2
        thread.resume_result = None
    return pc

"""Blocking: what a system call raises to wait (`Block`) and what it waits on
(`WaitQueue`).

A handler that cannot finish now raises Block. The scheduler parks the thread with its
RIP back on the `syscall` instruction and runs another one. When the thread is woken
it either re-executes the call (the default: the call looks at the world again; state
it must keep across the wait, such as an absolute deadline or the bytes already
written, is passed as `restart` and handed back by `sched.restart_state()`), or, when
the waker gives a result, returns that result without re-executing (futex wake,
vfork completion).
"""
RUNNABLE, BLOCKED, EXITED = "runnable", "blocked", "exited"


class Block(Exception):
    """Park the current thread.

    queues: the WaitQueues whose wake_* makes it runnable again.
    deadline: host CLOCK_MONOTONIC time in ns after which it wakes by itself; then
      the call returns `timeout_result` if not None, else it is re-executed with
      `sched.restart_state()` reporting timed_out.
    restart: what the re-executed call gets back from `sched.restart_state()`.
    host_read / host_write: host descriptors whose readiness wakes the thread (stdin:
      the scheduler selects on them, so that a host read never stops the enclave).
    what: how the deadlock report names what it waits on.
    interruptible: a signal with a handler wakes it (EINTR or a restart); False for
      waits Linux makes killable only (a vfork parent: the child borrows its memory).
    partial: for a call that may have made progress while parked (a pipe write):
      partial(restart state) -> what it returns when a signal interrupts it (the bytes
      done), or None for EINTR.
    """

    def __init__(self, queues=(), deadline=None, *, timeout_result=None, restart=None,
                 host_read=(), host_write=(), what=None, interruptible=True, partial=None):
        super().__init__()
        self.queues, self.deadline, self.timeout_result = tuple(queues), deadline, timeout_result
        self.restart, self.host_read, self.host_write = restart, tuple(host_read), tuple(host_write)
        self.what = what or (self.queues[0].what if self.queues else "a timer")
        self.interruptible, self.partial = interruptible, partial

    @property
    def enclave_only(self) -> bool:
        """Only another thread of the enclave can end this wait."""
        return self.deadline is None and not self.host_read and not self.host_write


class WaitQueue:
    """Threads waiting for one thing, in arrival order."""
    __slots__ = ("what", "waiters")

    def __init__(self, what: str):
        self.what = what
        self.waiters = []

    def __len__(self):
        return len(self.waiters)

    def wake_one(self, result=None) -> int:
        return self.wake(1, result)

    def wake_all(self, result=None) -> int:
        return self.wake(len(self.waiters), result)

    def wake(self, count: int, result=None, match=None) -> int:
        """Wake up to `count` threads (those for which match(thread) holds)."""
        from . import wake_thread
        woken = 0
        for thread in list(self.waiters):
            if woken >= count:
                break
            if match is not None and not match(thread):
                continue
            wake_thread(thread, result)
            woken += 1
        return woken

    def move_to(self, other, count: int) -> int:
        """FUTEX_REQUEUE: up to `count` waiters now wait on `other` instead."""
        moved = 0
        for thread in list(self.waiters):
            if moved >= count:
                break
            self.waiters.remove(thread)
            other.waiters.append(thread)
            thread.wait.queues = tuple(other if q is self else q for q in thread.wait.queues)
            moved += 1
        return moved

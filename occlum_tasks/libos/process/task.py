"""Processes and threads (Occlum's process_vm/thread structures, in Python).

A thread is a saved CPU context that the scheduler puts on the one CPU; a process
groups threads with their address space (`vm`, owned by the vm subsystem), its file
table (`files`) and its view of the file system (`fs`: cwd and umask), both owned by
the fs subsystem. All processes share one address space.
"""
from ..errno import EAGAIN, SysError

RLIM_INFINITY = (1 << 64) - 1
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_RSS = 0, 1, 2, 3, 4, 5
RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS = 6, 7, 8, 9
RLIM_NLIMITS = 16


class Limits:
    """The enclave's resource limits (Occlum.json resource_limits and process)."""

    def __init__(self, user_space_size, default_stack_size, default_heap_size, max_num_of_threads):
        self.user_space_size = user_space_size
        self.default_stack_size = default_stack_size
        self.default_heap_size = default_heap_size
        self.max_num_of_threads = max_num_of_threads


class Process:
    def __init__(self, pid, ppid, path, argv, vm, files, limits, fs=None):
        from ..sched import WaitQueue
        self.pid, self.ppid, self.path, self.argv = pid, ppid, path, list(argv)
        self.pgid = self.sid = pid
        self.vm = vm
        self.vm_owned = True         # False while a vfork child runs in its parent's memory
        self.child_wait = WaitQueue("wait4 in pid %d" % pid)   # a child changed state
        self.vfork_wait = None       # the vfork parent waits here until exec or exit
        self.limits = limits
        self.files = files
        self.fs = fs
        self.threads = []
        self.exit_status = None      # the wait status once the process is a zombie
        self.rlimits = [[RLIM_INFINITY, RLIM_INFINITY] for _ in range(RLIM_NLIMITS)]
        self.rlimits[RLIMIT_STACK] = [limits.default_stack_size] * 2
        self.rlimits[RLIMIT_DATA] = [limits.default_heap_size] * 2
        self.rlimits[RLIMIT_AS] = [limits.user_space_size] * 2
        self.rlimits[RLIMIT_NOFILE] = [1024, 1024]
        self.rlimits[RLIMIT_NPROC] = [limits.max_num_of_threads] * 2

    @property
    def exited(self) -> bool:
        return self.exit_status is not None

    def __repr__(self):
        return "Process(%d %s)" % (self.pid, self.path)


class Thread:
    def __init__(self, tid, process):
        self.tid, self.process = tid, process
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.sys_round = 0           # system calls made, for the log lines' #<round>
        self.exited = False
        # the scheduler's: see sched/__init__.py and sched/wait.py
        self.state = None
        self.ctx = None              # the saved CPU context while off the CPU
        self.pending_regs = None     # registers to set when it next runs (new thread, execve)
        self.wait = None             # the Block it is parked on
        self.parked_now = False
        self.restart = None
        self.timed_out = False
        self.resume_result = None
        self.futex_bitset = 0
        self.at_syscall = False      # its saved context is at a system call boundary

    def __repr__(self):
        return "Thread(%d of pid %d)" % (self.tid, self.process.pid)


class ProcessTable:
    """Ids and the max_num_of_threads limit (EAGAIN beyond it, as Occlum)."""

    def __init__(self, max_num_of_threads: int):
        self.max_threads = max_num_of_threads
        self.processes = {}
        self.threads = {}
        self.futexes = {}            # user address -> WaitQueue (process/futex.py)
        self._next_id = 1

    def _new_id(self) -> int:
        while self._next_id in self.threads or self._next_id in self.processes:
            self._next_id += 1
        new_id = self._next_id
        self._next_id += 1
        return new_id

    def new_process(self, ppid, path, argv, vm, files, limits, fs=None) -> Process:
        if len(self.threads) >= self.max_threads:
            raise SysError(EAGAIN)
        process = Process(self._new_id(), ppid, path, argv, vm, files, limits, fs)
        self.processes[process.pid] = process
        self.new_thread(process, tid=process.pid)
        return process

    def new_thread(self, process, tid=None) -> Thread:
        if len(self.threads) >= self.max_threads:
            raise SysError(EAGAIN)
        thread = Thread(tid if tid is not None else self._new_id(), process)
        self.threads[thread.tid] = thread
        process.threads.append(thread)
        return thread

    def remove_thread(self, thread) -> None:
        self.threads.pop(thread.tid, None)
        if thread in thread.process.threads:
            thread.process.threads.remove(thread)

    def children_of(self, process):
        return [p for p in self.processes.values() if p.ppid == process.pid and p is not process]

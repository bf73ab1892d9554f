"""Pipes: a 64 KiB buffer in the LibOS between a read end and a write end.

Both ends are open file descriptions (fs.file.OpenFile) whose handles live here, so
read, write, dup, close-on-exec, poll and /proc/<pid>/fd treat them like any file.
A read on an empty pipe, or a write that does not fit, parks the thread on the pipe's
wait queue (sched.Block) and runs the call again when the other end moves; O_NONBLOCK
answers EAGAIN instead. Writes of at most PIPE_BUF bytes are atomic. The data is copied
straight between the guest's memory and the buffer through memoryviews.

Hand-offs save thread switches: a reader that blocks leaves its destination (a window
on guest memory) with the pipe, and the next writer copies into it and completes the
read; a writer that blocks leaves its source, and the reader that makes room moves
the rest of the write into the buffer, completing the write when it is all in. One
pair of switches then moves up to three buffers' worth instead of one.
"""
import itertools

from .. import sched, signal
from ..process import current
from ..vm import user_mem
from ..errno import EAGAIN, EPIPE, SysError
from ..fs.file import O_NONBLOCK, O_RDONLY, O_WRONLY, OpenFile
from ..fs.path import Loc
from ..fs.vfs import Handle, Inode, Metadata, now_ns

PIPE_CAPACITY = 64 * 1024
PIPE_BUF = 4096
S_IFIFO = 0o010000
SIGPIPE = 13
POLLIN, POLLOUT, POLLERR, POLLHUP = 0x1, 0x4, 0x8, 0x10
_inos = itertools.count(0x10000)


class BrokenPipe(SysError):
    """EPIPE on a write with no reader: the caller also raises SIGPIPE."""

    def __init__(self):
        super().__init__(EPIPE)


class Pipe(Inode):
    """The pipe itself (its inode: what fstat and /proc show)."""

    def __init__(self):
        self.ino = next(_inos)
        self.buffer = bytearray()
        self.readers = self.writers = 0
        self.read_wait = sched.WaitQueue("read of pipe:[%d]" % self.ino)
        self.waiting_readers = []          # (thread, its Block, destination) of blocked reads
        self.waiting_writers = []          # [thread, its Block, source, done] of blocked writes
        self.write_wait = sched.WaitQueue("write to pipe:[%d]" % self.ino)
        self.created = now_ns()

    @property
    def label(self) -> str:
        return "pipe:[%d]" % self.ino

    def metadata(self) -> Metadata:
        return Metadata(self.ino, S_IFIFO | 0o600, len(self.buffer), 1,
                        atime_ns=self.created, mtime_ns=self.created, ctime_ns=self.created)

    def open(self, flags):
        raise SysError(EAGAIN)      # only pipe(2) makes its ends


class _End(Handle):
    stream = True
    seekable = False

    def __init__(self, pipe):
        super().__init__(pipe)
        self.pipe = pipe
        self.file = None           # its open file description: O_NONBLOCK lives there

    def _nonblocking(self) -> bool:
        return bool(self.file is not None and self.file.flags & O_NONBLOCK)

    def metadata(self) -> Metadata:
        return self.pipe.metadata()

    def size(self) -> int:
        return 0

    def ioctl_nread(self, offset) -> int:
        return len(self.pipe.buffer)

    def pread_into(self, offset, buf):
        from ..errno import ESPIPE
        raise SysError(ESPIPE)

    pwrite_at = pread_into

    def mmap_data(self):
        from ..errno import ENODEV
        raise SysError(ENODEV)


class ReadEnd(_End):
    def __init__(self, pipe):
        super().__init__(pipe)
        pipe.readers += 1

    def read_into(self, offset, buf) -> int:
        pipe = self.pipe
        buffer = pipe.buffer
        if not buffer:
            if pipe.writers == 0 or len(buf) == 0:
                return 0                  # end of file: no writer is left
            if self._nonblocking():
                raise SysError(EAGAIN)
            block = sched.Block([pipe.read_wait])
            if user_mem.is_guest_memory(buf):
                pipe.waiting_readers.append((current.thread, block, buf))
            raise block
        n = min(len(buf), len(buffer))
        with memoryview(buffer) as view:
            buf[:n] = view[:n]
        del buffer[:n]
        if pipe.waiting_writers:
            _take_from_writers(pipe)
        if pipe.write_wait.waiters:
            pipe.write_wait.wake_all()
        return n

    def poll(self) -> int:
        pipe = self.pipe
        return (POLLIN if pipe.buffer else 0) | (POLLHUP if pipe.writers == 0 else 0)

    def wait_queue(self):
        return self.pipe.read_wait

    def release(self) -> None:
        pipe = self.pipe
        pipe.readers -= 1
        if pipe.readers == 0:
            pipe.write_wait.wake_all()       # writers now get EPIPE


class WriteEnd(_End):
    def __init__(self, pipe):
        super().__init__(pipe)
        pipe.writers += 1

    def write_at(self, offset, data) -> int:
        pipe = self.pipe
        total = len(data)
        state, _ = sched.restart_state()     # what a blocked write already wrote
        done = state[1] if state is not None and state[0] is self else 0
        while True:
            if pipe.readers == 0:
                if done:
                    return done
                signal.send(current.thread.process, SIGPIPE)
                raise BrokenPipe()
            room = PIPE_CAPACITY - len(pipe.buffer)
            want = total - done
            if want == 0:
                return total
            if not pipe.buffer and pipe.waiting_readers:
                moved = _give_to_reader(pipe, data, done, want)
                if moved:
                    done += moved
                    continue
            # at most PIPE_BUF bytes go in one piece or not at all
            if room >= want or (want > PIPE_BUF and room > 0):
                n = min(room, want)
                pipe.buffer += data[done:done + n]
                done += n
                if pipe.read_wait.waiters:
                    pipe.read_wait.wake_all()
                continue
            if self._nonblocking():
                if done:
                    return done
                raise SysError(EAGAIN)
            # interrupted by a handler: the bytes already written, if any (as Linux)
            block = sched.Block([pipe.write_wait], restart=(self, done), partial=_bytes_done)
            if user_mem.is_guest_memory(data):
                pipe.waiting_writers.append([current.thread, block, data, done])
            raise block

    def poll(self) -> int:
        pipe = self.pipe
        if pipe.readers == 0:
            return POLLOUT | POLLERR
        return POLLOUT if PIPE_CAPACITY - len(pipe.buffer) >= PIPE_BUF else 0

    def wait_queue(self):
        return self.pipe.write_wait

    def release(self) -> None:
        pipe = self.pipe
        pipe.writers -= 1
        if pipe.writers == 0:
            pipe.read_wait.wake_all()        # readers now see the end of the file


def _bytes_done(state):
    return state[1] if state and state[1] else None


def _give_to_reader(pipe, data, done, want) -> int:
    """Copy up to `want` bytes of data[done:] straight into a blocked reader's
    destination and complete its read; 0 if no reader waits any more."""
    while pipe.waiting_readers:
        thread, block, dest = pipe.waiting_readers.pop(0)
        if not sched.still_blocked(thread, block):
            continue                       # woken otherwise, or gone: a stale entry
        n = min(len(dest), want)
        dest[:n] = data[done:done + n]
        sched.wake_thread(thread, n)
        return n
    return 0


def _take_from_writers(pipe) -> None:
    """Room was made: move what blocked writers still have to write into the buffer,
    completing each write that is then all in (atomically for PIPE_BUF or less)."""
    while pipe.waiting_writers:
        entry = pipe.waiting_writers[0]
        thread, block, source, done = entry
        if not sched.still_blocked(thread, block):
            pipe.waiting_writers.pop(0)
            continue
        room = PIPE_CAPACITY - len(pipe.buffer)
        want = len(source) - done
        if room <= 0 or (len(source) <= PIPE_BUF and room < want):
            return
        n = min(room, want)
        pipe.buffer += source[done:done + n]
        done += n
        if done == len(source):
            pipe.waiting_writers.pop(0)
            sched.wake_thread(thread, done)
        else:
            entry[3] = done
            sched.update_restart(thread, (entry[1].restart[0], done))
            return


def new_pipe(nonblocking: bool):
    """(read end, write end) as open file descriptions."""
    pipe = Pipe()
    loc = Loc((pipe.label,), pipe)
    extra = O_NONBLOCK if nonblocking else 0
    ends = []
    for handle, mode in ((ReadEnd(pipe), O_RDONLY), (WriteEnd(pipe), O_WRONLY)):
        file = OpenFile(loc, handle, mode | extra)
        handle.file = file
        ends.append(file)
    return ends

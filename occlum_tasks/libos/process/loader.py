"""Loading ELF programs: static-pie and dynamic PIE (with their interpreter).

Both images go into one range of the user space, followed by the stack and the heap:
  [interpreter image][program image][stack: default_stack_size][heap: default_heap_size]
so that the program's writable segment and the stack (the memory most stores go to)
are adjacent and one Unicorn region (see vm/__init__.py); the heap comes last because
musl's malloc puts a PROT_NONE guard page at the start of the brk area. As in Occlum
there is no guard page below the stack. Non-PIE executables (ET_EXEC) need a
fixed address, which a shared address space cannot promise; they are refused, as in
Occlum.
"""
import struct

from ..vm import PAGE_SIZE, page_down, page_up
from ..vm.vma import Vma

PT_LOAD, PT_INTERP, PT_PHDR = 1, 3, 6
ET_EXEC, ET_DYN, EM_X86_64 = 2, 3, 62
_E_TYPES = {0: "ET_NONE", 1: "ET_REL", 4: "ET_CORE"}
# Elf64_Ehdr from e_type on; Elf64_Phdr
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
PF_X, PF_W, PF_R = 1, 2, 4


class ExecError(Exception):
    """The program cannot be started (exit status 127); str() is the one-line reason."""


class ElfImage:
    """What the loader needs from one ELF file, checked."""

    def __init__(self, path: str, data: bytes):
        self.path, self.data = path, data
        if data[:4] != b"\x7fELF":
            raise ExecError("%s: not an ELF executable" % path)
        # The headers are read with struct: pyelftools took ~12 ms per image (it parses
        # the dynamic section and the hash tables), most of a posix_spawn.
        if len(data) < 16 + _EHDR.size:
            raise ExecError("%s: malformed ELF file (truncated header)" % path)
        if data[4] != 2 or data[5] != 1:
            raise ExecError("%s: not an x86-64 ELF64 executable" % path)
        (e_type, e_machine, _version, self.entry, self.phoff, _shoff, _flags, _ehsize,
         self.phentsize, self.phnum, *_rest) = _EHDR.unpack_from(data, 16)
        if e_machine != EM_X86_64:
            raise ExecError("%s: not an x86-64 ELF64 executable" % path)
        if e_type == ET_EXEC:
            raise ExecError("%s: not a position-independent executable (ET_EXEC); "
                            "Occlum runs PIE programs only: rebuild with -fPIE -pie" % path)
        if e_type != ET_DYN:
            raise ExecError("%s: not an executable (%s)" % (path, _E_TYPES.get(e_type, "type %d" % e_type)))
        if self.phentsize < _PHDR.size or self.phoff + self.phnum * self.phentsize > len(data):
            raise ExecError("%s: malformed ELF file (program headers out of the file)" % path)
        self.loads, self.interp, self.phdr_vaddr = [], None, None
        for i in range(self.phnum):
            kind, flags, offset, vaddr, _paddr, filesz, memsz, _align = _PHDR.unpack_from(
                data, self.phoff + i * self.phentsize)
            if kind == PT_LOAD and memsz:
                self.loads.append((vaddr, memsz, offset, filesz, flags))
            elif kind == PT_INTERP:
                raw = data[offset:offset + filesz]
                if offset + filesz > len(data) or not raw:
                    raise ExecError("%s: malformed ELF file (PT_INTERP)" % path)
                self.interp = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == PT_PHDR:
                self.phdr_vaddr = vaddr
        if not self.loads:
            raise ExecError("%s: no loadable segment" % path)
        for vaddr, memsz, offset, filesz, _flags in self.loads:
            if filesz > memsz or offset + filesz > len(data) or vaddr % PAGE_SIZE != offset % PAGE_SIZE:
                raise ExecError("%s: malformed ELF segment at %#x" % (path, vaddr))
        if self.phdr_vaddr is None:
            # no PT_PHDR: the headers are found in the segment that maps e_phoff
            for vaddr, _memsz, offset, filesz, _flags in self.loads:
                if offset <= self.phoff < offset + filesz:
                    self.phdr_vaddr = vaddr + (self.phoff - offset)
        self.lo = page_down(min(load[0] for load in self.loads))
        self.hi = page_up(max(load[0] + load[1] for load in self.loads))

    @property
    def span(self) -> int:
        return self.hi - self.lo

    def page_runs(self):
        """(start, end, prot, covered) page runs relative to the image: segments, the
        boundary pages two segments share (union of permissions), and the PROT_NONE
        gaps between segments (covered False)."""
        points = sorted({p for vaddr, memsz, *_ in self.loads for p in (page_down(vaddr), page_up(vaddr + memsz))})
        runs = []
        for start, end in zip(points, points[1:]):
            prot, covered = 0, False
            for vaddr, memsz, _offset, _filesz, flags in self.loads:
                if page_down(vaddr) < end and start < page_up(vaddr + memsz):
                    covered = True
                    prot |= _prot(flags)
            runs.append((start, end, prot, covered))
        return runs


def _prot(flags: int) -> int:
    return (1 if flags & PF_R else 0) | (2 if flags & PF_W else 0) | (4 if flags & PF_X else 0)


def read_image(open_file, path: str) -> ElfImage:
    try:
        data = open_file(path)
    except FileNotFoundError:
        raise ExecError("%s: no such file" % path) from None
    except IsADirectoryError:
        raise ExecError("%s: is a directory" % path) from None
    except PermissionError:
        raise ExecError("%s: permission denied" % path) from None
    except OSError as exc:
        raise ExecError("%s: cannot be read (%s)" % (path, exc.strerror or exc)) from None
    return ElfImage(path, bytes(data))


class LoadedProgram:
    """Where the images went: what the initial stack's auxv and the entry need."""

    def __init__(self, exe, exe_base, interp, interp_base):
        self.exe, self.exe_base, self.interp, self.interp_base = exe, exe_base, interp, interp_base

    @property
    def entry(self) -> int:
        if self.interp is not None:
            return self.interp_base + self.interp.entry
        return self.exe_base + self.exe.entry


def load_program(vm, open_file, path: str, heap_size: int, stack_size: int):
    """Load `path` (and its interpreter) into `vm`; returns (LoadedProgram, stack_top)."""
    exe = read_image(open_file, path)
    interp = None
    if exe.interp is not None:
        try:
            interp = read_image(open_file, exe.interp)
        except ExecError as exc:
            raise ExecError("%s: cannot load its interpreter: %s" % (path, exc)) from None
        if interp.interp is not None:
            raise ExecError("%s: the interpreter %s itself needs an interpreter" % (path, exe.interp))
    heap_size, stack_size = page_up(heap_size), page_up(stack_size)
    interp_span = interp.span if interp else 0
    total = interp_span + exe.span + heap_size + stack_size
    try:
        base = vm.reserve(total)
    except Exception:  # noqa: BLE001 - ENOMEM from the user space
        raise ExecError("%s: not enough user space for the program (%d KiB needed)" % (path, total >> 10)) from None
    interp_base = None
    if interp is not None:
        interp_base = base - interp.lo
        _map_image(vm, interp, interp_base)
    exe_base = base + interp_span - exe.lo
    _map_image(vm, exe, exe_base)
    stack_start = base + interp_span + exe.span
    heap_start = stack_start + stack_size
    vm.add_vma(Vma(stack_start, heap_start, 3, "stack"))
    vm.add_vma(Vma(heap_start, heap_start + heap_size, 3, "heap"))
    vm.set_stack(stack_start, heap_start)
    vm.set_heap(heap_start, heap_size)
    vm.sync_regions(base, base + total)
    return LoadedProgram(exe, exe_base, interp, interp_base), heap_start


def _map_image(vm, image: ElfImage, load_base: int) -> None:
    for start, end, prot, covered in image.page_runs():
        vm.add_vma(Vma(load_base + start, load_base + end, prot, "elf" if covered else "gap", image.path))
    for vaddr, _memsz, offset, filesz, _flags in image.loads:
        if filesz:
            vm.write_image(load_base + vaddr, memoryview(image.data)[offset:offset + filesz])

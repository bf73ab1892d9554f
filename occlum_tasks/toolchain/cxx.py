"""C++ for musl: the two ways occlum-g++ can build, and how it picks one.

Debian ships no libstdc++ built for musl, and glibc's cannot be borrowed: its headers
are configured for glibc (__GLIBC_PREREQ, glibc's ctype bits, __locale_t) and its
locale code reads glibc's private locale structure, so even with shims an iostream
program links and then crashes. What works:

- "libc++": zig's clang (PyPI package `ziglang`) targets x86_64-linux-musl and builds
  LLVM's libc++ from source against *this machine's* musl (through a ZIG_LIBC file), so
  binaries need only the same loader and libc.so as C programs; libc++ is linked
  statically. The first build compiles libc++ once (minutes) into the cache.
- "core": g++ with musl's specs and no standard library but libsupc++ (the language
  runtime: new/delete, exceptions, RTTI), which is libc-neutral. Debian's libgcc_eh
  finds unwind tables through glibc's _dl_find_object, so we link a small musl
  implementation of it. A program that needs the standard library fails with one line.

OCCLUM_GXX_BACKEND=auto|libc++|core chooses; auto takes libc++ when ziglang is installed.
"""
import importlib.metadata
import importlib.util
import os
import re
import subprocess
from pathlib import Path

from occlum_tasks.errors import OcclumError
from occlum_tasks.toolchain import support
from occlum_tasks.toolchain.musl import Musl, ToolMissing, find_gxx

BACKEND_ENV = "OCCLUM_GXX_BACKEND"
ZIG_TARGET = "x86_64-linux-musl"
NO_STDLIB = ("{what} needs a C++ standard library, which this machine lacks for musl (the "
             "core language alone links: classes, templates, exceptions, RTTI, new/delete); "
             "pip install ziglang to build with libc++")

# glibc's struct dl_find_object (x86-64: no eh_dbase field) filled from musl's
# dl_iterate_phdr, so that libgcc_eh's unwinder finds each module's PT_GNU_EH_FRAME.
DL_FIND_OBJECT_C = r"""
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>

struct dl_find_object {
    unsigned long long flags;
    void *map_start, *map_end, *link_map, *eh_frame;
    unsigned long long reserved[7];
};
struct query { uintptr_t pc; struct dl_find_object *out; };

static int visit(struct dl_phdr_info *info, size_t size, void *data) {
    struct query *q = data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    void *eh = 0;
    int hit = 0;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            if (start < lo) lo = start;
            if (start + ph->p_memsz > hi) hi = start + ph->p_memsz;
            if (q->pc >= start && q->pc < start + ph->p_memsz) hit = 1;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            eh = (void *)start;
        }
    }
    if (!hit) return 0;
    *q->out = (struct dl_find_object){0, (void *)lo, (void *)hi, 0, eh, {0}};
    return 1;
}

int _dl_find_object(void *pc, struct dl_find_object *out) {
    struct query q = { (uintptr_t)pc, out };
    return dl_iterate_phdr(visit, &q) ? 0 : -1;
}
"""

_MISSING_HEADER = re.compile(r"fatal error: ([\w+/]+): No such file or directory")
_MISSING_STD = re.compile(r"undefined reference to `([^']*\bstd::[^']*|__cxa_thread_atexit_impl)'")


def zig_binary() -> str | None:
    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.submodule_search_locations:
        return None
    zig = Path(list(spec.submodule_search_locations)[0]) / "zig"
    return str(zig) if os.access(zig, os.X_OK) else None


def choose_backend() -> str:
    wanted = os.environ.get(BACKEND_ENV, "auto")
    if wanted not in ("auto", "libc++", "core"):
        raise OcclumError(f"{BACKEND_ENV}={wanted}: expected auto, libc++ or core")
    if wanted == "core" or (wanted == "auto" and zig_binary() is None):
        return "core"
    if zig_binary() is None:
        raise ToolMissing(f"{BACKEND_ENV}=libc++ needs the Python package ziglang "
                          "(pip install ziglang)")
    return "libc++"


def backend_fingerprint() -> str:
    backend = choose_backend()
    if backend == "libc++":
        try:
            backend += " ziglang " + importlib.metadata.version("ziglang")
        except importlib.metadata.PackageNotFoundError:  # importable but not installed
            backend += " " + str(zig_binary())
    return backend


def core_command(musl: Musl, mode: str, args: list[str]) -> list[str]:
    sup = support.support_dir(musl)
    pic = "-fPIC" if mode == "shared" else "-fPIE"
    cmd = [find_gxx(musl), "-specs", str(sup / "musl-pie.specs"), pic,
           "-idirafter", str(sup / "include"), *args]
    if mode not in ("compile", "relocatable"):   # a relocatable link takes no libraries
        # instead of g++'s -lstdc++ -lm and the specs' libraries: the runtime only
        shim = support.compile_once(musl, "dl_find_object.o", DL_FIND_OBJECT_C)
        cmd += ["-nodefaultlibs", str(shim), "-Wl,--start-group", "-lsupc++", "-lgcc",
                "-lgcc_eh", "-lc", "-Wl,--end-group"]
        cmd += {"dynamic": ["-pie"], "static": ["-static-pie"], "shared": []}[mode]
    return cmd


def core_diagnosis(stderr: str) -> str | None:
    """One line when a core-only build failed for want of the standard library."""
    header = _MISSING_HEADER.search(stderr)
    if header and "." not in header.group(1):  # <vector>, <cstdio>: C++ library headers
        return NO_STDLIB.format(what=f"<{header.group(1)}>")
    symbol = _MISSING_STD.search(stderr)
    if symbol:
        what = symbol.group(1)
        if what == "__cxa_thread_atexit_impl":
            what += " (destructors of thread_local objects)"
        return NO_STDLIB.format(what=what)
    return None


def zig_command(musl: Musl, mode: str, args: list[str]) -> tuple[list[str], dict]:
    zig = zig_binary()
    pic = "-fPIC" if mode == "shared" else "-fPIE"
    # zig enables UBSan in debug builds; its runtime calls statx, which Debian 12's musl
    # (1.2.3) lacks. A user's own -fsanitize= still wins: it comes later.
    cmd = [zig, "c++", "-target", ZIG_TARGET, pic, "-fno-sanitize=undefined", *args]
    # without -dynamic zig links musl statically; -static-pie it ignores (a non-PIE)
    cmd += {"dynamic": ["-dynamic", "-pie"], "static": ["-static", "-pie"]}.get(mode, [])
    env = dict(os.environ, ZIG_LIBC=str(_zig_libc_file(musl)))
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(support.cache_root() / "zig"))
    return cmd, env


def libcxx_built_marker(env: dict) -> Path:
    return Path(env["ZIG_GLOBAL_CACHE_DIR"]) / ".occlum-libcxx-built"


def _zig_libc_file(musl: Musl) -> Path:
    """Point zig at the system's musl (headers, crt files, libc) instead of its own copy,
    and at our kernel headers; cc_dir is where gcc's crtbegin/crtend objects live."""
    sup = support.support_dir(musl)

    def fill(path: Path) -> None:
        libgcc = subprocess.run([musl.cc, "-print-libgcc-file-name"], capture_output=True,
                                text=True).stdout.strip()
        path.write_text(f"include_dir={musl.include}\n"
                        f"sys_include_dir={sup / 'include'}\n"
                        f"crt_dir={musl.crt_dir}\n"
                        f"cc_dir={Path(libgcc).parent}\n"
                        "msvc_lib_dir=\nkernel32_lib_dir=\ndarwin_sdk_dir=\n")

    return support.make_once(sup / "zig-libc.txt", fill, is_dir=False)

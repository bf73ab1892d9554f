"""occlum-gcc and occlum-g++: musl compilers that make what Occlum can load.

Occlum loads only position-independent executables linked against musl, so:
- by default a dynamic PIE (-fPIE -pie) whose interpreter is /lib/ld-musl-x86_64.so.1;
- -static-pie gives a static PIE; plain -static gives one too (a non-PIE static
  binary would be refused by Occlum); -no-pie and -fno-pie are refused;
- -shared builds a shared library (-fPIC);
- -r links relocatably (one object from several, as kbuild-based builds such as
  busybox's do): the result is an ET_REL object, compiled -fPIE, linked later into a PIE;
- -c, -S, -E (and -M, -MM, -fsyntax-only) only compile: no link flags are added;
- the Linux kernel headers (linux/, asm/, asm-generic/, ...) are on the include path,
  searched after musl's own headers, as in Occlum's toolchain.
Every other argument goes to the compiler untouched; the exit status is the compiler's.
The binaries also run natively on any Linux with musl's loader installed.

occlum-g++: see cxx.py for the C++ standard library it can offer on this machine.
Run as a module: `python -m occlum_tasks.toolchain.gcc [--cxx] ARGS...`.
"""
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from occlum_tasks import __version__
from occlum_tasks.errors import OcclumError
from occlum_tasks.toolchain import cxx, support
from occlum_tasks.toolchain.musl import ToolMissing, find_musl

COMPILE_ONLY = {"-c", "-S", "-E", "-M", "-MM", "-fsyntax-only",
                "-dumpversion", "-dumpfullversion", "-dumpmachine", "-dumpspecs",
                "--help", "--version", "--target-help", "-###"}
NOT_PIE = {"-no-pie", "-fno-pie", "-fno-PIE"}
ET_DYN = 3


@dataclass
class Plan:
    mode: str        # dynamic | static | shared | relocatable | compile
    args: list[str]  # the user's arguments, less -static and -static-pie
    output: str      # what a link writes


def plan(args: list[str]) -> Plan:
    refused = [a for a in args if a in NOT_PIE]
    if refused:
        raise OcclumError(f"{refused[0]} is not supported: Occlum loads only "
                          "position-independent executables")
    static = any(a in ("-static", "-static-pie") for a in args)
    rest = [a for a in args if a not in ("-static", "-static-pie")]
    if any(a in COMPILE_ONLY or a.startswith("-print-") for a in args):
        mode = "compile"
    elif "-shared" in args:
        mode = "shared"
    elif "-r" in args:
        mode = "relocatable"
    else:
        mode = "static" if static else "dynamic"
    return Plan(mode, rest, _output(args))


def _output(args: list[str]) -> str:
    out = "a.out"
    for i, a in enumerate(args):
        if a == "-o" and i + 1 < len(args):
            out = args[i + 1]
        elif a.startswith("-o") and len(a) > 2:
            out = a[2:]
    return out


def c_command(p: Plan) -> list[str]:
    musl = find_musl()
    sup = support.support_dir(musl)
    pic = "-fPIC" if p.mode == "shared" else "-fPIE"
    link = {"dynamic": ["-pie"], "static": ["-static-pie"]}.get(p.mode, [])
    return [musl.cc, "-specs", str(sup / "musl-pie.specs"), pic,
            "-idirafter", str(sup / "include"), *p.args, *link]


def check_pie(path: str, since: float) -> None:
    """Refuse to leave behind a binary Occlum would not load (a last line of defence
    against flags we did not foresee, e.g. -Wl,-no-pie). Only a file this link wrote
    (modified since `since`) is looked at."""
    try:
        if os.stat(path).st_mtime < since:
            return
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return
    if head[:4] == b"\x7fELF" and int.from_bytes(head[16:18], "little") != ET_DYN:
        os.unlink(path)
        raise OcclumError(f"{path} came out not position independent and was removed: "
                          "Occlum loads only PIE (check -Wl, options and non-PIC objects)")


def run(prog: str, args: list[str], is_cxx: bool) -> int:
    if "--help" in args or "--version" in args:
        print(f"{prog} (occlum-py {__version__}): musl compiler for Occlum, "
              "position-independent output")
        if "--help" in args:
            print(__doc__.split("\n", 1)[1].rstrip())
            print("\nThe compiler's own help follows.\n")
        sys.stdout.flush()
    try:
        p = plan(args)
        env, diagnose, marker = None, None, None
        if not is_cxx:
            cmd = c_command(p)
        elif cxx.choose_backend() == "libc++":
            cmd, env = cxx.zig_command(find_musl(), p.mode, p.args)
            marker = cxx.libcxx_built_marker(env)
            if p.mode not in ("compile", "relocatable") and not marker.exists():
                print(f"{prog}: first C++ link builds libc++ for musl (minutes, once)",
                      file=sys.stderr)
        else:
            cmd, diagnose = cxx.core_command(find_musl(), p.mode, p.args), cxx.core_diagnosis
        started = time.time() - 1  # mtime granularity of some file systems
        rc = _call(cmd, env, diagnose, prog)
        if rc == 0 and p.mode not in ("compile", "relocatable"):
            check_pie(p.output, started)
            if marker is not None:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
        return rc
    except ToolMissing as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 127
    except OcclumError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _call(cmd: list[str], env: dict | None, diagnose, prog: str) -> int:
    if diagnose is None:
        return subprocess.call(cmd, env=env)
    # core C++: read the compiler's errors to say in one line what is missing
    proc = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    line = diagnose(proc.stderr) if proc.returncode else None
    if line:
        print(f"{prog}: {line}", file=sys.stderr)
    return proc.returncode


def fingerprint() -> str:
    """Changes whenever the wrappers could produce different output: their code and the
    C++ backend in use. Test caches key compiled programs on it."""
    h = hashlib.sha256(support.SUPPORT_VERSION.encode())
    for src in sorted(Path(__file__).parent.glob("*.py")):
        h.update(src.name.encode() + src.read_bytes())
    h.update(cxx.backend_fingerprint().encode())
    return h.hexdigest()[:16]


def main_gcc() -> None:
    sys.exit(run("occlum-gcc", sys.argv[1:], is_cxx=False))


def main_gxx() -> None:
    sys.exit(run("occlum-g++", sys.argv[1:], is_cxx=True))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cxx"]:
        sys.exit(run("occlum-g++", sys.argv[2:], is_cxx=True))
    main_gcc()

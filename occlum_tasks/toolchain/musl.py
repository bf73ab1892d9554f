"""Find the musl toolchain behind `musl-gcc` (Debian's musl-tools).

Debian's musl-gcc is a two-line shell script: it runs the system gcc with musl's specs
file. That specs file cannot build a static-pie (it always links Scrt1.o and asks for
the dynamic loader), and a second `-specs` given to musl-gcc is read before musl's own
and so cannot override it. We therefore read the script to learn which compiler and
specs it uses, and run that compiler ourselves with a specs file that includes musl's
(see support.py). A musl-gcc that is not such a script (a real musl cross compiler)
is run as it is: those handle -static-pie themselves.
"""
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from occlum_tasks.errors import OcclumError

MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"
MISSING_MUSL = "musl-gcc not found; install Debian's musl-tools (apt-get install -y musl-tools)"

_SPECS_ARG = re.compile(r'-specs[= ]\s*"?([^"\s]+\.specs)"?')
_REALGCC = re.compile(r"\$\{REALGCC:-([^}\s]+)\}")
_CRT_DIR = re.compile(r"(\S+)/Scrt1\.o")
_LOADER = re.compile(r"-dynamic-linker\s+(\S+)")
_INCLUDE = re.compile(r"-nostdinc\s+-isystem\s+(\S+)")


class ToolMissing(OcclumError):
    """A program the wrapper needs is not installed (the wrapper exits 127)."""


@dataclass(frozen=True)
class Musl:
    driver: str     # the musl-gcc found on PATH
    cc: str         # the gcc it runs
    specs: str      # musl's specs file
    crt_dir: str    # where Scrt1.o, rcrt1.o, libc.a live
    include: str    # musl's headers
    loader: str     # the dynamic loader musl's specs name


def find_musl() -> Musl:
    driver = shutil.which("musl-gcc")
    if driver is None:
        raise ToolMissing(MISSING_MUSL)
    try:
        head = Path(driver).read_bytes()[:65536]
    except OSError:
        head = b""
    script = head.decode("utf-8", "replace") if head.startswith(b"#!") else ""
    specs = _first(_SPECS_ARG, script)
    if specs is None or not os.path.isfile(specs):
        raise ToolMissing(f"{driver} is not musl's musl-gcc script (no readable -specs file); "
                          "install Debian's musl-tools (apt-get install -y musl-tools)")
    # musl-gcc honours REALGCC; so do we, to build with the same compiler it would use
    cc_name = os.environ.get("REALGCC") or _first(_REALGCC, script) or "gcc"
    cc = shutil.which(cc_name)
    if cc is None:
        raise ToolMissing(f"{cc_name} (the compiler musl-gcc runs) not found; "
                          "install gcc (apt-get install -y gcc)")
    text = Path(specs).read_text(errors="replace")
    crt_dir = _first(_CRT_DIR, text) or str(Path(specs).parent)
    include = _first(_INCLUDE, text) or str(Path(crt_dir).parent.parent / "include"
                                             / Path(crt_dir).name)
    return Musl(driver, cc, specs, crt_dir, include, _first(_LOADER, text) or MUSL_LOADER)


def find_gxx(musl: Musl) -> str:
    """The C++ driver matching musl's gcc (x86_64-linux-gnu-gcc -> x86_64-linux-gnu-g++)."""
    base = Path(musl.cc)
    name = re.sub(r"gcc(-[0-9.]+)?$", r"g++\1", base.name)
    for cand in (str(base.with_name(name)), name, "g++"):
        found = shutil.which(cand)
        if found:
            return found
    raise ToolMissing("g++ not found; install Debian's g++ (apt-get install -y g++)")


def _first(pattern: re.Pattern, text: str) -> str | None:
    m = pattern.search(text)
    return m.group(1) if m else None

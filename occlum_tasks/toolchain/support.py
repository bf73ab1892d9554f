"""Files the wrappers add to musl's toolchain, built once into a cache folder.

- include/: symlinks to the Linux kernel headers. Occlum's toolchain installs them into
  its musl sysroot; musl-gcc searches only musl's headers (and adding /usr/include would
  pull in glibc's), so we give the kernel's folders alone, searched after musl's.
- musl-pie.specs: musl's specs plus a static-pie mode (rcrt1.o, no interpreter) and
  --eh-frame-hdr, which C++ exception unwinding needs to find its tables.

The folder's name is a hash of everything it is made from, so a changed musl install or
a new version of this module gets a new folder. It is filled under a temporary name and
renamed into place, so concurrent first uses never see it half made.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from occlum_tasks.errors import OcclumError
from occlum_tasks.toolchain.musl import Musl

SUPPORT_VERSION = "2"  # bump when the files made here change

# kernel header folders as linux-libc-dev installs them; scsi/ is left out on purpose:
# glibc owns part of it. The first existing path of each list is used.
KERNEL_HEADERS = {
    "linux": ["/usr/include/linux"],
    "asm": ["/usr/include/x86_64-linux-gnu/asm", "/usr/include/asm"],
    "asm-generic": ["/usr/include/asm-generic"],
    "mtd": ["/usr/include/mtd"],
    "rdma": ["/usr/include/rdma"],
    "sound": ["/usr/include/sound"],
    "video": ["/usr/include/video"],
    "xen": ["/usr/include/xen"],
    "misc": ["/usr/include/misc"],
}


def cache_root() -> Path:
    """$OCCLUM_PY_CACHE, else $XDG_CACHE_HOME/occlum-py or ~/.cache/occlum-py; a
    per-user temporary folder when none of those can be written."""
    env = os.environ.get("OCCLUM_PY_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "occlum-py"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"occlum-py-{os.getuid()}"


def make_once(final: Path, fill: Callable[[Path], None], is_dir: bool) -> Path:
    """Create `final` (a folder or a file) by `fill(tmp)` then an atomic rename."""
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    target = tmp if is_dir else tmp / final.name
    try:
        fill(target)
        try:
            os.rename(target, final)
        except OSError:
            if not final.exists():  # not a lost race with another process: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _kernel_links() -> dict[str, str]:
    links = {}
    for name, candidates in KERNEL_HEADERS.items():
        for path in candidates:
            if os.path.isdir(path):
                links[name] = path
                break
    return links


def support_dir(musl: Musl) -> Path:
    links = _kernel_links()
    musl_specs = Path(musl.specs).read_bytes()
    key = hashlib.sha256(repr((SUPPORT_VERSION, musl, sorted(links.items()))).encode()
                         + musl_specs).hexdigest()[:16]

    def fill(tmp: Path) -> None:
        inc = tmp / "include"
        inc.mkdir()
        for name, target in links.items():
            os.symlink(target, inc / name)
        (tmp / "musl-pie.specs").write_text(_pie_specs(musl))

    return make_once(cache_root() / "toolchain" / key, fill, is_dir=True)


def _pie_specs(musl: Musl) -> str:
    # %rename keeps musl's definitions, so only the static-pie case is ours; it links
    # rcrt1.o (which applies its own relocations) and asks for no interpreter, as
    # gcc's built-in Linux specs do for -static-pie.
    crt = musl.crt_dir
    return (
        f"%include <{musl.specs}>\n\n"
        "%rename startfile musl_startfile\n"
        "%rename link musl_link\n\n"
        "*startfile:\n"
        f"%{{static-pie:{crt}/rcrt1.o {crt}/crti.o crtbeginS.o%s;:%(musl_startfile)}}\n\n"
        "*link:\n"
        "--eh-frame-hdr %{static-pie:-static -pie --no-dynamic-linker -z text -nostdlib"
        " %{rdynamic:-export-dynamic};:%(musl_link)}\n\n"
    )


def compile_once(musl: Musl, name: str, source: str) -> Path:
    """A small C object of ours, compiled with musl as PIC and cached beside the specs."""
    base = support_dir(musl)

    def fill(out: Path) -> None:
        src = out.with_suffix(".c")
        src.write_text(source)
        cmd = [musl.cc, "-specs", str(base / "musl-pie.specs"), "-O2", "-fPIC", "-c",
               "-o", str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OcclumError(f"compiling {name} failed: {proc.stderr.strip()}")

    return make_once(base / name, fill, is_dir=False)

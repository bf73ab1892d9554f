"""The measured loader: `occlum run` runs exactly the runtime bytes it hashed.

On hardware, EINIT measures the pages the enclave's code is loaded from, so what runs
is what was measured. Here the enclave's code is Python modules and a shared library
read from the host's file system, so `occlum run`:

1. reads every file of the runtime (runtime_manifest.runtime_files: the LibOS, SEFS,
   unicorn's binding) once into memory and hashes it; unicorn's shared library is
   copied into a sealed memfd (no one can change it any more) and that copy is hashed,
   on a thread, while EINIT runs;
2. compares the hashes with the measured manifest, after EINIT has shown that the
   manifest is the measured one; the first difference is refused in one line;
3. puts a finder first on sys.meta_path that owns the runtime's module namespaces
   (occlum_tasks.libos, occlum_tasks.image, unicorn): each module is compiled from the
   in-memory bytes that were hashed (or taken from the MACed code cache,
   runtime_code_cache.py, which holds only code this loader compiled from such bytes),
   never from __pycache__; a name with no measured file is not found, whatever lies on
   disk; a module of those namespaces that the ordinary importer loaded before (the
   build's steps, in `doit run`) is dropped from sys.modules so that the enclave gets
   its own; unicorn's binding loads the library from the sealed memfd, and after the
   import no other libunicorn may be mapped in the process.

So a file changed after start-up, a planted .pyc, or an extra module has no effect on
what runs. A .pyc that Python's own importer would take for a measured source but that
holds other code is refused all the same (check_bytecode): it would run in any ordinary
import, and it shows that someone wrote into the installation. Modules the LibOS imports at first use (syscall/lazy.py) come through the
same finder from the same verified bytes. The boundary (what is measured, what is host)
is docs/runtime-boundary.md.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Mapping

from .errors import IntegrityError
from .paths import RUNTIME_MANIFEST
from .runtime_manifest import (RUNTIME_TREES, UNICORN_LIBRARY, first_difference, manifest_from,
                               parse_manifest, runtime_files, runtime_roots, unicorn_version)

NAMESPACES = tuple(f"{pkg}.{folder}" if folder else pkg for pkg, folder in RUNTIME_TREES)
LIBRARY_ENV = "LIBUNICORN_PATH"   # where unicorn's binding looks for its library first


def owned(name: str) -> bool:
    return any(name == ns or name.startswith(ns + ".") for ns in NAMESPACES)


class SealedLibrary:
    """A shared library copied into a sealed memfd and hashed there, on a thread.

    The copy (~10 ms for unicorn's 24 MB) is what makes the check exact: a sealed memfd
    cannot change, so what dlopen maps is what was hashed, even if the file is rewritten
    meanwhile. Hashing it costs another ~20 ms, so, as Linux's IMA re-measures a file only
    when it changed, a record under the cache's MAC keeps the hash with the file's
    identity (device, inode, size, mtime and ctime in ns): the same identity before and
    after the copy proves that no one wrote the file since it was hashed (ctime cannot be
    set back without root). A file changed less than a second before is not recorded."""

    def __init__(self, path: Path, cache=None):
        self.path = Path(path)
        self.cache = cache
        self.fd: int | None = None
        self.sha256: str | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._copy_and_hash, daemon=True)
        self._thread.start()

    @staticmethod
    def _identity(st) -> tuple:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _copy_and_hash(self) -> None:
        import fcntl
        import mmap
        fd = None
        try:
            src = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                before = self._identity(os.fstat(src))
                size = before[2]
                fd = os.memfd_create(self.path.name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
                done = 0
                while done < size:
                    n = os.sendfile(fd, src, done, size - done)
                    if n == 0:
                        break
                    done += n
                unchanged = self._identity(os.fstat(src)) == before and done == size
            finally:
                os.close(src)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                        | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
            ident = hashlib.sha256(b"occlum-py library\0" + bytes(self.path)).digest()
            record = self.cache.load(ident) if self.cache is not None and unchanged else None
            if isinstance(record, tuple) and len(record) == 6 and record[:5] == before:
                self.sha256 = record[5]
            else:
                if done:
                    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as view:
                        self.sha256 = hashlib.sha256(view).hexdigest()
                else:       # mmap refuses a size of 0
                    self.sha256 = hashlib.sha256(b"").hexdigest()
                if (self.cache is not None and unchanged
                        and before[4] < time.time_ns() - 1_000_000_000):
                    self.cache.store(ident, (*before, self.sha256))
            self.fd, fd = fd, None
        except OSError as exc:
            self.error = exc.strerror or str(exc)
        finally:
            if fd is not None:
                os.close(fd)

    def wait(self) -> str | None:
        """The SHA-256 of the sealed copy, or None if the file could not be read."""
        self._thread.join()
        return self.sha256

    def close(self) -> None:
        self._thread.join()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Runtime:
    """The runtime files as read at start-up (see the module's docstring)."""

    def __init__(self, roots: Mapping[str, Path] | None = None, cache=None):
        """``cache``: a CodeCache; it also keeps the library's hash (SealedLibrary)."""
        self.cache = cache
        self.roots = {k: Path(v) for k, v in (roots or runtime_roots()).items()}
        self.unicorn = unicorn_version(self.roots)
        self.paths: dict[str, Path] = {}
        self.sources: dict[str, bytes] = {}
        self.digests: dict[str, str] = {}
        self.library = None
        self.measured = ""
        for name, path in runtime_files(self.roots):
            self.paths[name] = path
            if name == UNICORN_LIBRARY:
                self.library = SealedLibrary(path, cache)
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue        # reported as missing by check()
            self.sources[name] = data
            self.digests[name] = hashlib.sha256(data).hexdigest()

    def close(self) -> None:
        """Let go of the library's sealed copy (24 MB of memory) when it will not be
        loaded in this process: the launch was refused, or only checked."""
        if self.library is not None:
            self.library.close()

    def current_manifest(self) -> str:
        """The manifest of what was read (waits for the library's hash)."""
        return manifest_from(self._current(with_library=True), self.unicorn)

    def _current(self, with_library: bool, measured: Mapping[str, str] | None = None) -> dict:
        files = dict(self.digests)
        if self.library is None:
            return files
        if not with_library:        # taken as measured until check_library() says
            if measured and UNICORN_LIBRARY in measured:
                files[UNICORN_LIBRARY] = measured[UNICORN_LIBRARY]
        elif self.library.wait() is not None:
            files[UNICORN_LIBRARY] = self.library.sha256
        return files

    def check(self, measured: bytes, with_library: bool = True) -> None:
        """Refuse, in one line, a runtime that differs from the measured manifest.
        ``with_library=False`` leaves unicorn's library to check_library(), which the
        loader calls just before the binding loads it (its hash is still being made)."""
        try:
            self.measured = measured.decode()
        except UnicodeDecodeError:
            self.measured = ""
        _, files = parse_manifest(self.measured)
        what = first_difference(self.measured, self._current(with_library, files), self.unicorn)
        if what:
            self._refuse(what)

    def check_library(self) -> None:
        _, files = parse_manifest(self.measured)
        digest = None if self.library is None else self.library.wait()
        if digest is None or digest != files.get(UNICORN_LIBRARY):
            self._refuse(first_difference(self.measured, self._current(True), self.unicorn)
                         or f"{UNICORN_LIBRARY} has changed")

    def _refuse(self, what: str):
        if self.library is not None and self.library.error and UNICORN_LIBRARY in what:
            what = f"{UNICORN_LIBRARY}: cannot read it ({self.library.error})"
        raise IntegrityError(f"the runtime differs from the measured {RUNTIME_MANIFEST}: "
                             f"{what} (run `occlum build` to measure and sign it)")

    # --- loading -------------------------------------------------------------------

    def module_file(self, name: str) -> tuple[str, bool] | None:
        """(manifest name of the file, is a package) of module ``name``, if measured."""
        base = name.replace(".", "/")
        for rel, package in ((f"{base}/__init__.py", True), (f"{base}.py", False)):
            if rel in self.sources:
                return rel, package
        return None

    def code(self, rel: str):
        """The code of ``rel``, compiled from its checked bytes (or cached)."""
        cache, ident, origin = self.cache, None, str(self.paths[rel])
        if cache is not None:
            ident = cache.ident(origin, self.digests[rel])
            code = cache.load(ident)
            if code is not None:
                return code
        code = compile(self.sources[rel], origin, "exec", dont_inherit=True)
        if cache is not None:
            cache.store(ident, code)
        return code

    def check_bytecode(self) -> None:
        """Refuse a .pyc that Python's own importer would take for a measured source but
        that holds other code (planted, as the issue showed). The loader never reads it,
        but any ordinary import of the module would run it, and it means that someone
        wrote into the installation. Each .pyc is compared in full only when it is new or
        changed: the identities of those found equal are kept under the cache's MAC."""
        import _frozen_importlib_external as bootstrap   # no importlib.util: 5 ms
        ident = hashlib.sha256(b"occlum-py bytecode\0" + repr(sorted(
            (k, str(v)) for k, v in self.roots.items())).encode()).digest()
        record = self.cache.load(ident) if self.cache is not None else None
        record = record if isinstance(record, dict) else {}
        seen, changed = {}, False
        for rel in self.sources:
            pyc = bootstrap.cache_from_source(str(self.paths[rel]))
            try:
                before = SealedLibrary._identity(os.stat(pyc)) + (self.digests[rel],)
            except OSError:
                continue
            if record.get(pyc) != before:
                changed = True
                try:
                    with open(pyc, "rb") as f:
                        data = f.read()
                    taken = _imported_instead(data, self.paths[rel], self.sources[rel])
                except OSError:
                    continue        # gone meanwhile
                if taken:
                    import marshal
                    try:
                        same = marshal.loads(data[16:]) == self.code(rel)
                    except (EOFError, ValueError, TypeError):
                        same = False
                    if not same:
                        raise IntegrityError(
                            f"{pyc}: Python's importer would run it for the measured {rel}, "
                            "but it holds other code (planted?); delete it")
                try:
                    after = SealedLibrary._identity(os.stat(pyc)) + (self.digests[rel],)
                except OSError:
                    continue
                if after != before or before[4] > time.time_ns() - 1_000_000_000:
                    continue        # changing now: checked again next time
            seen[pyc] = before
        if self.cache is not None and (changed or seen.keys() != record.keys()):
            self.cache.store(ident, seen)

    def install(self) -> "MeasuredFinder":
        """From now on, every module of the runtime's namespaces comes from the bytes
        checked by check(), compiled by this loader (cached in ``self.cache``)."""
        for old in [f for f in sys.meta_path if isinstance(f, MeasuredFinder)]:
            sys.meta_path.remove(old)
        self.check_bytecode()
        finder = MeasuredFinder(self)
        sys.meta_path.insert(0, finder)
        for name in [n for n in sys.modules if owned(n)]:
            if getattr(sys.modules[name], "__loader__", None) is not finder:
                del sys.modules[name]   # loaded by the ordinary importer: never the enclave's
        return finder


class MeasuredFinder:
    """Finder and loader of the runtime's modules (see the module's docstring)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def find_spec(self, name, path=None, target=None):
        if not owned(name):
            return None
        found = self.runtime.module_file(name)
        if found is None:
            raise ModuleNotFoundError(f"No module named {name!r} in the measured runtime",
                                      name=name)
        from importlib.machinery import ModuleSpec
        rel, package = found
        origin = self.runtime.paths[rel]
        spec = ModuleSpec(name, self, origin=str(origin), is_package=package)
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [str(origin.parent)]
        return spec

    def create_module(self, spec):
        return None

    def get_resource_reader(self, fullname):
        # importlib.resources.files(package): the binding asks where its lib/ folder
        # is (only after LIBUNICORN_PATH, which points at the memfd; see exec_binding)
        from importlib.readers import FileReader
        from types import SimpleNamespace
        return FileReader(SimpleNamespace(path=sys.modules[fullname].__spec__.origin))

    def exec_module(self, module):
        name = module.__spec__.name
        rel, _ = self.runtime.module_file(name)
        module.__file__ = module.__spec__.origin
        code = self.runtime.code(rel)
        if name != "unicorn":
            exec(code, module.__dict__)
            return
        # the binding loads its library while the package is imported: from the memfd
        self.exec_binding(code, module)

    def exec_binding(self, code, module) -> None:
        import tempfile
        self.runtime.check_library()
        library = self.runtime.library
        before = os.environ.get(LIBRARY_ENV)
        with tempfile.TemporaryDirectory(prefix="occlum-unicorn-") as folder:
            os.symlink(f"/proc/self/fd/{library.fd}", Path(folder) / Path(UNICORN_LIBRARY).name)
            os.environ[LIBRARY_ENV] = folder
            try:
                exec(code, module.__dict__)
            finally:
                if before is None:
                    os.environ.pop(LIBRARY_ENV, None)
                else:
                    os.environ[LIBRARY_ENV] = before
        others = foreign_mappings(Path(UNICORN_LIBRARY).name)
        if others:
            raise IntegrityError(f"{others[0]}: a libunicorn that was not measured is loaded "
                                 "in this process; the enclave runs only the measured one")


def _imported_instead(data: bytes, source_path: Path, source: bytes) -> bool:
    """Whether Python's importer takes the .pyc ``data`` as the bytecode of ``source``
    (importlib._bootstrap_external's rules: magic, then the timestamp and size of the
    source, or its hash; an unchecked hash-based .pyc is always taken)."""
    import _frozen_importlib_external as bootstrap
    import _imp
    if len(data) < 16 or data[:4] != bootstrap.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(data[4:8], "little")
    if flags & 0b1:
        if not flags & 0b10 or _imp.check_hash_based_pycs == "never":
            return _imp.check_hash_based_pycs != "always"
        return data[8:16] == _imp.source_hash(bootstrap._RAW_MAGIC_NUMBER, source)
    st = os.stat(source_path)
    return (int.from_bytes(data[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(data[12:16], "little") == st.st_size & 0xFFFFFFFF)


def foreign_mappings(library_name: str) -> list[str]:
    """Files named like ``library_name`` mapped in this process other than memfds."""
    found = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) == 6 else ""
                if library_name.split(".so")[0] in path and not path.startswith("/memfd:"):
                    found.append(path)
    except OSError:
        pass
    return sorted(set(found))

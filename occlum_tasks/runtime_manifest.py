"""The runtime manifest: hashes of every file of the code that runs inside the enclave.

The `runtime` build step writes it to build/lib/runtime.manifest and the `sign` step
measures it into MRENCLAVE; `occlum run` hashes the files again before it boots,
refuses a runtime that differs, and then runs exactly the bytes it hashed
(runtime_loader.py). Both sides use this module, so that they cannot drift apart.
What is inside the measured runtime, and why, is docs/runtime-boundary.md.

Format (text, one item per line, "\\n" line ends):

    occlum-py runtime manifest 2
    unicorn <version of the installed unicorn distribution>
    <sha256 hex>  <file, "/" separated, relative to the folder holding its package>
    ...

The files (RUNTIME_TREES), sorted by name: every ``*.py`` of occlum_tasks/libos (the
LibOS), occlum_tasks/image (SEFS: the formats the LibOS reads and writes, their keys
and MACs) and of the unicorn package (the CPU emulator's binding), and the shared
library that binding loads (unicorn/lib/libunicorn.so.2). ``__pycache__`` is never
listed: bytecode is made from the measured sources, not read from there. No
timestamps, no absolute paths: the same code gives the same bytes anywhere. The
unicorn line only sharpens the message when another unicorn is installed; the hashes
of its files are what counts.

This module is on the `occlum run` path: it imports nothing heavy (no doit, no unicorn,
no importlib.metadata unless the fast lookup of unicorn's version fails).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST_HEADER = "occlum-py runtime manifest 2"
UNICORN_LINE = "unicorn "
UNICORN_LIBRARY = "unicorn/lib/libunicorn.so.2"
# (package, folder inside it): the Python code of the measured runtime. Each is also a
# module namespace that the measured loader owns while an enclave runs.
RUNTIME_TREES = (("occlum_tasks", "libos"), ("occlum_tasks", "image"), ("unicorn", ""))


def unicorn_dir() -> Path:
    """The unicorn package that `import unicorn` finds (the first sys.path entry
    holding it), located without importing it."""
    import sys
    for entry in sys.path:
        site = Path(entry or ".")
        if (site / "unicorn" / "__init__.py").is_file():
            return (site / "unicorn").resolve()
    from importlib.util import find_spec
    spec = find_spec("unicorn")
    if spec is None or not spec.origin:
        from .errors import IntegrityError
        raise IntegrityError("unicorn is not installed (pip install unicorn==2.1.4)")
    return Path(spec.origin).resolve().parent


def runtime_roots() -> dict[str, Path]:
    """{package name: its folder} for the packages the measured runtime draws on."""
    return {"occlum_tasks": PACKAGE_DIR, "unicorn": unicorn_dir()}


def runtime_files(roots: Mapping[str, Path] | None = None) -> list[tuple[str, Path]]:
    """[(manifest name, file)] of the runtime in ``roots`` (runtime_roots() by default),
    sorted by name."""
    roots = runtime_roots() if roots is None else roots
    out = []
    for package, folder in RUNTIME_TREES:
        top = Path(roots[package])
        for path in (top / folder).rglob("*.py"):
            rel = path.relative_to(top)
            if "__pycache__" not in rel.parts:
                out.append((f"{package}/{rel.as_posix()}", path))
    package, _, rest = UNICORN_LIBRARY.partition("/")
    out.append((UNICORN_LIBRARY, Path(roots[package]) / rest))
    return sorted(out)


def unicorn_version(roots: Mapping[str, Path] | None = None) -> str:
    """The version of the unicorn distribution installed beside its package.

    Read from the METADATA of the dist-info folder beside the unicorn package, which is
    what importlib.metadata.version reads too, without importing unicorn or
    importlib.metadata: they cost 7-30 ms each, and `occlum run` starts in ~150 ms.
    """
    site = (Path(roots["unicorn"]) if roots else unicorn_dir()).parent
    for info in sorted(site.glob("unicorn-*.dist-info")):
        try:
            with open(info / "METADATA", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break       # end of the headers
        except OSError:
            continue
    from importlib.metadata import version
    return version("unicorn")


def manifest_from(digests: Mapping[str, str], unicorn: str) -> str:
    """The manifest's text for {name: sha256 hex}."""
    lines = [MANIFEST_HEADER, f"{UNICORN_LINE}{unicorn}"]
    lines += [f"{digests[name]}  {name}" for name in sorted(digests)]
    return "\n".join(lines) + "\n"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest_text(roots: Mapping[str, Path] | None = None) -> str:
    """The manifest of the runtime in ``roots`` (the installed one by default)."""
    roots = runtime_roots() if roots is None else roots
    digests = {name: file_sha256(path) for name, path in runtime_files(roots)}
    return manifest_from(digests, unicorn_version(roots))


def parse_manifest(text: str) -> tuple[list[str], dict[str, str]]:
    """(header lines, {name: sha256 hex}) of a manifest's text."""
    header, files = [], {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if sep and len(digest) == 64 and not line.startswith(UNICORN_LINE):
            files[name] = digest
        else:
            header.append(line)
    return header, files


def first_difference(measured: str, current: Mapping[str, str], unicorn: str) -> str:
    """What differs first between the measured manifest's text and the runtime
    installed ({name: sha256 hex}, unicorn's version), in words: a changed, added or
    missing file, or the unicorn version. Empty if they agree."""
    if measured == manifest_from(current, unicorn):
        return ""
    m_head, m_files = parse_manifest(measured)
    if m_head != [MANIFEST_HEADER, f"{UNICORN_LINE}{unicorn}"]:
        m_uc = next((h for h in m_head if h.startswith(UNICORN_LINE)), "no unicorn line")
        if m_head[:1] != [MANIFEST_HEADER]:
            return "the manifest header differs (built by another version of occlum-py)"
        return f"unicorn {unicorn} is installed, the enclave was built with {m_uc}"
    for name in sorted(set(m_files) | set(current)):
        if name not in current:
            return f"{name} is measured but missing"
        if name not in m_files:
            return f"{name} is not part of the measured runtime (added after the build)"
        if m_files[name] != current[name]:
            return f"{name} has changed"
    return "the manifest's bytes differ (it is not in the form the build writes)"

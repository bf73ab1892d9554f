"""The runtime manifest: hashes of the LibOS code that `occlum run` executes.

The `runtime` build step writes it to build/lib/runtime.manifest and the `sign` step
measures it into MRENCLAVE; `occlum run` hashes the code again just before it boots
and refuses a runtime that differs from the measured manifest. Both sides call
manifest_text() here, so that they cannot drift apart.

Format (text, one item per line, "\\n" line ends):

    occlum-py runtime manifest 1
    unicorn <version of the installed unicorn distribution>
    <sha256 hex>  <path relative to occlum_tasks/libos, "/" separated>
    ...

Files are every ``*.py`` under occlum_tasks/libos (``__pycache__`` excluded), sorted by
path; no timestamps, no absolute paths: the same code gives the same bytes anywhere.

This module is on the `occlum run` path: it imports nothing heavy (no doit, no
importlib.metadata unless the fast lookup of unicorn's version fails).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

LIBOS_DIR = Path(__file__).resolve().parent / "libos"
MANIFEST_HEADER = "occlum-py runtime manifest 1"
UNICORN_LINE = "unicorn "


def libos_sources(libos_dir: Path = LIBOS_DIR) -> list[Path]:
    return sorted(p for p in Path(libos_dir).rglob("*.py") if "__pycache__" not in p.parts)


def unicorn_version() -> str:
    """The version of the installed unicorn distribution.

    Read from the METADATA of the dist-info folder beside the unicorn package that
    `import unicorn` finds (the first sys.path entry holding it), which is what
    importlib.metadata.version reads too, without importing unicorn, importlib.metadata
    or importlib.util: they cost 7-30 ms each, and `occlum run` has 350 ms in all.
    """
    import sys
    for entry in sys.path:
        site = Path(entry or ".")
        if not (site / "unicorn" / "__init__.py").is_file():
            continue
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
        break
    from importlib.metadata import version
    return version("unicorn")


def manifest_text(libos_dir: Path = LIBOS_DIR) -> str:
    """The manifest of the LibOS code in ``libos_dir`` (the package's own by default)."""
    libos_dir = Path(libos_dir)
    lines = [MANIFEST_HEADER, f"{UNICORN_LINE}{unicorn_version()}"]
    for path in libos_sources(libos_dir):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(libos_dir).as_posix()}")
    return "\n".join(lines) + "\n"


def parse_manifest(text: str) -> tuple[list[str], dict[str, str]]:
    """(header lines, {relative path: sha256 hex}) of a manifest's text."""
    header, files = [], {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if sep and len(digest) == 64 and not line.startswith(UNICORN_LINE):
            files[name] = digest
        else:
            header.append(line)
    return header, files


def first_difference(measured: str, current: str, libos_dir: Path = LIBOS_DIR) -> str:
    """What differs first between the measured manifest and the current runtime, in
    words: a changed, added or missing file (named by its path in the source tree), or
    the unicorn version. Empty if the two are the same."""
    if measured == current:
        return ""
    m_head, m_files = parse_manifest(measured)
    c_head, c_files = parse_manifest(current)
    if m_head != c_head:
        m_uc = next((h for h in m_head if h.startswith(UNICORN_LINE)), "no unicorn line")
        c_uc = next((h for h in c_head if h.startswith(UNICORN_LINE)), "no unicorn line")
        if m_uc != c_uc:
            return f"{c_uc} is installed, the enclave was built with {m_uc}"
        return "the manifest header differs (built by another version of occlum-py)"
    where = Path(libos_dir)
    try:    # the package's own code is named as in the source tree: occlum_tasks/libos/...
        where = where.relative_to(LIBOS_DIR.parent.parent)
    except ValueError:
        pass
    for name in sorted(set(m_files) | set(c_files)):
        shown = (where / name).as_posix()
        if name not in c_files:
            return f"{shown} is measured but missing"
        if name not in m_files:
            return f"{shown} is not part of the measured runtime (added after the build)"
        if m_files[name] != c_files[name]:
            return f"{shown} has changed"
    return "the manifest's bytes differ (it is not in the form the build writes)"

"""`occlum init`: lay out an instance folder (DESIGN.md section 3)."""
import os
import shutil
from pathlib import Path

from .paths import TEMPLATES_DIR
from .errors import OcclumError
from .fsutil import write_atomic
from .paths import IMAGE_DIR, OCCLUM_JSON, STATUS_FILE

IMAGE_SUBDIRS = ("bin", "lib", "lib64", "root", "host", "tmp", "dev", "proc", "etc", "sbin")
MUSL_LOADER = Path("/lib/ld-musl-x86_64.so.1")
HOSTS = "127.0.0.1   localhost\n"
INSTANCE_FILES = ("dodo.py", "doit.cfg")


def render(template, **values):
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.get_template(template).render(**values)


def init_instance(folder: Path):
    from .config import render_template
    folder = Path(folder)
    for marker in (STATUS_FILE, OCCLUM_JSON):
        if (folder / marker).exists():
            raise OcclumError(f"{folder / marker}: this folder is already an Occlum instance")
    for mine in INSTANCE_FILES:
        if (folder / mine).exists():
            raise OcclumError(f"{folder / mine}: exists, and `occlum init` would replace it; "
                              "move it away first")
    write_atomic(folder / OCCLUM_JSON, render_template(), mode=0o644)
    lay_out(folder)


def lay_out(folder: Path):
    """Everything of `occlum init` but Occlum.json; the repo's samples keep their own
    Occlum.json and get the rest from here (which rewrites dodo.py and doit.cfg)."""
    image = folder / IMAGE_DIR
    for sub in IMAGE_SUBDIRS:
        (image / sub).mkdir(parents=True, exist_ok=True)
    if not (image / "etc" / "hosts").exists():
        write_atomic(image / "etc" / "hosts", HOSTS)
    if Path("/etc/localtime").exists():
        shutil.copyfile("/etc/localtime", image / "etc" / "localtime")
    if MUSL_LOADER.exists():
        # the resolved file, not the host's symlink: the image must be self-contained
        shutil.copyfile(MUSL_LOADER, image / "lib" / MUSL_LOADER.name)
        os.chmod(image / "lib" / MUSL_LOADER.name, 0o755)
    else:
        print(f"warning: {MUSL_LOADER} not found (install musl-tools); dynamically linked "
              "programs will need it in image/lib")
    name = folder.resolve().name
    write_atomic(folder / "dodo.py", render("dodo.py.j2", name=name))
    write_atomic(folder / "doit.cfg", render("doit.cfg.j2", name=name))
    if not (folder / STATUS_FILE).exists():
        write_atomic(folder / STATUS_FILE, "initialized")

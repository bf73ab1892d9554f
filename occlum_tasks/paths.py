"""Paths inside an instance folder (DESIGN.md section 3), relative to it; and where the
package's own data (templates/, schemas/) is.

Kept apart from the build steps so that `occlum run` can name them without
importing doit."""
from pathlib import Path

# templates/ and schemas/ are top-level folders of the repository (DESIGN.md section 2);
# a wheel carries them inside the package, as occlum_tasks/templates and
# occlum_tasks/schemas (setup.py maps them there). Every user finds them here.
_PACKAGE = Path(__file__).resolve().parent


def _package_data(name: str) -> Path:
    inside = _PACKAGE / name                    # an installed wheel
    return inside if inside.is_dir() else _PACKAGE.parent / name   # a checkout


TEMPLATES_DIR = _package_data("templates")
SCHEMAS_DIR = _package_data("schemas")

OCCLUM_JSON = Path("Occlum.json")
IMAGE_DIR = Path("image")
BUILD_DIR = Path("build")
RESOLVED_JSON = BUILD_DIR / "Occlum.resolved.json"
CACHE_DIR = BUILD_DIR / ".cache"
IMAGE_ROOT = BUILD_DIR / "mount" / "__ROOT"
IMAGE_ROOT_MAC = BUILD_DIR / "mount" / ".ROOT_MAC"
INITFS_SRC = CACHE_DIR / "initfs"
INITFS_ROOT = BUILD_DIR / "initfs" / "__ROOT"
INITFS_ROOT_MAC = BUILD_DIR / "initfs" / ".ROOT_MAC"
SYS_JSON = BUILD_DIR / ".Occlum_sys.json"
SYS_PROTECTED = BUILD_DIR / ".Occlum_sys.json.protected"
SYS_MAC = BUILD_DIR / ".Occlum_sys.mac"
RUNTIME_MANIFEST = BUILD_DIR / "lib" / "runtime.manifest"
SIGSTRUCT = BUILD_DIR / "lib" / "enclave.sigstruct"
LAYOUT = BUILD_DIR / "lib" / "enclave.layout"
RUN_DIR = Path("run")
RUN_ROOT = RUN_DIR / "mount" / "__ROOT"
RUN_OWNER = RUN_DIR / ".owner"
STATUS_FILE = Path(".__occlum_status")
DEP_FILE = BUILD_DIR / ".doit.db"

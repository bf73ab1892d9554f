"""occlum-py: Occlum's workflow for machines without SGX."""
from pathlib import Path

__version__ = "0.1.0"

# schemas/ and templates/ sit beside the package (DESIGN.md section 2); the package
# is installed in editable mode, so they are found relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
TEMPLATES_DIR = PROJECT_ROOT / "templates"

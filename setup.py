"""What pyproject.toml cannot say: templates/ and schemas/ stay top-level folders of the
repository (DESIGN.md section 2), and a wheel carries them as package data, installed as
occlum_tasks/templates and occlum_tasks/schemas. occlum_tasks/paths.py finds them in
either place."""
from setuptools import find_packages, setup

DATA = {"occlum_tasks.templates": "templates", "occlum_tasks.schemas": "schemas"}

setup(packages=find_packages(include=["occlum_tasks", "occlum_tasks.*"]) + list(DATA),
      package_dir=DATA,
      package_data={name: ["*"] for name in DATA})

"""Package discovery for the three source folders (the rest of the metadata is pyproject.toml).

``hardware/`` and ``datasets/`` install as ``neuro.hardware`` and ``neuro.datasets``
(``package-dir`` in pyproject.toml); every subfolder with an ``__init__.py`` is found here, so a
new one cannot be left out of a wheel.
"""
from setuptools import find_packages, setup

ROOTS = {"neuro": "neuro", "hardware": "neuro.hardware", "datasets": "neuro.datasets"}


def packages() -> list[str]:
    found = []
    for folder, name in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder)]
    return found


setup(packages=packages())

"""Package list for the folder mapping declared in pyproject.toml ([tool.setuptools] package-dir)."""
from setuptools import find_packages, setup

ROOTS = {
    "omnigraph": "omnigraph",
    "omnigraph.runtime": "runtime",
    "omnigraph.nodes": "nodes",
    "omnigraph.kernels": "kernels",
    "omnigraph.graphs": "graphs",
}

packages = []
for package, folder in ROOTS.items():
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(packages=packages)

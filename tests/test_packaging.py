"""One version, and pinned requirements inside pyproject's ranges."""

import os
import re

import pytest
import tomllib
from packaging.requirements import Requirement

import danet_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.backend_independent


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _pins(name):
    """`{package: version}` of a requirements file and the files it includes."""
    pins = {}
    with open(os.path.join(ROOT, name)) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line.startswith("-r "):
                pins.update(_pins(line[3:].strip()))
            elif line:
                requirement = Requirement(line)
                pins[requirement.name.lower()] = re.sub(r"^==", "", str(requirement.specifier))
    return pins


def test_the_version_has_one_source():
    assert "version" in _pyproject()["dynamic"] and re.fullmatch(r"\d+\.\d+\.\d+",
                                                               danet_tf.__version__)


def test_every_pin_is_inside_pyprojects_range():
    project = _pyproject()
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for extra in project["optional-dependencies"].values()
                 for r in extra]
    pins = _pins("requirements-dev.txt")
    for requirement in declared:
        name = requirement.name.lower()
        assert name in pins, f"{name} is declared in pyproject.toml but pinned nowhere"
        assert requirement.specifier.contains(pins[name]), (name, pins[name],
                                                            str(requirement.specifier))

"""pyproject.toml as current setuptools reads it: `make run` installs without
deprecation warnings (a TOML-table license is deprecated since setuptools 77)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())


def test_the_license_is_an_spdx_expression_for_a_setuptools_that_reads_one() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    floor = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert floor and int(floor.group(1)) >= 77
    assert not [c for c in PYPROJECT["project"].get("classifiers", []) if c.startswith("License ::")]


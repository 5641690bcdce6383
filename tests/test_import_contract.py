"""The import contract (.importlinter) places every module of feixian/: one left out would be free to import upwards."""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_feixian_module_sits_in_a_layer():
    contract = configparser.ConfigParser()
    contract.read(ROOT / ".importlinter", encoding="utf-8")
    layered = set(re.findall(r"feixian\.\w+", contract["importlinter:contract:layers"]["layers"]))
    modules = {f"feixian.{p.stem}" for p in (ROOT / "feixian").glob("*.py") if p.stem != "__init__"}
    assert modules - layered == set(), "add these to a layer in .importlinter"

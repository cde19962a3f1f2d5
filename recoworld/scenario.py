"""Scenario specs: YAML files (``envs/*.yaml``) parsed strictly into :class:`ScenarioConfig`.

A scenario is named either by a path to a YAML file or by the name of a shipped one
(``default``, ``retention``, ``social``, ...; ``recoworld envs`` lists them).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recoworld._config import from_mapping
from recoworld.config import ScenarioConfig
from recoworld.errors import ConfigError, ScenarioNotFoundError

__all__ = ["ScenarioInfo", "list_scenarios", "load_scenario", "parse_scenario", "scenario_dir"]


def scenario_dir() -> Path:
    """Folder of the shipped scenarios: inside the installed wheel, or ``envs/`` of a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_scenarios"
    if packaged.is_dir():
        return packaged
    return here.parent / "envs"


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    name: str
    description: str
    path: Path


def list_scenarios() -> list[ScenarioInfo]:
    """The shipped scenarios, by name."""
    out = []
    for path in sorted(scenario_dir().glob("*.yaml")):
        cfg = load_scenario(path)
        out.append(ScenarioInfo(name=path.stem, description=cfg.description, path=path))
    return out


def parse_scenario(data: Mapping[str, Any], *, source: str = "scenario") -> ScenarioConfig:
    """Build a :class:`ScenarioConfig` from plain data; errors name ``source`` and the key."""
    try:
        return from_mapping(ScenarioConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text:
        if path.is_file():
            return path
        raise ScenarioNotFoundError(
            f"scenario file {text} does not exist; give a path to a YAML file or the name of a "
            "shipped scenario (see 'recoworld envs')"
        )
    shipped = scenario_dir() / f"{text}.yaml"
    if shipped.is_file():
        return shipped
    names = [p.stem for p in scenario_dir().glob("*.yaml")]
    close = difflib.get_close_matches(text, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ScenarioNotFoundError(
        f"no scenario named {text!r}.{hint} Shipped scenarios: {', '.join(sorted(names))}"
    )


def load_scenario(name_or_path: str | os.PathLike[str] = "default") -> ScenarioConfig:
    """Load a scenario by shipped name or YAML path, strictly validated."""
    path = _resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    if "name" not in data:  # a file name may hold characters a run id cannot
        data["name"] = "".join(c if c.isalnum() or c in "-_." else "-" for c in path.stem)
    return parse_scenario(data, source=str(path))

"""Personas: who an LLM-driven user is (demographics, interests, traits, a description).

A *persona pack* is a JSON Lines file, one persona per line, validated against
:data:`PERSONA_SCHEMA` (see ``personas/README.md``). Packs come from people (``personas/``), from
real histories (the data loaders), or are synthesized from a numeric population
(:func:`synthesize_personas`), so that an LLM user's persona agrees with the hidden taste and
traits the numeric model gives the same user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError

if TYPE_CHECKING:
    from recoworld.world.world import World

__all__ = [
    "LEVELS",
    "PERSONA_SCHEMA",
    "TRAITS",
    "Persona",
    "PersonaError",
    "load_persona_pack",
    "synthesize_personas",
]

#: Traits every persona carries, each in [0, 1] (the numeric model's trait columns).
TRAITS = ("activity", "conformity", "diversity", "patience", "sociability")
#: Agent4Rec's discrete levels (1–3) a persona built from a history may carry
#: (:mod:`recoworld.data.personas`); level 1 of ``conformity`` is Agent4Rec's "follower".
LEVELS = ("activity", "conformity", "diversity")

PERSONA_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "recoworld persona",
    "type": "object",
    "required": ["id", "interests", "traits", "description"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 1, "maximum": 120},
        "gender": {"type": "string"},
        "occupation": {"type": "string"},
        "location": {"type": "string"},
        "interests": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "dislikes": {"type": "array", "items": {"type": "string"}},
        "traits": {
            "type": "object",
            "additionalProperties": False,
            "required": list(TRAITS),
            "properties": {t: {"type": "number", "minimum": 0, "maximum": 1} for t in TRAITS},
        },
        "levels": {
            "type": "object",
            "additionalProperties": False,
            "properties": {t: {"type": "integer", "minimum": 1, "maximum": 3} for t in LEVELS},
        },
        "description": {"type": "string", "minLength": 1, "maxLength": 600},
        "tags": {"type": "array", "items": {"type": "string"}},
        "provenance": {"type": "object"},
    },
}


class PersonaError(ConfigError):
    """A persona pack that cannot be read: the file, line and what was expected."""


@dataclass(frozen=True, slots=True)
class Persona:
    """One simulated person (see :data:`PERSONA_SCHEMA` for the fields)."""

    id: str
    interests: tuple[str, ...]
    traits: dict[str, float]
    description: str
    name: str = ""
    age: int | None = None
    gender: str = ""
    occupation: str = ""
    location: str = ""
    dislikes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Persona:
        return cls(
            id=str(obj["id"]),
            interests=tuple(obj["interests"]),
            traits={t: float(obj["traits"][t]) for t in TRAITS},
            description=str(obj["description"]),
            name=str(obj.get("name", "")),
            age=obj.get("age"),
            gender=str(obj.get("gender", "")),
            occupation=str(obj.get("occupation", "")),
            location=str(obj.get("location", "")),
            dislikes=tuple(obj.get("dislikes", ())),
            tags=tuple(obj.get("tags", ())),
            provenance=dict(obj.get("provenance", {})),
            levels={t: int(v) for t, v in obj.get("levels", {}).items()},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        for key in ("name", "age", "gender", "occupation", "location"):
            value = getattr(self, key)
            if value not in ("", None):
                out[key] = value
        out["interests"] = list(self.interests)
        if self.dislikes:
            out["dislikes"] = list(self.dislikes)
        out["traits"] = {t: round(self.traits[t], 3) for t in TRAITS}
        if self.levels:
            out["levels"] = {t: int(self.levels[t]) for t in LEVELS if t in self.levels}
        out["description"] = self.description
        if self.tags:
            out["tags"] = list(self.tags)
        if self.provenance:
            out["provenance"] = self.provenance
        return out

    def render(self) -> str:
        """The persona as the prompt shows it: compact, most telling facts first."""
        who = ", ".join(
            str(v)
            for v in (
                self.name,
                f"{self.age}" if self.age is not None else "",
                self.gender,
                self.occupation,
                self.location,
            )
            if v
        )
        lines = [f"You are {who}." if who else "You are a user of a short-video app."]
        lines.append(f"You like: {', '.join(self.interests)}.")
        if self.dislikes:
            lines.append(f"You dislike: {', '.join(self.dislikes)}.")
        lines.append(_describe_traits(self.traits))
        lines.append(self.description)
        return "\n".join(lines)


def _describe_traits(traits: dict[str, float]) -> str:
    def level(value: float, low: str, mid: str, high: str) -> str:
        return low if value < 0.34 else high if value > 0.66 else mid

    return (
        "You are "
        + ", ".join(
            [
                level(traits["patience"], "impatient", "fairly patient", "very patient"),
                level(
                    traits["diversity"],
                    "focused on a few topics",
                    "open to some variety",
                    "curious about everything",
                ),
                level(
                    traits["conformity"],
                    "indifferent to what is popular",
                    "somewhat swayed by popularity",
                    "drawn to what is popular",
                ),
                level(
                    traits["sociability"],
                    "private (you rarely share)",
                    "an occasional sharer",
                    "social (you like sharing and commenting)",
                ),
            ]
        )
        + "."
    )


def load_persona_pack(path: str | Path) -> list[Persona]:
    """Read and validate a persona pack (JSON Lines; blank lines and ``#`` comments skipped).

    Raises :class:`PersonaError` naming the file, the line and what was expected.
    """
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - the llm extra brings it
        raise PersonaError(
            "reading persona packs needs jsonschema: pip install 'recoworld[llm]'"
        ) from exc
    path = Path(path)
    if not path.is_file():
        raise PersonaError(f"persona pack {path}: no such file")
    validator = jsonschema.Draft202012Validator(PERSONA_SCHEMA)
    personas: list[Persona] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PersonaError(
                f"{path}:{number}: expected one JSON object per line ({exc.msg})"
            ) from None
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = "/".join(str(p) for p in err.absolute_path) or "(the object)"
            raise PersonaError(f"{path}:{number}: {where}: {err.message}")
        if obj["id"] in seen:
            raise PersonaError(
                f"{path}:{number}: id {obj['id']!r} appears twice; ids must be unique"
            )
        seen.add(obj["id"])
        personas.append(Persona.from_json(obj))
    if not personas:
        raise PersonaError(f"{path}: the pack holds no persona")
    return personas


_NAMES = (
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gia", "Hiro", "Ines", "Jon", "Kai", "Lena",
    "Mateo", "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Yara",
)  # fmt: skip
_OCCUPATIONS = (
    "student", "nurse", "software developer", "teacher", "retail worker", "designer",
    "retired engineer", "chef", "accountant", "freelance writer", "bus driver", "researcher",
)  # fmt: skip


def synthesize_personas(
    world: World, users: NDArray[np.integer], rng: np.random.Generator
) -> list[Persona]:
    """Personas for ``users`` of a numeric population: interests are the topics the user's hidden
    taste leans to most, the disliked topic the one it leans from, traits its trait columns;
    name, age and occupation are drawn from ``rng`` (deterministic for a seed)."""
    pop, cat = world.population, world.catalog
    users = np.asarray(users, np.int64)
    names = cat.topic_names
    affinity = np.einsum("nd,td->nt", pop.taste[users], cat.topic_centroids)
    order = np.argsort(-affinity, axis=1, kind="stable")
    n = users.size
    name_pick = rng.integers(0, len(_NAMES), size=n)
    job_pick = rng.integers(0, len(_OCCUPATIONS), size=n)
    ages = rng.integers(16, 71, size=n)
    activity = np.clip(pop.activity[users] / (1.0 + pop.activity[users]), 0.0, 1.0)
    out = []
    for j, user in enumerate(users.tolist()):
        n_interests = 1 + int(pop.diversity[user] > 0.35) + int(pop.diversity[user] > 0.7)
        interests = tuple(names[t] for t in order[j, :n_interests])
        traits = {
            "activity": float(activity[j]),
            "conformity": float(pop.conformity[user]),
            "diversity": float(pop.diversity[user]),
            "patience": float(pop.patience[user]),
            "sociability": float(pop.sociability[user]),
        }
        job = _OCCUPATIONS[job_pick[j]]
        out.append(
            Persona(
                id=f"user-{user}",
                interests=interests,
                traits=traits,
                description=f"You came for {interests[0]}; you stay while it stays interesting.",
                name=_NAMES[name_pick[j]],
                age=int(ages[j]),
                occupation=job,
                dislikes=(names[int(order[j, -1])],),
                tags=("synthetic",),
                provenance={"source": "synthesized", "user": user},
            )
        )
    return out

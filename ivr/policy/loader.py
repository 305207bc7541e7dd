"""Reading the policy: YAML file, environment overrides, validation with messages that name the rule."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from ivr.policy.config import PolicySettings
from ivr.policy.schema import Policy, PolicyError

DEFAULT_POLICY_FILE = Path(__file__).with_name("default.yaml")


def load_policy(path: Path | str | None = None, overrides: Mapping[str, Any] | None = None) -> Policy:
    """The policy in ``path`` (default: the shipped one) with ``overrides`` merged in.

    Raises PolicyError, naming the file and the rule, when it cannot be used.
    """
    source = Path(path) if path is not None else DEFAULT_POLICY_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {source} does not exist (VOICEAUTH_POLICY__FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {source} cannot be read: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PolicyError(
            f"policy file {source} is not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(document, dict):
        raise PolicyError(f"policy file {source} must be a mapping with 'version' and 'rules'")
    if overrides:
        document = merge_overrides(document, overrides, source)
    return parse_policy(document, str(source))


def policy_from_settings(settings: PolicySettings) -> Policy:
    return load_policy(settings.file, settings.overrides)


def parse_policy(document: Mapping[str, Any], source: str = "policy") -> Policy:
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_explain(exc, document)}") from None


def merge_overrides(
    document: dict[str, Any], overrides: Mapping[str, Any], source: Path | str
) -> dict[str, Any]:
    """Top-level keys replace; ``rules`` given as a mapping patches the named rules (deeply)."""
    merged = copy.deepcopy(document)
    for key, value in overrides.items():
        if key == "rules" and isinstance(value, Mapping):
            rules = merged.get("rules")
            if not isinstance(rules, list):
                raise PolicyError(f"{source}: cannot patch rules by name: the file has no list of rules")
            by_name = {r.get("name"): r for r in rules if isinstance(r, dict)}
            for name, patch in value.items():
                if name not in by_name:
                    raise PolicyError(
                        f"policy override names rule {name!r}, which {source} does not have "
                        f"(rules: {', '.join(str(n) for n in by_name)})"
                    )
                if not isinstance(patch, Mapping):
                    raise PolicyError(f"policy override of rule {name!r} must be a mapping of fields")
                _deep_update(by_name[name], patch)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _deep_update(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _explain(exc: ValidationError, document: Mapping[str, Any]) -> str:
    rules = document.get("rules") if isinstance(document, Mapping) else None
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(p) for p in loc) or "policy"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(rules, list):
            index = loc[1]
            name = rules[index].get("name") if index < len(rules) and isinstance(rules[index], dict) else None
            rest = ".".join(str(p) for p in loc[2:])
            where = f"rule #{index + 1}" + (f" {name!r}" if name else "") + (f", {rest}" if rest else "")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)

"""``recoworld doctor``: what is installed — Python, recoworld and its core libraries, the
optional extras, the headless browser HTML reports use — whether the compiled kernels run, whether
a data folder holds a dataset, and whether a configured LLM endpoint answers (without ever
printing its key)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recoworld import __version__

__all__ = ["doctor_report", "format_report"]

#: The core libraries whose versions `recoworld doctor` prints (distribution names).
_CORE = ("numpy", "numba", "pandas", "pyarrow", "gymnasium", "pettingzoo")

#: Optional extras (pyproject's optional-dependencies) → (module, distribution) pairs they add.
_EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "llm": (("openai", "openai"), ("jsonschema", "jsonschema")),
    "rl": (("stable_baselines3", "stable-baselines3"), ("torch", "torch")),
    "rllib": (("ray", "ray"),),
    "mesa": (("mesa", "mesa"),),
    "ray": (("ray", "ray"),),
    "viz": (("matplotlib", "matplotlib"),),
    "minari": (("minari", "minari"), ("PIL", "pillow")),
    "docs": (("mkdocs", "mkdocs"), ("material", "mkdocs-material")),
}

#: The headless browser HTML reports are opened in.
_BROWSER = Path("/usr/bin/chromium")


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _installed(module: str) -> bool:
    """Whether ``module`` (top level) can be found, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _rllib_missing() -> list[str]:
    """Requirements of ``ray[rllib]`` that are not installed (or at a version it refuses)."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - packaging comes with pip and most tools
        return []
    missing = []
    for text in metadata.requires("ray") or []:
        req = Requirement(text)
        if req.marker is None or not req.marker.evaluate({"extra": "rllib"}):
            continue
        version = _version(req.name)
        if version is None:
            missing.append(req.name)
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req.name}{req.specifier} (installed {version})")
    return missing


def _check_extras() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for extra, parts in _EXTRAS.items():
        packages = {dist: _version(dist) for module, dist in parts if _installed(module)}
        missing = [dist for module, dist in parts if not _installed(module)]
        note = ""
        if extra == "rllib" and not missing:
            missing = _rllib_missing()
            if missing:
                note = (
                    "RLlib pins gymnasium 1.2.2: give it a venv of its own (benchmarks/ci/rllib.sh)"
                )
        out[extra] = {
            "available": not missing,
            "packages": packages,
            "missing": missing,
            "install": f"pip install 'recoworld[{extra}]'",
            "note": note,
        }
    return out


def _check_browser() -> dict[str, Any]:
    import os
    import shutil
    import subprocess

    path = str(_BROWSER) if os.access(_BROWSER, os.X_OK) else shutil.which("chromium")
    if path is None:
        return {
            "available": False,
            "path": None,
            "version": None,
            "note": f"HTML reports need a headless Chromium at {_BROWSER}",
        }
    try:
        proc = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=20, check=False
        )
        version = proc.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        version = None
    return {"available": True, "path": path, "version": version, "note": ""}


def _check_kernels() -> dict[str, Any]:
    """Compile (or load from numba's cache) and call one small kernel."""
    import time

    start = time.perf_counter()
    try:
        import numpy as np

        from recoworld import _kernels

        row = _kernels.first_repeat_row(np.array([[1, 2, 3], [4, 5, 4]], np.int64))
        if row != 1:
            raise RuntimeError(f"first_repeat_row returned {row}, expected 1")
    except Exception as exc:  # any failure of numba is the finding
        return {"ok": False, "seconds": time.perf_counter() - start, "error": _brief(exc)}
    return {"ok": True, "seconds": round(time.perf_counter() - start, 3), "error": None}


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_data(folder: Path) -> dict[str, Any]:
    from recoworld.data.loaders import detect_format
    from recoworld.errors import DatasetError

    out: dict[str, Any] = {"path": str(folder), "ok": False, "datasets": {}, "error": None}
    if not folder.is_dir():
        out["error"] = f"{folder}: no such folder"
        return out
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    for path in candidates:
        try:
            out["datasets"][path.name] = detect_format(path)
        except DatasetError:
            continue
        if path == folder:
            break  # the folder is one dataset
    if out["datasets"]:
        out["ok"] = True
    else:
        out["error"] = f"{folder}: no dataset folder in a known format (see docs/data.md)"
    return out


def _redact(url: str) -> str:
    """``url`` without any user:password part."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _check_endpoint(url: str, key: str | None, model: str, timeout: float) -> dict[str, Any]:
    """``GET {url}/models``: latency, the served model names, and whether ``model`` is one."""
    import time
    import urllib.error
    import urllib.request
    from urllib.parse import unquote, urlsplit

    shown = _redact(url)
    out: dict[str, Any] = {"url": shown, "ok": False, "latency_ms": None, "models": []}
    headers = {"Accept": "application/json"}
    parts = urlsplit(url)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    elif parts.username is not None:  # credentials in the URL: HTTP basic authentication
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    request = urllib.request.Request(f"{shown}/models", headers=headers, method="GET")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            body = reply.read()
    except urllib.error.HTTPError as exc:
        hint = " (is the API key in the environment variable llm.client.api_key_env names?)"
        out["error"] = f"HTTP {exc.code} {exc.reason}" + (hint if exc.code in (401, 403) else "")
        return out
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        out["error"] = f"does not answer: {reason}"
        return out
    out["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    try:
        data = json.loads(body)
        out["models"] = [str(m["id"]) for m in data.get("data", [])]
    except (ValueError, TypeError, KeyError, AttributeError):
        out["error"] = "answered, but not with an OpenAI model list (is the URL the …/v1 one?)"
        return out
    if model and out["models"] and model not in out["models"]:
        out["error"] = f"does not serve model {model!r} (serves: {', '.join(out['models'])})"
        return out
    out["ok"] = True
    out["error"] = None
    return out


def _llm_target(
    scenario: str | None, base_urls: Sequence[str], model: str | None
) -> tuple[list[str], str, str | None]:
    """Endpoints, model and API key to check: the flags, else the scenario's ``llm.client``,
    else ``OPENAI_BASE_URL`` / ``OPENAI_MODEL``; no endpoint configured: ``[]``."""
    import os
    from dataclasses import replace

    from recoworld.llm.config import LLMConfig

    config = LLMConfig()
    if scenario:
        from recoworld.scenario import load_scenario

        config = load_scenario(scenario).llm.client
    if base_urls:
        config = replace(config, base_urls=tuple(base_urls))
    if model:
        config = replace(config, model=model)
    config = config.with_environment()
    if not config.base_urls:
        return [], config.model, None
    return list(config.endpoints()), config.model, os.environ.get(config.api_key_env)


def doctor_report(
    *,
    scenario: str | None = None,
    data_dir: Path | None = None,
    llm_base_urls: Sequence[str] = (),
    llm_model: str | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """What ``recoworld doctor`` checks, as one JSON-ready dict (``ok``: everything asked for
    works; ``problems``: what does not)."""
    import platform
    import sys as _sys

    report: dict[str, Any] = {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": _sys.executable,
        },
        "packages": {"recoworld": __version__, **{name: _version(name) for name in _CORE}},
        "extras": _check_extras(),
        "browser": _check_browser(),
        "kernels": _check_kernels(),
        "data": None,
        "llm": None,
    }
    if data_dir is None and scenario:
        from recoworld.scenario import load_scenario

        dataset = load_scenario(scenario).world.dataset
        if dataset:
            data_dir = Path(dataset)
    if data_dir is not None:
        report["data"] = _check_data(data_dir)
    urls, model, key = _llm_target(scenario, llm_base_urls, llm_model)
    if urls:
        report["llm"] = {
            "model": model or None,
            "endpoints": [_check_endpoint(url, key, model, timeout) for url in urls],
        }
    problems = []
    if not report["kernels"]["ok"]:
        problems.append(f"compiled kernels: {report['kernels']['error']}")
    if report["data"] is not None and not report["data"]["ok"]:
        problems.append(f"data: {report['data']['error']}")
    for endpoint in (report["llm"] or {}).get("endpoints", []):
        if not endpoint["ok"]:
            problems.append(f"LLM endpoint {endpoint['url']}: {endpoint['error']}")
    report["problems"] = problems
    report["ok"] = not problems
    return report


def format_report(report: dict[str, Any]) -> str:
    """:func:`doctor_report` as the text ``recoworld doctor`` prints."""
    py = report["python"]
    lines = ["recoworld doctor", ""]
    lines.append(f"  {'python':<12} {py['version']} ({py['implementation']}) {py['executable']}")
    for name, version in report["packages"].items():
        lines.append(f"  {name:<12} {version or 'not installed'}")
    lines += ["", "optional extras (pip install 'recoworld[NAME]'):"]
    for extra, info in report["extras"].items():
        found = ", ".join(f"{d} {v}" for d, v in info["packages"].items())
        if info["available"]:
            detail = found
        else:
            detail = f"missing {', '.join(info['missing'])}; {info['install']}"
            if info["note"]:
                detail += f" — {info['note']}"
        lines.append(f"  {extra:<12} {'yes' if info['available'] else 'no':<4} {detail}")
    browser = report["browser"]
    if browser["available"]:
        detail = f"{browser['path']} ({browser['version'] or 'version unknown'})"
    else:
        detail = browser["note"]
    state = "yes" if browser["available"] else "no"
    lines.append(f"  {'browser':<12} {state:<4} {detail}, for HTML reports")
    kernels = report["kernels"]
    lines.append("")
    if kernels["ok"]:
        lines.append(
            f"kernels: ok (numba compiled or loaded and ran one in {kernels['seconds']} s)"
        )
    else:
        lines.append(f"kernels: FAILED — {kernels['error']}")
    data = report["data"]
    if data is None:
        lines.append("data: no data folder given (--data-dir)")
    elif data["ok"]:
        found = ", ".join(f"{name} ({fmt})" for name, fmt in data["datasets"].items())
        lines.append(f"data: {data['path']}: {found}")
    else:
        lines.append(f"data: FAILED — {data['error']}")
    llm = report["llm"]
    if llm is None:
        lines.append(
            "LLM: no endpoint configured (--llm-base-url, a scenario's llm, OPENAI_BASE_URL)"
        )
    else:
        for endpoint in llm["endpoints"]:
            if endpoint["ok"]:
                served = ", ".join(endpoint["models"]) or "none listed"
                lines.append(
                    f"LLM: {endpoint['url']} answered in {endpoint['latency_ms']} ms; "
                    f"models: {served}"
                )
            else:
                lines.append(f"LLM: {endpoint['url']} FAILED — {endpoint['error']}")
    lines.append("")
    lines.append("everything asked for works" if report["ok"] else "problems found:")
    lines += [f"  - {problem}" for problem in report["problems"]]
    return "\n".join(lines)

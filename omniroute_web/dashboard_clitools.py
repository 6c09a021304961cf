"""The CLI tools page: how each coding agent is set up against this gateway, and writing that set-up.

    GET  /api/cli-tools?base_url=&model=    every tool: files (path + the part we manage), env lines, settings
    POST /api/cli-tools/{id}/apply          {base_url, model, key} -> write the tool's files (admin only)

Recipes follow what each tool accepted in our offline runs (shared/reference/clients.md). The key shown by
GET is a placeholder (the server never knows a client key in plaintext); the page substitutes the key the
user typed or just minted. Apply merges our settings into the existing file — other settings stay — after
copying the old file to `<file>.omniroute-backup-<UTC time>`; files holding a key are written 0600.
A file we cannot parse (JSON with comments, say) is left alone with a message saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from omniroute import InvalidRequestError, JsonObj, NotFoundError
from omniroute_web.messages import read_json, send_json
from omniroute_web.server import Request, Responder

if TYPE_CHECKING:
    from omniroute_web.app import Gateway

Params = dict[str, str]
NO_STORE = [("cache-control", "no-store"), ("x-content-type-options", "nosniff")]
KEY_PLACEHOLDER = "{{OMNIROUTE_KEY}}"
PROVIDER_ID = "omniroute"  # the name our entry gets in each tool's config
KEY_ENV = "OMNIROUTE_API_KEY"
_MODEL_OK = re.compile(r"^[A-Za-z0-9._:/@+\-]{1,200}$")
_KEY_OK = re.compile(r"^[A-Za-z0-9_\-.]{8,256}$")


@dataclass(slots=True)
class ToolFile:
    path: str  # absolute
    content: str  # what we write (JSON/TOML/env fragment), KEY_PLACEHOLDER where the key goes
    syntax: str  # json | toml | env | yaml
    merge: Callable[[str | None, str], str] | None = None  # (old text or None, our text) -> new text


@dataclass(slots=True)
class Tool:
    id: str
    name: str
    binary: str | None  # to tell the user whether it is installed here
    files: list[ToolFile] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)  # (label key, value) typed into a UI
    run: str = ""
    applicable: bool = False  # True when "apply" can write the files here


# ----------------------------------------------------------------------------------------------------------
# where each tool keeps its config
# ----------------------------------------------------------------------------------------------------------


def _home() -> str:
    return os.path.expanduser("~")


def _xdg_config() -> str:
    return os.environ.get("XDG_CONFIG_HOME") or os.path.join(_home(), ".config")


def _vscode_user_dir() -> str:
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", "Code", "User")
    if sys.platform.startswith("win"):
        return os.path.join(os.environ.get("APPDATA") or _home(), "Code", "User")
    return os.path.join(_xdg_config(), "Code", "User")


# ----------------------------------------------------------------------------------------------------------
# merging into existing files
# ----------------------------------------------------------------------------------------------------------


def _load_json(old: str | None, expect: type) -> Any:
    if old is None or not old.strip():
        return expect()
    try:
        value = json.loads(old)
    except ValueError:
        raise InvalidRequestError(
            "the existing file is not plain JSON (comments or trailing commas?); it was left alone — "
            "copy the snippet in by hand"
        ) from None
    if not isinstance(value, expect):
        raise InvalidRequestError("the existing file has an unexpected shape; it was left alone")
    return value


def deep_merge(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in ours.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def merge_json(old: str | None, ours: str) -> str:
    return json.dumps(deep_merge(_load_json(old, dict), json.loads(ours)), indent=2) + "\n"


def merge_json_array_by_name(old: str | None, ours: str) -> str:
    """chatLanguageModels.json: a list of provider groups; ours replaces the group with the same name."""
    entries = _load_json(old, list)
    mine = json.loads(ours)
    names = {e.get("name") for e in mine}
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") in names)]
    return json.dumps(kept + mine, indent=2) + "\n"


_TOML_TABLE = re.compile(r"^\s*\[")
_OUR_TOML_TABLE = re.compile(r'^\s*\[\s*model_providers\s*\.\s*"?' + PROVIDER_ID + r'"?\s*\]\s*(#.*)?$')
_OUR_TOML_KEYS = re.compile(r"^\s*(model|model_provider)\s*=")


def merge_codex_toml(old: str | None, ours: str) -> str:
    """Replace our top-level keys and our [model_providers.omniroute] table; keep every other line."""
    lines = (old or "").splitlines()
    first_table = next((i for i, line in enumerate(lines) if _TOML_TABLE.match(line)), len(lines))
    top = [line for line in lines[:first_table] if not _OUR_TOML_KEYS.match(line)]
    rest: list[str] = []
    skipping = False
    for line in lines[first_table:]:
        if _TOML_TABLE.match(line):
            skipping = _OUR_TOML_TABLE.match(line) is not None
        if not skipping:
            rest.append(line)
    ours_top, _, ours_table = ours.partition("\n\n")
    while top and not top[0].strip():
        top.pop(0)
    while rest and not rest[-1].strip():
        rest.pop()
    parts = [ours_top.rstrip("\n"), *top, *rest]
    return "\n".join(parts).rstrip("\n") + "\n\n" + ours_table.strip("\n") + "\n"


def merge_env(old: str | None, ours: str) -> str:
    """A .env file: our NAME=value lines replace lines for the same names (with or without `export`)."""
    names = {line.split("=", 1)[0] for line in ours.splitlines() if "=" in line}
    kept = [
        line
        for line in (old or "").splitlines()
        if line.strip().removeprefix("export ").split("=", 1)[0].strip() not in names
    ]
    return "\n".join([*kept, *ours.splitlines()]).strip("\n") + "\n"


# ----------------------------------------------------------------------------------------------------------
# the recipes
# ----------------------------------------------------------------------------------------------------------


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def _json(value: object) -> str:
    return json.dumps(value, indent=2)


def tools(base_url: str, model: str) -> list[Tool]:
    gw = base_url.rstrip("/")
    v1 = gw + "/v1"
    key = KEY_PLACEHOLDER
    home = _home()
    claude_dir = os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(home, ".claude")
    codex_dir = os.environ.get("CODEX_HOME") or os.path.join(home, ".codex")
    out: list[Tool] = []

    claude_env = {
        "ANTHROPIC_BASE_URL": gw,  # no /v1: Claude Code appends /v1/messages itself
        "ANTHROPIC_AUTH_TOKEN": key,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    out.append(
        Tool(
            "claude-code",
            "Claude Code",
            "claude",
            files=[
                ToolFile(
                    os.path.join(claude_dir, "settings.json"), _json({"env": claude_env}), "json", merge_json
                )
            ],
            env=list(claude_env.items()),
            run='claude -p "hello"',
            applicable=True,
        )
    )

    codex_top = f"model = {_toml_str(model)}\nmodel_provider = {_toml_str(PROVIDER_ID)}"
    codex_table = "\n".join(
        [
            f"[model_providers.{PROVIDER_ID}]",
            'name = "OmniRoute"',
            f"base_url = {_toml_str(v1)}",
            f"env_key = {_toml_str(KEY_ENV)}",
            'wire_api = "responses"  # the only value Codex accepts for custom providers',
        ]
    )
    out.append(
        Tool(
            "codex",
            "Codex CLI",
            "codex",
            files=[
                ToolFile(
                    os.path.join(codex_dir, "config.toml"),
                    f"{codex_top}\n\n{codex_table}",
                    "toml",
                    merge_codex_toml,
                )
            ],
            env=[(KEY_ENV, key)],
            run='codex exec --skip-git-repo-check "hello" </dev/null',
            applicable=True,
        )
    )

    gemini_env = [("GOOGLE_GEMINI_BASE_URL", gw), ("GEMINI_API_KEY", key), ("GEMINI_MODEL", model)]
    out.append(
        Tool(
            "gemini-cli",
            "Gemini CLI",
            "gemini",
            files=[
                ToolFile(
                    os.path.join(home, ".gemini", "settings.json"),
                    _json({"security": {"auth": {"selectedType": "gemini-api-key"}}}),
                    "json",
                    merge_json,
                ),
                ToolFile(
                    os.path.join(home, ".gemini", ".env"),
                    "\n".join(f"{k}={v}" for k, v in gemini_env),
                    "env",
                    merge_env,
                ),
            ],
            env=gemini_env,
            run=f'gemini -m {model} -p "hello"',
            applicable=True,
        )
    )

    opencode = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            PROVIDER_ID: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "OmniRoute",
                "options": {"baseURL": v1, "apiKey": key},
                "models": {model: {"name": model}},
            }
        },
        "model": f"{PROVIDER_ID}/{model}",
        "small_model": f"{PROVIDER_ID}/{model}",
    }
    out.append(
        Tool(
            "opencode",
            "opencode",
            "opencode",
            files=[
                ToolFile(
                    os.path.join(_xdg_config(), "opencode", "opencode.json"),
                    _json(opencode),
                    "json",
                    merge_json,
                )
            ],
            run=f'opencode run -m {PROVIDER_ID}/{model} "hello"',
            applicable=True,
        )
    )

    out.append(
        Tool(
            "cline",
            "Cline / Roo Code / Kilo Code",
            None,
            settings=[
                ("cli.field.api_provider", "OpenAI Compatible"),
                ("cli.field.base_url", v1),
                ("cli.field.api_key", key),
                ("cli.field.model_id", model),
            ],
        )
    )

    continue_yaml = "\n".join(
        [
            "name: omniroute",
            "version: 0.0.1",
            "schema: v1",
            "models:",
            "  - name: OmniRoute",
            "    provider: openai",
            f"    model: {json.dumps(model)}",
            f"    apiBase: {json.dumps(v1)}",
            f"    apiKey: {json.dumps(key)}",
            "    roles: [chat, edit, apply]",
        ]
    )
    out.append(
        Tool(
            "continue",
            "Continue",
            None,
            files=[ToolFile(os.path.join(home, ".continue", "config.yaml"), continue_yaml, "yaml")],
        )
    )

    out.append(
        Tool(
            "cursor",
            "Cursor",
            None,
            settings=[
                ("cli.field.openai_key", key),
                ("cli.field.override_base_url", v1),
                ("cli.field.model_id", model),
            ],
        )
    )

    openclaw = {
        "models": {
            "mode": "merge",
            "providers": {
                PROVIDER_ID: {
                    "baseUrl": v1,
                    "apiKey": key,
                    "api": "openai-completions",
                    "models": [{"id": model, "name": model}],
                }
            },
        },
        "agents": {"defaults": {"model": {"primary": f"{PROVIDER_ID}/{model}"}}},
    }
    out.append(
        Tool(
            "openclaw",
            "OpenClaw",
            "openclaw",
            files=[
                ToolFile(
                    os.path.join(home, ".openclaw", "openclaw.json"), _json(openclaw), "json", merge_json
                )
            ],
            applicable=True,
        )
    )

    copilot = [
        {
            "name": "OmniRoute",
            "vendor": "customendpoint",
            "apiKey": key,
            "apiType": "chat-completions",
            "models": [
                {
                    "id": model,
                    "name": f"{model} (OmniRoute)",
                    "url": v1 + "/chat/completions",
                    "toolCalling": True,
                    "vision": True,
                    "maxInputTokens": 128000,
                    "maxOutputTokens": 16000,
                }
            ],
        }
    ]
    out.append(
        Tool(
            "copilot",
            "GitHub Copilot (VS Code)",
            "code",
            files=[
                ToolFile(
                    os.path.join(_vscode_user_dir(), "chatLanguageModels.json"),
                    _json(copilot),
                    "json",
                    merge_json_array_by_name,
                )
            ],
            applicable=True,
        )
    )
    return out


# ----------------------------------------------------------------------------------------------------------
# endpoints
# ----------------------------------------------------------------------------------------------------------


def _display_path(path: str) -> str:
    home = _home()
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


def _check_inputs(gw: Gateway, base_url: str | None, model: str | None) -> tuple[str, str]:
    from omniroute_providers.manage import check_base_url

    host = gw.settings.host if gw.settings.host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - display only
    port = gw.server.ports[0] if gw.server.ports else gw.settings.port
    if base_url and any(c.isspace() or ord(c) < 32 for c in base_url):
        # urlsplit ignores tabs and newlines, so check_base_url alone would let one into a .env or TOML line
        raise InvalidRequestError("base_url must not contain spaces or control characters", param="base_url")
    url = check_base_url(base_url) if base_url else f"http://{host}:{port}"
    model = (
        (model or "").strip() or str(getattr(gw.settings, "default_model", "") or "") or "openai/gpt-4o-mini"
    )
    if not _MODEL_OK.match(model):
        raise InvalidRequestError("model: letters, digits and . _ : / @ + - only", param="model")
    return url, model


def describe(tool: Tool) -> JsonObj:
    return {
        "id": tool.id,
        "name": tool.name,
        "installed": bool(tool.binary and shutil.which(tool.binary)),
        "applicable": tool.applicable,
        "files": [
            {
                "path": _display_path(f.path),
                "content": f.content,
                "syntax": f.syntax,
                "merge": f.merge is not None,
            }
            for f in tool.files
        ],
        "env": [{"name": k, "value": v} for k, v in tool.env],
        "settings": [{"label": k, "value": v} for k, v in tool.settings],
        "run": tool.run,
        "key_placeholder": KEY_PLACEHOLDER,
    }


async def list_tools(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    url, model = _check_inputs(gw, request.query.get("base_url"), request.query.get("model"))
    await send_json(
        responder,
        200,
        {"base_url": url, "model": model, "tools": [describe(t) for t in tools(url, model)]},
        NO_STORE,
    )


def write_files(tool: Tool, key: str, now: float | None = None) -> JsonObj:
    """Merge each file and write it; the old one is copied aside first. Returns what was written."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    plans: list[tuple[str, str]] = []
    for f in tool.files:
        ours = f.content.replace(KEY_PLACEHOLDER, key)
        old = None
        if os.path.exists(f.path):
            with open(f.path, encoding="utf-8") as fh:
                old = fh.read()
        assert f.merge is not None  # noqa: S101 - only applicable tools reach here, and theirs all merge
        plans.append((f.path, f.merge(old, ours)))  # every file is checked before any is written
    written, backups = [], []
    for path, text in plans:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if os.path.exists(path):
            backup = f"{path}.omniroute-backup-{stamp}"
            shutil.copy2(path, backup)
            backups.append(_display_path(backup))
        tmp = f"{path}.omniroute-tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        written.append(_display_path(path))
    return {"ok": True, "written": written, "backups": backups}


async def apply_tool(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    body = await read_json(request, 64 * 1024)
    url, model = _check_inputs(gw, body.get("base_url"), body.get("model"))
    key = str(body.get("key") or "")
    if not _KEY_OK.match(key):
        raise InvalidRequestError("key: paste a client key (omr_...) to write into the config", param="key")
    tool = next((t for t in tools(url, model) if t.id == params["id"]), None)
    if tool is None:
        raise NotFoundError(f"no CLI tool {params['id']!r}")
    if not tool.applicable:
        raise InvalidRequestError(
            f"{tool.name} is set up in its own settings screen; copy the values instead"
        )
    result = await trio.to_thread.run_sync(write_files, tool, key)
    await send_json(responder, 200, result, NO_STORE)

"""The packaged provider catalog is valid data, and its loader behaves as routing and renderers expect."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing
import zipfile
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import omniroute_providers.catalog as catalog_module
from omniroute_providers.catalog import (
    AUTH_KINDS,
    CATEGORIES,
    MODEL_RULES,
    Catalog,
    CatalogError,
    custom_provider,
    is_loopback_url,
    load_catalog,
    parse_catalog,
)
from omniroute_providers.ir import FORMATS, TargetCaps

ROOT = Path(__file__).resolve().parent.parent

# Every provider the catalog promises: id -> (alias, format).
REQUIRED = {
    "openai": ("openai", "openai-chat"),
    "deepseek": ("ds", "openai-chat"),
    "groq": ("groq", "openai-chat"),
    "xai": ("xai", "openai-chat"),
    "mistral": ("mistral", "openai-chat"),
    "nvidia": ("nvidia", "openai-chat"),
    "openrouter": ("openrouter", "openai-chat"),
    "zai": ("zai", "openai-chat"),
    "minimax": ("minimax", "openai-chat"),
    "kimi": ("moonshot", "openai-chat"),
    "together": ("together", "openai-chat"),
    "fireworks": ("fireworks", "openai-chat"),
    "cerebras": ("cerebras", "openai-chat"),
    "sambanova": ("samba", "openai-chat"),
    "perplexity": ("pplx", "openai-chat"),
    "alibaba": ("ali", "openai-chat"),
    "siliconflow": ("siliconflow", "openai-chat"),
    "hyperbolic": ("hyp", "openai-chat"),
    "nebius": ("nebius", "openai-chat"),
    "novita": ("novita", "openai-chat"),
    "chutes": ("chutes", "openai-chat"),
    "ollama": ("ollama", "openai-chat"),
    "lm-studio": ("lmstudio", "openai-chat"),
    "vllm": ("vllm", "openai-chat"),
    "llama-cpp": ("llamacpp", "openai-chat"),
    "anthropic": ("anthropic", "anthropic"),
    "gemini": ("gemini", "gemini"),
    "openai-responses": ("openai-responses", "openai-responses"),
    "zai-anthropic": ("glm", "anthropic"),
    "minimax-anthropic": ("minimax-anthropic", "anthropic"),
    "kimi-coding": ("kmc", "anthropic"),
    "echo": ("echo", "openai-chat"),
}
LOCAL_DEFAULTS = {
    "ollama": "http://127.0.0.1:11434/v1",
    "lm-studio": "http://127.0.0.1:1234/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "llama-cpp": "http://127.0.0.1:8080/v1",
}
PROVIDER_KEYS = {
    "id", "alias", "name", "format", "base_url", "auth", "headers", "category", "local",
    "passthrough_models", "key_optional", "deprecated", "caps", "docs_url", "notes", "models",
}  # fmt: skip
MODEL_KEYS = {"id", "name", "context_window", "max_output_tokens", "caps", "aliases", "free"}
PRICE_KEYS = {"input", "output", "cached_input", "cache_write", "reasoning"}


def _raw_json() -> dict[str, typing.Any]:
    text = resources.files("omniroute_providers").joinpath("catalog.json").read_text("utf-8")

    def no_duplicates(pairs: list[tuple[str, typing.Any]]) -> dict[str, typing.Any]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys in catalog.json: {keys}"
        return dict(pairs)

    return json.loads(text, object_pairs_hook=no_duplicates)  # type: ignore[no-any-return]


RAW = _raw_json()
RAW_PROVIDERS: list[dict[str, typing.Any]] = RAW["providers"]


def _provider_params() -> list[typing.Any]:
    return [pytest.param(p, id=p["id"]) for p in RAW_PROVIDERS]


def _caps_sources() -> list[typing.Any]:
    out = []
    for p in RAW_PROVIDERS:
        out.append(pytest.param(p["caps"], id=f"{p['id']}"))
        out.extend(pytest.param(m["caps"], id=f"{p['id']}/{m['id']}") for m in p["models"])
    out.extend(pytest.param(dict(caps), id=f"rule:{pattern}") for pattern, _, caps in MODEL_RULES)
    return out


def _minimal(**overrides: typing.Any) -> dict[str, typing.Any]:
    provider = {
        "id": "acme",
        "alias": "acme",
        "name": "Acme",
        "format": "openai-chat",
        "base_url": "https://api.acme.test/v1",
        "auth": "bearer",
        "models": [{"id": "acme-1", "name": "Acme 1", "max_output_tokens": 4096}],
    }
    provider.update(overrides)
    return provider


# ----------------------------------------------------------------------------------------------------------
# the packaged data
# ----------------------------------------------------------------------------------------------------------


def test_packaged_catalog_loads_once_per_process() -> None:
    first = load_catalog()
    assert isinstance(first, Catalog)
    assert load_catalog() is first
    assert list(first.providers) == [p["id"] for p in RAW_PROVIDERS]


def test_every_promised_provider_is_present_with_its_alias_and_format() -> None:
    catalog = load_catalog()
    for pid, (alias, fmt) in REQUIRED.items():
        spec = catalog.provider(pid)
        assert spec is not None, pid
        assert (spec.alias, spec.format) == (alias, fmt), pid
        assert catalog.provider(alias) is spec


def test_ids_and_aliases_are_unique_and_no_alias_names_another_provider() -> None:
    ids = [p["id"] for p in RAW_PROVIDERS]
    assert len(ids) == len(set(ids))
    owners: dict[str, str] = {}
    for p in RAW_PROVIDERS:
        for name in {p["id"], p["alias"]}:
            assert owners.setdefault(name, p["id"]) == p["id"], f"{name!r} names two providers"


@pytest.mark.parametrize("provider", _provider_params())
def test_provider_entry_has_exactly_the_documented_keys(provider: dict[str, typing.Any]) -> None:
    assert set(provider) == PROVIDER_KEYS
    assert provider["format"] in FORMATS
    assert provider["auth"] in AUTH_KINDS
    assert provider["category"] in CATEGORIES
    for model in provider["models"]:
        assert set(model) - {"price"} == MODEL_KEYS, model["id"]
        if "price" in model:
            assert set(model["price"]) == PRICE_KEYS, model["id"]


@pytest.mark.parametrize("provider", _provider_params())
def test_base_url_is_a_bare_origin_and_path_without_endpoint(provider: dict[str, typing.Any]) -> None:
    url = provider["base_url"]
    if provider["category"] == "builtin":
        assert url.startswith("builtin:")
        return
    parts = urlsplit(url)
    assert parts.scheme == ("http" if provider["local"] else "https"), url
    assert parts.hostname
    assert not url.endswith("/")
    assert not (parts.query)
    assert not (parts.fragment)
    for endpoint in ("/chat/completions", "/messages", "/responses", ":generateContent", "/models"):
        assert endpoint not in parts.path, url


@pytest.mark.parametrize("provider", [p for p in _provider_params() if p.values[0]["local"]])
def test_local_providers_point_at_loopback_and_need_no_key(provider: dict[str, typing.Any]) -> None:
    assert is_loopback_url(provider["base_url"])
    assert provider["base_url"] == LOCAL_DEFAULTS[provider["id"]]
    assert (provider["category"], provider["auth"]) == ("local", "none")
    assert provider["key_optional"]
    assert provider["passthrough_models"]


def test_echo_is_builtin_free_and_keyless() -> None:
    echo = load_catalog().provider("echo")
    assert echo is not None
    assert (echo.category, echo.base_url, echo.auth) == ("builtin", "builtin:echo", "none")
    model = echo.model("echo")
    assert model is not None
    assert model.free
    assert model.price is not None
    assert (model.price.input, model.price.output) == (0, 0)


@pytest.mark.parametrize("provider", _provider_params())
def test_prices_are_non_negative_and_unpriced_models_are_explained(provider: dict[str, typing.Any]) -> None:
    for model in provider["models"]:
        price = model.get("price")
        if price is None:
            notes = provider["notes"].lower()
            assert any(word in notes for word in ("price", "billed", "cost")), model["id"]
            continue
        for key, value in price.items():
            assert value is None or (isinstance(value, (int, float)) and value >= 0), (model["id"], key)
        assert price["input"] is not None
        assert price["output"] is not None
        if model["free"]:
            assert price["input"] == price["output"] == 0


@pytest.mark.parametrize("caps", _caps_sources())
def test_caps_keys_are_target_caps_fields_with_values_of_their_type(caps: dict[str, object]) -> None:
    fields = {f.name: f for f in dataclasses.fields(TargetCaps)}
    hints = typing.get_type_hints(TargetCaps)
    for key, value in caps.items():
        assert key in fields, key
        default = fields[key].default
        if typing.get_origin(hints[key]) is typing.Literal:
            assert value in typing.get_args(hints[key]), (key, value)
        elif default is None:
            assert value is None or (isinstance(value, int) and not isinstance(value, bool)), (key, value)
        else:
            assert type(value) is type(default), (key, value)


def test_every_listed_model_resolves_to_caps() -> None:
    catalog = load_catalog()
    for spec in catalog.providers.values():
        for model in spec.models:
            caps = catalog.caps_for(spec, model.id)
            assert isinstance(caps, TargetCaps)
            assert caps.max_output_tokens == model.caps.get("max_output_tokens", model.max_output_tokens)
            assert catalog.caps_for(spec, model.id) is caps  # memoised


# ----------------------------------------------------------------------------------------------------------
# lookups and caps
# ----------------------------------------------------------------------------------------------------------


def test_provider_lookup_accepts_id_alias_and_any_case() -> None:
    catalog = load_catalog()
    assert catalog.provider("ds") is catalog.provider("deepseek") is catalog.provider("DeepSeek")
    assert catalog.provider("glm") is catalog.provider("zai-anthropic")
    assert catalog.provider("no-such-provider") is None


def test_model_lookup_accepts_aliases() -> None:
    anthropic = load_catalog().provider("anthropic")
    assert anthropic is not None
    haiku = anthropic.model("claude-haiku-4-5-20251001")
    assert haiku is not None
    assert haiku.id == "claude-haiku-4-5"
    assert anthropic.model("gpt-5.5") is None


def test_bare_model_lists_every_provider_that_serves_it() -> None:
    catalog = load_catalog()
    hits = catalog.find_bare_model("gpt-5.5")
    assert {spec.id for spec, _ in hits} == {"openai", "openai-responses"}
    assert all(model.id == "gpt-5.5" for _, model in hits)
    assert [spec.id for spec, _ in catalog.find_bare_model("deepseek-v4-flash")] == ["deepseek"]
    assert catalog.find_bare_model("no-such-model") == []


def test_gemini_3_thinks_in_levels_and_2_5_in_budgets_even_when_unlisted() -> None:
    catalog = load_catalog()
    gemini = catalog.provider("gemini")
    assert gemini is not None
    assert catalog.caps_for(gemini, "gemini-3.8-flash").thinking_style == "level"
    assert catalog.caps_for(gemini, "gemini-3.9-ultra-preview").thinking_style == "level"
    assert catalog.caps_for(gemini, "gemini-2.5-pro").thinking_style == "budget"
    openrouter = catalog.provider("openrouter")
    assert openrouter is not None  # the rule is for Gemini's own format, not OpenAI-compatible hosts
    assert catalog.caps_for(openrouter, "google/gemini-3.5-flash").thinking_style != "level"


def test_claude_on_an_anthropic_compatible_node_gets_cache_control() -> None:
    catalog = load_catalog()
    node = custom_provider("my-claude", "My Claude", "anthropic", "https://claude.example.com/v1", {})
    assert catalog.caps_for(node, "claude-sonnet-5-5").cache_control
    assert not catalog.caps_for(node, "glm-5.3").cache_control
    chat = custom_provider("my-chat", "My Chat", "openai-chat", "https://chat.example.com/v1", {})
    assert not catalog.caps_for(chat, "claude-sonnet-5-5").cache_control


def test_provider_quirks_reach_the_renderers() -> None:
    catalog = load_catalog()

    def caps(provider: str, model: str) -> TargetCaps:
        spec = catalog.provider(provider)
        assert spec is not None
        return catalog.caps_for(spec, model)

    assert caps("openai", "gpt-6-luna").max_tokens_field == "max_completion_tokens"
    assert caps("deepseek", "deepseek-v4-pro").reasoning_content_replay
    assert caps("kimi", "kimi-k3").reasoning_content_replay
    assert caps("minimax", "MiniMax-M3").think_tags
    assert caps("hyperbolic", "deepseek-ai/DeepSeek-R1-0528").think_tags
    assert caps("ollama", "qwen3:32b").think_tags
    assert caps("anthropic", "claude-opus-5-5").cache_control
    assert not caps("groq", "openai/gpt-oss-120b").think_tags


def test_model_caps_beat_provider_caps_which_beat_name_rules() -> None:
    doc = {
        "version": 1,
        "providers": [
            _minimal(
                format="anthropic",
                caps={"cache_control": False, "think_tags": True},
                models=[
                    {"id": "claude-x", "name": "X"},
                    {"id": "claude-y", "name": "Y", "caps": {"cache_control": True, "think_tags": False}},
                ],
            )
        ],
    }
    catalog = parse_catalog(doc)
    acme = catalog.provider("acme")
    assert acme is not None
    x, y = catalog.caps_for(acme, "claude-x"), catalog.caps_for(acme, "claude-y")
    assert (x.cache_control, x.think_tags) == (False, True)
    assert (y.cache_control, y.think_tags) == (True, False)


def test_default_max_tokens_never_exceeds_what_the_model_can_write() -> None:
    catalog = parse_catalog({"version": 1, "providers": [_minimal()]})
    acme = catalog.provider("acme")
    assert acme is not None
    caps = catalog.caps_for(acme, "acme-1")
    assert (caps.max_output_tokens, caps.default_max_tokens) == (4096, 4096)
    assert catalog.caps_for(acme, "unlisted").default_max_tokens == TargetCaps().default_max_tokens


def test_caps_memo_tells_apart_providers_that_share_an_id() -> None:
    catalog = load_catalog()
    openai = catalog.provider("openai")
    assert openai is not None
    assert catalog.caps_for(openai, "gpt-5.5").max_tokens_field == "max_completion_tokens"
    impostor = custom_provider("openai", "Other", "openai-chat", "https://other.example.com/v1", {})
    assert catalog.caps_for(impostor, "gpt-5.5").max_tokens_field == "max_tokens"


def test_caps_memo_stays_bounded_under_arbitrary_model_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_module, "CAPS_CACHE_MAX", 8)
    catalog = parse_catalog({"version": 1, "providers": [_minimal(passthrough_models=True)]})
    acme = catalog.provider("acme")
    assert acme is not None
    for n in range(100):
        catalog.caps_for(acme, f"model-{n}")
    assert len(catalog._caps_memo) <= 8
    assert catalog.caps_for(acme, "acme-1").max_output_tokens == 4096


# ----------------------------------------------------------------------------------------------------------
# user-defined providers
# ----------------------------------------------------------------------------------------------------------


def test_custom_node_passes_any_model_through() -> None:
    node = custom_provider(
        "office-vllm", "Office vLLM", "openai-chat", "http://192.168.1.20:8000/v1/", {"X-Team": "ml"},
        auth="none", local=True,
    )  # fmt: skip
    assert node.base_url == "http://192.168.1.20:8000/v1"
    assert (node.alias, node.category, node.passthrough_models, node.key_optional) == (
        "office-vllm",
        "local",
        True,
        True,
    )
    assert node.models == ()
    assert node.model("anything") is None


def test_custom_node_errors_name_every_problem() -> None:
    with pytest.raises(CatalogError) as info:
        custom_provider(
            "Bad Id", "Bad", "cohere", "http://api.example.com/v1/chat/completions",
            {"Authorization": "Bearer sk-secret", "X-Ok": "a\r\nb"}, auth="basic",
        )  # fmt: skip
    text = "\n".join(info.value.problems)
    for fragment in (
        "not a lower-case id",
        "'cohere' is not one of",
        "'basic' is not one of",
        "plain http is for local providers only",
        "includes the endpoint path",
        "carries credentials",
        "line break",
    ):
        assert fragment in text
    assert "sk-secret" not in text


def test_custom_node_keeps_its_own_copy_of_the_headers() -> None:
    headers = {"X-Team": "ml"}
    node = custom_provider("team", "Team", "openai-chat", "https://team.example.com/v1", headers)
    headers["X-Team"] = "changed"
    assert dict(node.headers) == {"X-Team": "ml"}
    with pytest.raises(TypeError):
        node.headers["X-Other"] = "x"  # type: ignore[index]


def test_local_custom_node_must_stay_on_this_machine_or_the_private_network() -> None:
    with pytest.raises(CatalogError, match="not this machine or the private network"):
        custom_provider("rogue", "Rogue", "openai-chat", "http://8.8.8.8:8000/v1", {}, local=True)


def test_custom_nodes_join_a_catalog_without_touching_it() -> None:
    base = load_catalog()
    node = custom_provider("my-proxy", "My proxy", "anthropic", "https://proxy.example.com/v1", {})
    joined = base.with_providers([node])
    assert joined.provider("my-proxy") is node
    assert base.provider("my-proxy") is None
    with pytest.raises(CatalogError, match="already names provider 'deepseek'"):
        base.with_providers([custom_provider("ds", "Clash", "openai-chat", "https://x.example.com/v1", {})])


# ----------------------------------------------------------------------------------------------------------
# parse_catalog on broken input
# ----------------------------------------------------------------------------------------------------------


def test_broken_catalog_reports_every_problem_at_once() -> None:
    doc = {
        "version": 2,
        "extra": True,
        "providers": [
            _minimal(),
            _minimal(id="acme2", alias="acme", base_url="https://api.acme.test/v1/"),
            _minimal(id="dup-models", alias="dm", models=[{"id": "m"}, {"id": "m", "name": "M2"}]),
            _minimal(id="loc", alias="loc", local=True, category="local", base_url="http://8.8.8.8/v1"),
            _minimal(id="nokey", alias="nokey", auth="none"),
            _minimal(id="empty", alias="empty", models=[]),
            _minimal(
                id="badmodel",
                alias="badmodel",
                models=[
                    {
                        "id": "x",
                        "name": "X",
                        "context_window": 100,
                        "max_output_tokens": 200,
                        "price": {"input": -1, "output": "cheap", "cached_input": None},
                        "caps": {"cache_control": "yes", "warp_drive": True, "thinking_style": "deep"},
                        "aliases": "x-alias",
                        "free": True,
                        "colour": "blue",
                    }
                ],
            ),
            _minimal(id="badcaps", alias="bc", caps={"max_tokens_field": "max_len", "max_tool_name": True}),
            _minimal(id="gem", format="gemini", base_url="https://g.example/v1beta/models/x:generateContent"),
            "not an object",
            {"alias": "nameless"},
        ],
    }  # fmt: skip
    with pytest.raises(CatalogError) as info:
        parse_catalog(doc)
    problems = info.value.problems
    expected = [
        "catalog.version: expected 1",
        "catalog: unknown key 'extra'",
        "'acme' already names provider 'acme'",
        "ends with '/'",
        "'m' already names model 'm'",
        "not this machine or the private network",
        "key_optional: must be true when auth is 'none'",
        "empty, so passthrough_models must be true",
        "max_output_tokens exceeds context_window",
        "price.input: expected a non-negative number",
        "price.output: expected a non-negative number",
        "cache_control: 'yes' does not fit bool",
        "'warp_drive' is not a TargetCaps field",
        "thinking_style: 'deep' does not fit",
        "aliases: expected a list of non-empty strings",
        "unknown key 'colour'",
        "max_tokens_field: 'max_len' is not one of",
        "max_tool_name: True does not fit int",
        "includes the endpoint path",
        "providers[9]: expected an object",
        "providers[10].id: missing",
    ]
    for fragment in expected:
        assert any(fragment in problem for problem in problems), fragment
    assert str(info.value).count("\n") == len(problems)
    assert len(set(problems)) == len(problems), "each problem is reported once"


@pytest.mark.parametrize("raw", [None, [], "catalog", 1])
def test_catalog_that_is_not_an_object_is_refused(raw: object) -> None:
    with pytest.raises(CatalogError, match="expected a JSON object"):
        parse_catalog(raw)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(PROVIDER_KEYS)), value=JSON)
def test_parse_catalog_never_fails_other_than_with_catalog_error(key: str, value: object) -> None:
    doc = {"version": 1, "providers": [_minimal(**{key: value})]}
    outcome: Catalog | CatalogError
    try:
        outcome = parse_catalog(doc)
    except CatalogError as exc:
        outcome = exc
    assert isinstance(outcome, Catalog) or outcome.problems


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(sorted(MODEL_KEYS | {"price"})),
    value=JSON,
    price_key=st.sampled_from(sorted(PRICE_KEYS)),
)
def test_odd_model_fields_are_reported_not_crashed_on(key: str, value: object, price_key: str) -> None:
    model = {"id": "m", "price": {"input": 1, "output": 2, price_key: value}, key: value}
    outcome: Catalog | CatalogError
    try:
        outcome = parse_catalog({"version": 1, "providers": [_minimal(models=[model])]})
    except CatalogError as exc:
        outcome = exc
    assert isinstance(outcome, Catalog) or outcome.problems


def test_infinite_price_is_refused() -> None:
    model = {"id": "m", "price": {"input": float("inf"), "output": 1}}
    with pytest.raises(CatalogError, match=r"price\.input"):
        parse_catalog({"version": 1, "providers": [_minimal(models=[model])]})


# ----------------------------------------------------------------------------------------------------------
# packaging: the catalog is read through importlib.resources, so it loads from inside a zip
# ----------------------------------------------------------------------------------------------------------


def test_catalog_loads_from_a_zip_archive(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.pyz"
    package = ROOT / "omniroute_providers"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ROOT / "omniroute.py", "omniroute.py")
        for name in ("__init__.py", "ir.py", "catalog.py", "catalog.json"):
            zf.write(package / name, f"omniroute_providers/{name}")
    probe = (
        "import sys, zipimport; sys.path.insert(0, sys.argv[1]);"
        "import omniroute_providers.catalog as c;"
        "assert isinstance(c.__loader__, zipimport.zipimporter), c.__loader__;"
        "cat = c.load_catalog();"
        "print(len(cat.providers), cat.provider('ds').id)"
    )
    result = subprocess.run(  # -I: no site-packages, no cwd on the path: only the zip can serve it
        [sys.executable, "-I", "-c", probe, str(archive)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(len(RAW_PROVIDERS)), "deepseek"]

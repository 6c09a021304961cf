"""Schema rewrites: what Gemini, Anthropic and OpenAI strict mode will accept, without touching the input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from google.genai import types as gtypes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute_providers.formats.schema import (
    GEMINI_SCHEMA_KEYS,
    GEMINI_TYPES,
    MAX_SCHEMA_NODES,
    clean_gemini_json_schema,
    from_gemini_schema,
    strip_json_schema_meta,
    to_anthropic_input_schema,
    to_gemini_schema,
    to_openai_strict_schema,
)

# ----------------------------------------------------------------------------------------------------------
# real-world tool schemas (shapes seen from Claude Code, MCP servers, pydantic, zod)
# ----------------------------------------------------------------------------------------------------------

CLAUDE_CODE_BASH = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "command": {"type": "string", "description": "The command to execute"},
        "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)"},
        "run_in_background": {"type": "boolean"},
    },
    "required": ["command"],
}

CLAUDE_CODE_TODOWRITE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "todos": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "content": {"type": "string", "minLength": 1},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                    "activeForm": {"type": "string", "minLength": 1},
                },
                "required": ["content", "status", "activeForm"],
            },
        }
    },
    "required": ["todos"],
}

# zod-to-json-schema output: type arrays, const, exclusiveMinimum, anyOf of consts, format uri
ZOD_FETCH = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "max_length": {"type": ["integer", "null"], "exclusiveMinimum": 0, "default": 5000},
        "method": {"anyOf": [{"const": "GET"}, {"const": "POST"}], "description": "HTTP method"},
        "raw": {"const": True},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "x-internal": {"type": "string"},
    },
    "required": ["url", "ghost"],
    "additionalProperties": False,
    "strict": True,
}

# pydantic v2: $defs + $ref, Optional -> anyOf with null, allOf wrapper around a $ref, enum class
PYDANTIC_SEARCH = {
    "$defs": {
        "Filter": {
            "type": "object",
            "title": "Filter",
            "properties": {
                "field": {"type": "string", "title": "Field"},
                "op": {"$ref": "#/$defs/Op"},
                "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]},
            },
            "required": ["field", "op"],
        },
        "Op": {"type": "string", "enum": ["eq", "ne", "gt"], "title": "Op"},
        "Tree": {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}},
        },
    },
    "type": "object",
    "title": "SearchArgs",
    "properties": {
        "query": {"type": "string", "title": "Query"},
        "filter": {"anyOf": [{"$ref": "#/$defs/Filter"}, {"type": "null"}], "default": None},
        "base": {"allOf": [{"$ref": "#/$defs/Filter"}], "description": "Base filter"},
        "tree": {"$ref": "#/$defs/Tree"},
        "limit": {"type": "integer", "enum": [10, 20, 50]},
    },
    "required": ["query"],
}

# Asana-style MCP server: bare property map and draft-03 boolean `required`
MCP_BARE = {
    "task_id": {"type": "string", "description": "Task gid", "required": True},
    "opt_fields": {"type": "string"},
}

# GitHub MCP style: oneOf of objects, patternProperties, if/then, deprecated, examples, uniqueItems
MCP_GITHUB = {
    "type": "object",
    "properties": {
        "owner": {"type": "string", "examples": ["octocat"], "deprecated": False},
        "labels": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "target": {
            "oneOf": [
                {"type": "object", "properties": {"sha": {"type": "string"}}, "required": ["sha"]},
                {"type": "object", "properties": {"branch": {"type": "string"}}},
            ]
        },
        "meta": {"type": "object", "patternProperties": {"^x-": {"type": "string"}}},
        "flag": {"type": "boolean", "if": {"const": True}, "then": {"description": "yes"}},
        "tuple": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]},
        "anything": {},
        "list_no_items": {"type": "array"},
        "empty_obj": {"type": "object", "properties": {}},
    },
}

EMPTY_OBJECT = {"type": "object"}

REAL_WORLD = [
    CLAUDE_CODE_BASH,
    CLAUDE_CODE_TODOWRITE,
    ZOD_FETCH,
    PYDANTIC_SEARCH,
    MCP_BARE,
    MCP_GITHUB,
    EMPTY_OBJECT,
]


# ----------------------------------------------------------------------------------------------------------
# validity checks
# ----------------------------------------------------------------------------------------------------------


def assert_gemini_openapi(schema: Any, path: str = "$") -> None:
    """Every node holds only allowlisted keys, single upper-case types, string enums, sane required."""
    assert isinstance(schema, dict), path
    extra = set(schema) - GEMINI_SCHEMA_KEYS
    assert not extra, f"{path}: keys outside the Gemini allowlist: {extra}"
    if "type" in schema:
        assert schema["type"] in GEMINI_TYPES, f"{path}: type {schema['type']!r}"
    if "enum" in schema:
        assert all(isinstance(v, str) for v in schema["enum"]), path
        assert schema.get("type") == "STRING", path
    if "nullable" in schema:
        assert schema["nullable"] is True, path
    props = schema.get("properties")
    if props is not None:
        assert isinstance(props, dict), path
        assert props, f"{path}: empty properties (Gemini: non-empty for OBJECT)"
        for name, sub in props.items():
            assert_gemini_openapi(sub, f"{path}.properties.{name}")
    if "required" in schema:
        assert isinstance(props, dict), f"{path}: required without properties"
        assert all(r in props for r in schema["required"]), path
    if "items" in schema:
        assert_gemini_openapi(schema["items"], f"{path}.items")
    if schema.get("type") == "ARRAY":
        assert "items" in schema, f"{path}: ARRAY without items"
    for i, sub in enumerate(schema.get("anyOf", ())):
        assert_gemini_openapi(sub, f"{path}.anyOf[{i}]")
    for key in ("title", "description", "pattern", "format"):
        if key in schema:
            assert isinstance(schema[key], str), path


def schema_nodes(schema: Any) -> list[dict[str, Any]]:
    """Every schema node of a JSON Schema (not data values such as enum/default)."""
    out: list[dict[str, Any]] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        out.append(node)
        for key in ("properties", "patternProperties", "$defs", "definitions"):
            if isinstance(node.get(key), dict):
                stack.extend(node[key].values())
        for key in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
            if isinstance(node.get(key), dict):
                stack.append(node[key])
        for key in ("anyOf", "oneOf", "allOf", "prefixItems", "items"):
            if isinstance(node.get(key), list):
                stack.extend(node[key])
    return out


# ----------------------------------------------------------------------------------------------------------
# to_gemini_schema
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", REAL_WORLD, ids=lambda s: str(sorted(s))[:40])
def test_real_world_schemas_become_valid_gemini_openapi(schema: dict[str, Any]) -> None:
    before = copy.deepcopy(schema)
    out = to_gemini_schema(schema)
    assert_gemini_openapi(out)
    gtypes.Schema.model_validate(out)  # the SDK's own model forbids unknown fields
    assert schema == before, "the input was mutated"


def test_type_array_with_null_becomes_one_type_and_nullable() -> None:
    out = to_gemini_schema(ZOD_FETCH)
    assert out["properties"]["max_length"]["type"] == "INTEGER"
    assert out["properties"]["max_length"]["nullable"] is True
    assert "exclusiveMinimum: 0" in out["properties"]["max_length"]["description"]


def test_const_and_anyof_of_consts_become_string_enums() -> None:
    out = to_gemini_schema(ZOD_FETCH)["properties"]
    assert out["method"] == {"type": "STRING", "enum": ["GET", "POST"], "description": "HTTP method"}
    assert out["raw"]["enum"] == ["true"]
    assert out["raw"]["type"] == "STRING"


def test_unsupported_format_moves_into_description_and_required_is_pruned() -> None:
    out = to_gemini_schema(ZOD_FETCH)
    assert "format" not in out["properties"]["url"]
    assert "uri" in out["properties"]["url"]["description"]
    assert out["required"] == ["url"]  # "ghost" is not a property
    assert "x-internal" in out["properties"]  # a property *named* x-... is data, not an extension


def test_supported_format_is_kept() -> None:
    out = to_gemini_schema({"type": "string", "format": "date-time"})
    assert out == {"type": "STRING", "format": "date-time"}


def test_refs_are_inlined_and_recursion_is_cut() -> None:
    out = to_gemini_schema(PYDANTIC_SEARCH)["properties"]
    filt = out["filter"]
    assert filt["type"] == "OBJECT"
    assert filt["nullable"] is True
    assert filt["properties"]["op"] == {"type": "STRING", "enum": ["eq", "ne", "gt"], "title": "Op"}
    assert out["base"]["properties"]["field"]["type"] == "STRING"
    assert out["base"]["description"] == "Base filter"
    assert out["base"]["required"] == ["field", "op"]
    children = out["tree"]["properties"]["children"]["items"]
    assert "recursive reference to Tree" in children["description"]


def test_numeric_enum_keeps_its_type_and_lists_values_as_hint() -> None:
    out = to_gemini_schema(PYDANTIC_SEARCH)["properties"]["limit"]
    assert out["type"] == "INTEGER"
    assert "enum" not in out
    assert "10, 20, 50" in out["description"]


def test_multi_type_anyof_is_kept_as_anyof() -> None:
    out = to_gemini_schema(PYDANTIC_SEARCH)["properties"]["filter"]["properties"]["value"]
    assert out == {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}], "nullable": True}


def test_oneof_of_objects_becomes_anyof() -> None:
    out = to_gemini_schema(MCP_GITHUB)["properties"]["target"]
    assert [b["properties"] for b in out["anyOf"]] == [
        {"sha": {"type": "STRING"}},
        {"branch": {"type": "STRING"}},
    ]


def test_bare_property_map_and_boolean_required_are_repaired() -> None:
    out = to_gemini_schema(MCP_BARE)
    assert out["type"] == "OBJECT"
    assert set(out["properties"]) == {"task_id", "opt_fields"}
    assert out["required"] == ["task_id"]


def test_object_without_properties_has_no_properties_key() -> None:
    # case 15: Gemini rejects OBJECT with empty properties ("should be non-empty for OBJECT type")
    assert to_gemini_schema(EMPTY_OBJECT) == {"type": "OBJECT"}
    assert to_gemini_schema({"type": "object", "properties": {}, "required": ["a"]}) == {"type": "OBJECT"}


def test_array_without_items_gets_string_items() -> None:
    out = to_gemini_schema(MCP_GITHUB)["properties"]
    assert out["list_no_items"] == {"type": "ARRAY", "items": {"type": "STRING"}}
    assert out["tuple"]["items"] == {"type": "NUMBER"}


def test_property_ordering_for_response_schema() -> None:
    out = to_gemini_schema(CLAUDE_CODE_BASH, property_ordering=True)
    assert out["propertyOrdering"] == ["command", "timeout", "run_in_background"]
    assert "propertyOrdering" not in to_gemini_schema(CLAUDE_CODE_BASH)


def test_exponential_ref_fanout_is_bounded() -> None:
    defs = {
        f"D{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/D{i + 1}"}, "b": {"$ref": f"#/$defs/D{i + 1}"}},
        }
        for i in range(40)
    }
    defs["D40"] = {"type": "string"}
    out = to_gemini_schema({"$defs": defs, "$ref": "#/$defs/D0"})
    assert_gemini_openapi(out)
    assert len(schema_nodes(out)) <= 2 * MAX_SCHEMA_NODES


def test_very_deep_schema_does_not_recurse_forever() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(500):
        schema = {"type": "object", "properties": {"x": schema}}
    assert_gemini_openapi(to_gemini_schema(schema))
    clean_gemini_json_schema(schema)
    to_openai_strict_schema(schema)


# ----------------------------------------------------------------------------------------------------------
# JSON Schema flavours
# ----------------------------------------------------------------------------------------------------------


def test_clean_gemini_json_schema_strips_meta_keys_but_keeps_property_names() -> None:
    before = copy.deepcopy(ZOD_FETCH)
    out = clean_gemini_json_schema(ZOD_FETCH)
    for node in schema_nodes(out):
        assert not {"$schema", "$id", "$comment", "strict"} & set(node)
        assert not any(k.startswith("x-") for k in node)
    assert "x-internal" in out["properties"]
    assert out["properties"]["max_length"]["type"] == ["integer", "null"]  # JSON Schema stays JSON Schema
    assert out["required"] == ["url"]
    assert before == ZOD_FETCH


def test_clean_gemini_json_schema_leaves_unknown_annotations_alone_when_properties_exist() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "errorMessage": {"a": "bad"}}
    assert clean_gemini_json_schema(schema) == schema


def test_strip_json_schema_meta_drops_only_dollar_schema() -> None:
    out = strip_json_schema_meta(CLAUDE_CODE_BASH)
    assert "$schema" not in out
    assert out["additionalProperties"] is False
    assert out["required"] == ["command"]


def test_from_gemini_schema_lowercases_types_and_maps_nullable() -> None:
    gem = {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING", "nullable": True}, "b": {"type": "INTEGER"}},
    }
    assert from_gemini_schema(gem) == {
        "type": "object",
        "properties": {"a": {"type": ["string", "null"]}, "b": {"type": "integer"}},
    }
    # a property called "type" is data, not a keyword
    tricky = {"type": "OBJECT", "properties": {"type": {"type": "STRING", "enum": ["A", "B"]}}}
    assert from_gemini_schema(tricky)["properties"]["type"] == {"type": "string", "enum": ["A", "B"]}


def test_anthropic_input_schema_merges_root_union() -> None:
    # case 17: strict tool whose root is anyOf of two objects
    schema = {
        "anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["a", "b"]},
        ]
    }
    out = to_anthropic_input_schema(schema)
    assert out == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a"],
    }
    assert to_anthropic_input_schema(None) == {"type": "object", "properties": {}}
    allof = {
        "allOf": [{"properties": {"a": {}}, "required": ["a"]}, {"properties": {"b": {}}, "required": ["b"]}]
    }
    assert to_anthropic_input_schema(allof)["required"] == ["a", "b"]


def test_openai_strict_schema_closes_every_object() -> None:
    out = to_openai_strict_schema(CLAUDE_CODE_TODOWRITE)
    assert out["additionalProperties"] is False
    assert out["required"] == ["todos"]
    item = out["properties"]["todos"]["items"]
    assert item["additionalProperties"] is False
    assert item["required"] == ["content", "status", "activeForm"]
    bash = to_openai_strict_schema(CLAUDE_CODE_BASH)
    assert bash["required"] == ["command", "timeout", "run_in_background"]


# ----------------------------------------------------------------------------------------------------------
# properties over generated schemas
# ----------------------------------------------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "type", "items", "x-foo", "$ref", "properties", "required", "enum"])
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=5)
)
_type_names = st.sampled_from(
    ["string", "number", "integer", "boolean", "array", "object", "null", "STRING", "weird"]
)
_refs = st.sampled_from(
    ["#/$defs/A", "#/$defs/B", "#/definitions/C", "#", "#/nope", "http://x/y", "#/properties/a"]
)


def _schema_strategy() -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        keyword_values = st.fixed_dictionaries(
            {},
            optional={
                "type": st.one_of(_type_names, st.lists(_type_names, max_size=3), _scalars),
                "properties": st.one_of(st.dictionaries(_names, children, max_size=3), _scalars),
                "items": st.one_of(children, st.lists(children, max_size=2)),
                "required": st.one_of(st.lists(st.one_of(_names, _scalars), max_size=3), st.booleans()),
                "enum": st.one_of(st.lists(_scalars, max_size=3), _scalars),
                "const": _scalars,
                "anyOf": st.lists(children, max_size=3),
                "oneOf": st.lists(children, max_size=3),
                "allOf": st.lists(children, max_size=3),
                "$ref": st.one_of(_refs, _scalars),
                "$defs": st.dictionaries(st.sampled_from(["A", "B"]), children, max_size=2),
                "definitions": st.dictionaries(st.just("C"), children, max_size=1),
                "additionalProperties": st.one_of(st.booleans(), children),
                "format": st.one_of(
                    st.sampled_from(["uri", "date-time", "int64", "float", "email"]), _scalars
                ),
                "description": st.one_of(st.text(max_size=5), _scalars),
                "title": _scalars,
                "nullable": _scalars,
                "default": _scalars,
                "minimum": _scalars,
                "maxLength": _scalars,
                "exclusiveMinimum": _scalars,
                "pattern": _scalars,
                "x-extension": children,
                "$schema": _scalars,
                "strict": _scalars,
                "not": children,
                "if": children,
                "prefixItems": st.lists(children, max_size=2),
                "bare_prop": children,
                "propertyOrdering": st.lists(_names, max_size=2),
            },
        )
        return st.one_of(keyword_values, st.booleans())

    return st.recursive(st.fixed_dictionaries({}, optional={"type": _type_names}), extend, max_leaves=25)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_schema_strategy())
def test_gemini_down_conversion_stays_in_allowlist_and_never_raises(schema: Any) -> None:
    if not isinstance(schema, dict):
        schema = {"type": "object", "properties": {"a": schema}}
    before = copy.deepcopy(schema)
    out = to_gemini_schema(schema)
    assert_gemini_openapi(out)
    gtypes.Schema.model_validate(out)
    assert schema == before


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_schema_strategy())
def test_json_schema_cleaners_never_raise_or_mutate(schema: Any) -> None:
    if not isinstance(schema, dict):
        schema = {"type": "object", "properties": {"a": schema}}
    before = copy.deepcopy(schema)
    cleaned = clean_gemini_json_schema(schema)
    for node in schema_nodes(cleaned):
        assert not {"$schema", "$id", "$comment", "strict"} & set(node)
        assert not any(k.startswith("x-") for k in node)
    for fn in (
        strip_json_schema_meta,
        to_openai_strict_schema,
        to_anthropic_input_schema,
        from_gemini_schema,
    ):
        assert isinstance(fn(schema), dict)
    anthropic = to_anthropic_input_schema(schema)
    assert anthropic["type"] == "object"
    assert not {"anyOf", "oneOf", "allOf"} & set(anthropic)
    assert schema == before

"""Tool / response JSON Schemas rewritten for what each upstream accepts.

    to_gemini_schema          JSON Schema -> the OpenAPI subset of Gemini `parameters` / `responseSchema`
    clean_gemini_json_schema  JSON Schema for Gemini `parametersJsonSchema` / `responseJsonSchema`
    from_gemini_schema        a Gemini (OpenAPI, upper-case types) schema -> ordinary JSON Schema
    to_anthropic_input_schema root `type: object`, root combinators merged (Anthropic `input_schema`)
    to_openai_strict_schema   additionalProperties false + every property required (OpenAI strict)
    strip_json_schema_meta    drop `$schema` (OpenAI-compatible upstreams)

Invariants:

* Pure: the input is never mutated. Outputs are new dicts down to every schema node; leaf data values
  (`enum` lists, `default` values) may be shared with the input, so callers must not mutate them.
* Only schema positions are rewritten. Keywords are recognised by where they sit (a node's keys; the
  names under `properties` are property names, not keywords; `enum`/`default`/`const` hold data), so a
  property called `type` or `x-id` is never mistaken for a keyword.
* Bounded: recursion stops at MAX_SCHEMA_DEPTH and `$ref` inlining at MAX_SCHEMA_NODES, so a hostile or
  self-referential schema cannot blow up time or memory. Nothing here raises on odd-but-JSON input.
* `to_gemini_schema` output holds only GEMINI_SCHEMA_KEYS at every node (checked by a property test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omniroute import JsonObj, dumps_str

MAX_SCHEMA_DEPTH = 64  # real tool schemas nest < 20 deep; request bodies are capped at 64 anyway
MAX_SCHEMA_NODES = 5000  # `$ref` inlining can grow exponentially (A -> 2xB -> 4xC ...): stop here

# Keys the Gemini OpenAPI Schema proto accepts (formats.md §1.4). `$ref`/`$defs`/`additionalProperties`
# are left out on purpose: refs are inlined, and additionalProperties is Vertex-only.
GEMINI_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "propertyOrdering",
        "anyOf",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "pattern",
        "default",
        "example",
    }
)
GEMINI_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
# Formats Gemini accepts per type; any other format becomes a description hint.
_GEMINI_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
_INT_KEYS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
# Constraints Gemini cannot express: kept for the model as a hint in the description.
_HINT_KEYS = (
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "uniqueItems",
    "minContains",
    "maxContains",
)

# Where sub-schemas sit in JSON Schema (2020-12 plus draft-04/07 spellings).
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
# Keys whose dict value is not a bare property (used by the bare-property-map repair).
_KNOWN_DICT_KEYS = frozenset(
    {
        *_SCHEMA_MAPS,
        *_SCHEMA_ONE,
        "dependentRequired",
        "dependencies",
        "default",
        "const",
        "example",
        "examples",
        "discriminator",
        "xml",
        "externalDocs",
        "enumDescriptions",
        "enumTitles",
    }
)
_PRIMITIVE_TYPES = frozenset({"string", "number", "integer", "boolean", "null", "array"})


# ----------------------------------------------------------------------------------------------------------
# generic walk
# ----------------------------------------------------------------------------------------------------------


def _walk(
    node: Any,
    visit: Callable[[JsonObj], JsonObj],
    depth: int = 0,
    pre: Callable[[JsonObj], JsonObj] | None = None,
) -> Any:
    """Rebuild `node`: `pre(node)` first (top-down), then its sub-schemas, then `visit(new_node)`
    (bottom-up). Non-dicts come back as is."""
    if not isinstance(node, dict) or depth > MAX_SCHEMA_DEPTH:
        return node
    if pre is not None:
        node = pre(node)
    out: JsonObj = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _walk(sub, visit, depth + 1, pre) for name, sub in value.items()}
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            out[key] = _walk(value, visit, depth + 1, pre)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_walk(sub, visit, depth + 1, pre) for sub in value]
        else:
            out[key] = value
    return visit(out)


def _drop_keys(pred: Callable[[str], bool]) -> Callable[[JsonObj], JsonObj]:
    def visit(node: JsonObj) -> JsonObj:
        return {k: v for k, v in node.items() if not pred(k)}

    return visit


def _type_names(node: JsonObj) -> list[str]:
    """The node's `type` as lower-case names (a string or a list of strings in JSON Schema)."""
    t = node.get("type")
    if isinstance(t, str):
        return [t.lower()]
    if isinstance(t, list):
        return [x.lower() for x in t if isinstance(x, str)]
    return []


# ----------------------------------------------------------------------------------------------------------
# repairs shared by the Gemini paths (malformed MCP schemas)
# ----------------------------------------------------------------------------------------------------------


def _repair(node: JsonObj) -> JsonObj:
    """Fix two MCP-server habits on one node (a shallow copy is returned when anything changes):

    * bare property maps: `{"a": {"type": "string"}, "b": {...}}` with no `properties` wrapper;
    * draft-03 `required: true` on a property instead of the parent's `required` list.
    """
    types = _type_names(node)
    bare: JsonObj = {}
    if "properties" not in node and (not types or "object" in types):
        bare = {
            k: v
            for k, v in node.items()
            if isinstance(v, dict) and k not in _KNOWN_DICT_KEYS and not k.startswith(("x-", "$"))
        }
    props = node.get("properties")
    promoted = [
        name
        for name, sub in {**(props if isinstance(props, dict) else {}), **bare}.items()
        if isinstance(sub, dict) and sub.get("required") is True
    ]
    if not bare and not promoted and not isinstance(node.get("required"), bool):
        return node
    out = {k: v for k, v in node.items() if k not in bare}
    if bare:
        out["properties"] = {**(props if isinstance(props, dict) else {}), **bare}
        out.setdefault("type", "object")
    if promoted or isinstance(out.get("required"), bool):
        merged_props = out.get("properties")
        if isinstance(merged_props, dict):
            out["properties"] = {
                name: ({k: v for k, v in sub.items() if k != "required"} if name in promoted else sub)
                for name, sub in merged_props.items()
            }
        existing = out.get("required")
        names = [r for r in existing if isinstance(r, str)] if isinstance(existing, list) else []
        names += [p for p in promoted if p not in names]
        if names:
            out["required"] = names
        else:
            out.pop("required", None)
    return out


def _fix_required(node: JsonObj) -> JsonObj:
    """`required` must be a list of strings naming existing properties (when properties are listed)."""
    req = node.get("required")
    if req is None:
        return node
    props = node.get("properties")
    keep = (
        [r for r in req if isinstance(r, str) and (not isinstance(props, dict) or r in props)]
        if isinstance(req, list)
        else []
    )
    keep = list(dict.fromkeys(keep))
    if keep == req:
        return node
    out = {k: v for k, v in node.items() if k != "required"}
    if keep:
        out["required"] = keep
    return out


# ----------------------------------------------------------------------------------------------------------
# JSON Schema flavours
# ----------------------------------------------------------------------------------------------------------

_GEMINI_JSON_SCHEMA_DROP = frozenset({"$schema", "$id", "$comment", "strict"})


def clean_gemini_json_schema(schema: JsonObj) -> JsonObj:
    """For `parametersJsonSchema` / `responseJsonSchema`: ordinary JSON Schema minus the meta keys Gemini
    rejects (`$schema`, `$id`, `$comment`, `strict`, `x-*`), with boolean/dangling `required` repaired."""

    def visit(node: JsonObj) -> JsonObj:
        node = {k: v for k, v in node.items() if k not in _GEMINI_JSON_SCHEMA_DROP and not k.startswith("x-")}
        return _fix_required(node)

    def pre(node: JsonObj) -> JsonObj:
        return _repair({k: v for k, v in node.items() if not k.startswith("x-")})

    out = _walk(schema, visit, pre=pre)
    return out if isinstance(out, dict) else {}


def strip_json_schema_meta(schema: JsonObj) -> JsonObj:
    """Drop `$schema` (OpenAI-compatible upstreams choke on it); everything else is kept."""
    out = _walk(schema, _drop_keys(lambda k: k == "$schema"))
    return out if isinstance(out, dict) else {}


def from_gemini_schema(schema: JsonObj) -> JsonObj:
    """A Gemini schema (OpenAPI `parameters`/`responseSchema`, or JSON Schema with upper-case types as the
    Gemini CLI sends) -> ordinary JSON Schema: lower-case types, `nullable: true` -> `"null"` in `type`,
    `TYPE_UNSPECIFIED` dropped. Everything else is kept."""

    def visit(node: JsonObj) -> JsonObj:
        t = node.get("type")
        nullable = node.get("nullable") is True
        if not isinstance(t, (str, list)) and "nullable" not in node:
            return node
        names = [n for n in _type_names(node) if n != "type_unspecified"]
        if nullable and names and "null" not in names:
            names.append("null")
        new_type: Any = names[0] if len(names) == 1 else names or None
        out: JsonObj = {}
        for k, v in node.items():  # rebuilt in the original key order
            if k == "type":
                if new_type is not None:
                    out["type"] = new_type
            elif k != "nullable" or (nullable and not isinstance(t, (str, list))):
                out[k] = v  # a bare `nullable: true` with no type to attach "null" to stays as a hint
        return out

    out = _walk(schema, visit)
    return out if isinstance(out, dict) else {}


def _is_object_schema(node: JsonObj) -> bool:
    return "object" in _type_names(node) or isinstance(node.get("properties"), dict)


def to_openai_strict_schema(schema: JsonObj) -> JsonObj:
    """OpenAI strict mode: `additionalProperties: false` on every object and every property required.

    Optional properties become required as they are (not turned nullable): a client validating tool
    arguments would reject an unexpected null more readily than a value it did not insist on.
    """

    def visit(node: JsonObj) -> JsonObj:
        if not _is_object_schema(node):
            return node
        out = dict(node)
        out["additionalProperties"] = False
        props = out.get("properties")
        if isinstance(props, dict):
            out["required"] = list(props)
        else:
            out["properties"] = {}
            out["required"] = []
        return out

    out = _walk(schema, visit)
    return out if isinstance(out, dict) else {}


def _str_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _dict_list(value: Any) -> list[JsonObj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def to_anthropic_input_schema(schema: JsonObj | None) -> JsonObj:
    """Anthropic `input_schema`: root `type: object`, no root anyOf/oneOf/allOf (object branches merged:
    properties united; `required` united for allOf, intersected for anyOf/oneOf)."""
    if not isinstance(schema, dict) or not schema:
        return {"type": "object", "properties": {}}
    out: JsonObj = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "allOf")}
    props: JsonObj = dict(out["properties"]) if isinstance(out.get("properties"), dict) else {}
    required = _str_list(out.get("required"))
    for key in ("allOf", "anyOf", "oneOf"):
        branches = _dict_list(schema.get(key))
        if not isinstance(schema.get(key), list) or not branches:
            continue
        branch_required: list[set[str]] = []
        for branch in branches:
            if isinstance(branch.get("properties"), dict):
                for name, sub in branch["properties"].items():
                    props.setdefault(name, sub)
            branch_required.append(set(_str_list(branch.get("required"))))
            if "description" not in out and isinstance(branch.get("description"), str):
                out["description"] = branch["description"]
        if key == "allOf":
            extra = set().union(*branch_required)
        else:
            extra = set.intersection(*branch_required) if branch_required else set()
        required += sorted(r for r in extra if r not in required)
    out["type"] = "object"
    out["properties"] = props
    required = [r for r in dict.fromkeys(required) if r in props]
    if required:
        out["required"] = required
    else:
        out.pop("required", None)
    return out


# ----------------------------------------------------------------------------------------------------------
# JSON Schema -> Gemini OpenAPI subset
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _GeminiState:
    root: JsonObj
    nodes: int = 0
    property_ordering: bool = False
    resolving: list[str] = field(default_factory=list)


def to_gemini_schema(schema: JsonObj, *, property_ordering: bool = False) -> JsonObj:
    """JSON Schema -> the OpenAPI subset Gemini takes in `parameters` / `responseSchema`.

    Pipeline per node (after the MCP repairs): local `$ref` inlined (cycles and budget overflow become a
    description hint), allOf merged, `const` -> one-element enum, anyOf/oneOf kept as `anyOf` when the
    node has no shape of its own (else the first non-null branch is merged in), `null` branches and type
    arrays -> one type + `nullable`, enums stringified (enums on number/boolean types become hints, since
    a stringified enum would make the model answer with strings), unsupported constraints and formats
    -> description hints, OBJECT without properties -> no `properties` key, `required` pruned to existing
    properties, ARRAY without items -> STRING items. `property_ordering` adds `propertyOrdering` (wanted
    for `responseSchema`).
    """
    if not isinstance(schema, dict):
        return {}
    return _gem(schema, _GeminiState(root=schema, property_ordering=property_ordering), 0)


def _gem(node: Any, st: _GeminiState, depth: int) -> JsonObj:
    st.nodes += 1
    if not isinstance(node, dict) or depth > MAX_SCHEMA_DEPTH or st.nodes > MAX_SCHEMA_NODES:
        return {}  # boolean schemas, junk, or past the bounds: "anything"
    hints: list[str] = []
    mark = len(st.resolving)
    try:
        return _gem_node(node, st, depth, hints)
    finally:
        del st.resolving[mark:]  # refs resolved for this node stay "in progress" for its children only


def _gem_node(node: JsonObj, st: _GeminiState, depth: int, hints: list[str]) -> JsonObj:
    node = _deref(_repair(node), st, hints)
    node = _merge_all_of(node, st, hints)
    out: JsonObj = {}
    types = _type_names(node)
    nullable = node.get("nullable") is True or "null" in types
    types = [t for t in types if t != "null"]

    enum_values = _enum_values(node)
    branches_key = "anyOf" if isinstance(node.get("anyOf"), list) else "oneOf"
    branches = _dict_list(node.get(branches_key))
    if branches:
        null_branches = [b for b in branches if _type_names(b) == ["null"]]
        branches = [b for b in branches if b not in null_branches]
        nullable = nullable or bool(null_branches)
        const_values = _enum_of_branches(branches)
        if const_values is not None and enum_values is None:
            enum_values = const_values
            branches = []
        elif len(branches) >= 2 and not types and not _has_shape(node):
            out["anyOf"] = [_gem(b, st, depth + 1) for b in branches]
            branches = []
        elif branches:
            node = _merge_branch(node, _deref(_repair(branches[0]), st, hints))
            node = _merge_all_of(node, st, hints)
            types = [t for t in _type_names(node) if t != "null"] or types
            if enum_values is None:
                enum_values = _enum_values(node)

    if len(types) > 1:
        hints.append("accepts " + " | ".join(types))
    gtype = types[0].upper() if types else _infer_type(node, enum_values)
    if gtype is not None and gtype not in GEMINI_TYPES:
        hints.append(f"type {types[0] if types else gtype}")
        gtype = None

    if enum_values is not None:
        gtype = _apply_enum(out, enum_values, gtype, hints)
    if gtype is not None:
        out["type"] = gtype
    if nullable:
        out["nullable"] = True

    _copy_scalars(node, out, gtype, hints)
    if gtype == "OBJECT" or (gtype is None and isinstance(node.get("properties"), dict)):
        _object_fields(node, out, st, depth)
    if gtype == "ARRAY" or (gtype is None and "items" in node):
        _array_fields(node, out, st, depth, hints)
    _describe(node, out, hints)
    return out


def _has_shape(node: JsonObj) -> bool:
    return any(k in node for k in ("properties", "items", "enum", "const"))


def _infer_type(node: JsonObj, enum_values: list[Any] | None) -> str | None:
    if isinstance(node.get("properties"), dict):
        return "OBJECT"
    if "items" in node or "prefixItems" in node:
        return "ARRAY"
    if enum_values is not None:
        return "STRING"
    return None


def _enum_values(node: JsonObj) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _enum_of_branches(branches: list[JsonObj]) -> list[Any] | None:
    """`anyOf: [{const: a}, {const: b}]` (a common way to write a described enum) -> [a, b]."""
    if not branches:
        return None
    values: list[Any] = []
    for b in branches:
        v = _enum_values(b)
        if v is None or set(b) - {"const", "enum", "type", "title", "description"}:
            return None
        values += v
    return values


def _apply_enum(out: JsonObj, values: list[Any], gtype: str | None, hints: list[str]) -> str | None:
    """Gemini enums are strings only. Non-string types keep their type and get a hint instead, since a
    stringified enum would make the model send "1" where the tool expects 1."""
    shown = ", ".join(v if isinstance(v, str) else dumps_str(v) for v in values if v is not None)
    if gtype in ("INTEGER", "NUMBER", "BOOLEAN"):
        hints.append(f"allowed values: {shown}")
        return gtype
    strings = [v if isinstance(v, str) else dumps_str(v) for v in values if v is not None]
    if None in values:
        out["nullable"] = True
    if strings:
        out["enum"] = list(dict.fromkeys(strings))
        return "STRING"
    return gtype


def _copy_scalars(node: JsonObj, out: JsonObj, gtype: str | None, hints: list[str]) -> None:
    title = node.get("title")
    if isinstance(title, str):
        out["title"] = title
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt:
        if gtype is not None and fmt in _GEMINI_FORMATS.get(gtype, ()):
            out["format"] = fmt
        else:
            hints.append(f"format: {fmt}")
    for key in _INT_KEYS:
        v = node.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            out[key] = v
    for key in ("minimum", "maximum"):
        v = node.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        out["pattern"] = pattern
    for key in ("default", "example"):
        if key in node and node[key] is not None:
            out[key] = node[key]
    for key in _HINT_KEYS:
        v = node.get(key)
        if v is not None and not isinstance(v, (dict, list)):
            hints.append(f"{key}: {dumps_str(v)}")


def _object_fields(node: JsonObj, out: JsonObj, st: _GeminiState, depth: int) -> None:
    props = node.get("properties")
    if not isinstance(props, dict) or not props:
        return  # Gemini rejects OBJECT with an empty `properties`: leave the key out (case 15)
    out["properties"] = {str(name): _gem(sub, st, depth + 1) for name, sub in props.items()}
    req = node.get("required")
    if isinstance(req, list):
        keep = list(dict.fromkeys(r for r in req if isinstance(r, str) and r in props))
        if keep:
            out["required"] = keep
    ordering = node.get("propertyOrdering")
    if isinstance(ordering, list) and all(isinstance(p, str) and p in props for p in ordering):
        out["propertyOrdering"] = list(ordering)
    elif st.property_ordering and len(props) > 1:
        out["propertyOrdering"] = [str(p) for p in props]


def _array_fields(node: JsonObj, out: JsonObj, st: _GeminiState, depth: int, hints: list[str]) -> None:
    items = node.get("items")
    if isinstance(items, list):  # draft-04 tuple form
        hints.append("tuple items")
        items = items[0] if items else None
    if items is None and isinstance(node.get("prefixItems"), list) and node["prefixItems"]:
        hints.append("tuple items")
        items = node["prefixItems"][0]
    if isinstance(items, dict):
        out["items"] = _gem(items, st, depth + 1)
    else:
        out["items"] = {"type": "STRING"}  # Gemini rejects ARRAY without items


def _describe(node: JsonObj, out: JsonObj, hints: list[str]) -> None:
    desc = node.get("description")
    desc = desc if isinstance(desc, str) else ""
    if hints:
        note = "; ".join(hints)
        desc = f"{desc} ({note})" if desc else note
    if desc:
        out["description"] = desc


def _merge_branch(node: JsonObj, branch: JsonObj) -> JsonObj:
    """The node with one anyOf/oneOf branch folded in; the node's own keys win."""
    merged = {k: v for k, v in branch.items() if k not in ("anyOf", "oneOf")}
    merged.update({k: v for k, v in node.items() if k not in ("anyOf", "oneOf")})
    if "type" in branch and "type" not in node:
        merged["type"] = branch["type"]
    return merged


def _merge_all_of(node: JsonObj, st: _GeminiState, hints: list[str]) -> JsonObj:
    """allOf branches merged into the node: properties united, required united, first value wins."""
    branches = node.get("allOf")
    if not isinstance(branches, list):
        return node
    out = {k: v for k, v in node.items() if k != "allOf"}
    props: JsonObj = dict(out["properties"]) if isinstance(out.get("properties"), dict) else {}
    required = _str_list(out.get("required"))
    for b in branches:
        if not isinstance(b, dict):
            continue
        b = _deref(_repair(b), st, hints)
        if isinstance(b.get("allOf"), list) and len(st.resolving) <= MAX_SCHEMA_DEPTH:
            b = _merge_all_of(b, st, hints)
        if isinstance(b.get("properties"), dict):
            for name, sub in b["properties"].items():
                props.setdefault(name, sub)
        if isinstance(b.get("required"), list):
            required += [r for r in b["required"] if isinstance(r, str) and r not in required]
        for k, v in b.items():
            if k not in ("properties", "required", "allOf"):
                out.setdefault(k, v)
    if props:
        out["properties"] = props
    if required:
        out["required"] = required
    return out


def _deref(node: JsonObj, st: _GeminiState, hints: list[str]) -> JsonObj:
    """Replace a local `$ref` by its target (sibling keys win), following ref chains. A ref already being
    expanded above this node (recursion) or one that cannot be resolved becomes a description hint.
    Resolved refs are pushed on `st.resolving`; the caller's frame pops them."""
    while "$ref" in node:
        ref = node.get("$ref")
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if not isinstance(ref, str):
            return rest
        name = ref.rsplit("/", 1)[-1]
        target = _resolve_pointer(st.root, ref)
        if target is None:
            hints.append(f"see {name}")
            return rest
        if ref in st.resolving or len(st.resolving) > MAX_SCHEMA_DEPTH:
            hints.append(f"recursive reference to {name}")
            return {k: v for k, v in rest.items() if k in ("description", "title")} or {"type": "object"}
        st.resolving.append(ref)
        node = {**_repair(target), **rest}
    return node


def _resolve_pointer(root: JsonObj, ref: str) -> JsonObj | None:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None  # remote refs are never fetched
    node: Any = root
    for raw in ref[2:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node if isinstance(node, dict) else None


__all__ = [
    "GEMINI_SCHEMA_KEYS",
    "GEMINI_TYPES",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "clean_gemini_json_schema",
    "from_gemini_schema",
    "strip_json_schema_meta",
    "to_anthropic_input_schema",
    "to_gemini_schema",
    "to_openai_strict_schema",
]

"""Validates Kubernetes objects against the server's own /openapi/v3 schemas (issue 19,
must-hold 3): every field the schema declares has the declared type, every `required` field
is present, and nothing is null where the schema does not allow it — what strict clients
(the Python client 37, Java, C#) insist on.

Usage: openapi_check.py OPENAPI_DIR FILE...
OPENAPI_DIR holds the v3 documents (`index.json` and one `<path with / as _>.json` per
group/version); each FILE is a JSON object, a list (`items`), or watch events, one per line.
Prints each violation as `<kind> <name>: <path>: <problem>` and exits 1 if there is any.
"""

import json
import os
import sys

# Types that carry Kubernetes' own string formats or free content.
FREE_FORM = ("int-or-string",)


def load_schemas(directory):
    by_gvk = {}
    schemas = {}
    for name in os.listdir(directory):
        if name == "index.json":
            continue
        with open(os.path.join(directory, name)) as f:
            doc = json.load(f)
        for def_name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[def_name] = schema
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                api_version = (gvk["group"] + "/" if gvk["group"] else "") + gvk["version"]
                by_gvk[(api_version, gvk["kind"])] = def_name
    return by_gvk, schemas


def resolve(schemas, schema):
    for _ in range(16):
        ref = schema.get("$ref") or (schema.get("allOf") or [{}])[0].get("$ref")
        if not ref:
            break
        schema = schemas[ref.rsplit("/", 1)[-1]]
    return schema


def check(schemas, schema, value, path, out):
    schema = resolve(schemas, schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if value is None:
        if not schema.get("nullable"):
            # Go writes a nil slice or map and a zero metav1.Time as null; only scalars and
            # structs must never be null.
            t = schema.get("type")
            if t in ("integer", "number", "boolean") or (
                    t == "string" and schema.get("format") not in ("date-time",)) or (
                    t == "object" and "properties" in schema):
                out.append(f"{path}: null where the schema wants {t}")
        return
    t = schema.get("type")
    if schema.get("format") in FREE_FORM or schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, (str, int)) and not isinstance(value, bool)
        if not ok:
            out.append(f"{path}: {value!r} is not an int-or-string")
        return
    if t == "string":
        if not isinstance(value, str):
            out.append(f"{path}: {value!r} is not a string")
    elif t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            out.append(f"{path}: {value!r} is not an integer")
    elif t == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.append(f"{path}: {value!r} is not a number")
    elif t == "boolean":
        if not isinstance(value, bool):
            out.append(f"{path}: {value!r} is not a boolean")
    elif t == "array":
        if not isinstance(value, list):
            out.append(f"{path}: {type(value).__name__} is not an array")
            return
        for i, item in enumerate(value):
            check(schemas, schema.get("items", {}), item, f"{path}[{i}]", out)
    elif t == "object" or "properties" in schema:
        if not isinstance(value, dict):
            out.append(f"{path}: {type(value).__name__} is not an object")
            return
        props = schema.get("properties")
        for field in schema.get("required", []):
            if props is not None and field not in value:
                out.append(f"{path}.{field}: required but absent")
        for key, child in value.items():
            if props is not None and key in props:
                check(schemas, props[key], child, f"{path}.{key}", out)
            elif isinstance(schema.get("additionalProperties"), dict):
                check(schemas, schema["additionalProperties"], child, f"{path}.{key}", out)


def objects_in(text):
    text = text.strip()
    if not text:
        return []
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    out = []
    for d in docs:
        if "type" in d and "object" in d and "kind" not in d:
            d = d["object"]
        out.append(d)
        if isinstance(d.get("items"), list):
            out.extend(d["items"])
    return out


def main():
    by_gvk, schemas = load_schemas(sys.argv[1])
    problems, checked, kinds = [], 0, set()
    for path in sys.argv[2:]:
        with open(path) as f:
            for obj in objects_in(f.read()):
                gvk = (obj.get("apiVersion"), obj.get("kind"))
                if obj.get("kind", "").endswith("List") and gvk not in by_gvk:
                    continue
                if gvk not in by_gvk:
                    problems.append(f"{gvk}: no schema in /openapi/v3")
                    continue
                out = []
                check(schemas, schemas[by_gvk[gvk]], obj, "", out)
                name = (obj.get("metadata") or {}).get("name", "")
                problems.extend(f"{gvk[1]} {name}: {p.lstrip('.')}" for p in out)
                checked += 1
                kinds.add(gvk)
    for p in problems:
        print(p)
    print(f"checked {checked} objects of {len(kinds)} kinds against /openapi/v3: "
          f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

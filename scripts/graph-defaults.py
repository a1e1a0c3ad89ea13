#!/usr/bin/env python3
"""Writes the table that tells configured values from "not configured" ones
in legacy Intune profiles and compliance policies.

    python3 scripts/graph-defaults.py [--graph DIR] [--out FILE] [--check]

reads `graph-intune-beta.json` and `graph-intune-v1.0.json` (the Graph schema
slices described in the graph folder's README; default `../shared/graph`
beside the checkout) and writes `crates/ringmaster-import/src/graph_defaults.txt`,
which the importer embeds. `--check` writes nothing and exits 1 when the file
is not what this script would write. Python 3 standard library only; the
output depends on the two inputs alone (sorted, no dates).

What is in the table
--------------------
Types: every type derived from `deviceConfiguration` or `deviceCompliancePolicy`
(legacy profiles, update rings, compliance policies), plus every complex type
their properties reach, and the types derived from those (an export names the
subtype in `@odata.type`). A type names its base (`type T : B`) and lists the
properties it declares; the reader resolves inheritance, so each inherited
property is written once. A property line gives its kind (bool, number,
string, enum:<name>, complex:<type>, list:<kind>, or entity for navigation
properties and entity-typed ones, which are not settings), `null` when Graph
may return null for it, and `default=<value>` when its description names a
default.

Enums: every enum those properties use, with `first=` (the member declared
first, value 0: what Graph returns for a non-nullable enum that was never set,
even where the enum declares a "not configured" member later; in the
securedworkstation PAW firewall profile, which leaves BitLocker alone, all four
configurationUsage TPM startup options read `blocked` = 0, not
`notConfigured` = 3), `unset=` (the members that mean "not configured") and
`flags`. `first=` is left out where v1.0 and beta declare different first
members.

How a member is found to mean "not configured" (`unset`)
-------------------------------------------------------
1. By name: notConfigured, notSet, userDefined, deviceDefault, browserDefault.
   Each of these names, wherever it occurs in the schema, is documented as
   "not configured", "no intent" or "device/browser default value".
2. By the member's own description: "no intent", "not configured",
   "no value configured", "do not use" (deviceThreatProtectionLevel.unavailable:
   "Default Value. Do not use."), "not set".
3. By a property's description: "<member> is the default value, no intent"
   (windowsUpdateForBusinessConfiguration.prereleaseFeatures).
4. Flags enums: the member whose value is 0 is the empty set
   (sharedPCAllowedAccountType.notConfigured, easServices.none).

Names considered and NOT taken as "not configured", because the schema shows
them as real choices or as states no admin sets: none (e.g.
localSecurityOptionsMinimumSessionSecurity.none, "no minimum"; taken only where
rule 2 or 4 says so), unknown and notApplicable (reported states),
default (macOSSoftwareUpdateBehavior.default is a behaviour),
windowsDefault ("reset to the Windows default" is an action),
notConfiguredOnly (a permission level), unknownFutureValue (never sent),
allAllowed ("Default value, allow all …": the default, but also what an admin
picks to allow everything; it is first, so the first-member rule covers it).

Defaults named in descriptions (`default=`)
-------------------------------------------
Numbers: "Default is 0", "default value is 15", "The default is 5",
"Default: 5", "100 = default", "0 (default)".
Enums: "Default: Manual.", "default value of basic", "Default value is
automatic", "<member> is the default": kept only when the word is a member.
Booleans are not read: a legacy toggle left "Not configured" is `false`,
whatever the description calls the device's own default.

Where the schema cannot decide (see the graph README): nothing says which
value a property had when nobody configured it. `first=` and `default=` are
therefore "may be not configured", never "is not configured".
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOTS = ("deviceConfiguration", "deviceCompliancePolicy")

UNSET_NAMES = {"notconfigured", "notset", "userdefined", "devicedefault", "browserdefault"}
UNSET_MEMBER_DOC = re.compile(
    r"no intent|not configured|no value configured|do not use|^not set", re.I
)
UNSET_PROPERTY_DOC = re.compile(r"(\w+) is the default value, no intent", re.I)

NUMBER_DEFAULT = [
    re.compile(r"\bdefault(?: value)? is:? (-?\d+(?:\.\d+)?)\b", re.I),
    re.compile(r"\bdefault: (-?\d+(?:\.\d+)?)\b", re.I),
    re.compile(r"\b(-?\d+(?:\.\d+)?) = default\b", re.I),
    re.compile(r"\b(-?\d+(?:\.\d+)?) \(default\)", re.I),
]
ENUM_DEFAULT = [
    re.compile(r"\bdefault(?: value)?(?: is| of|:)? ([A-Za-z][A-Za-z0-9]*)", re.I),
    re.compile(r"\b([A-Za-z][A-Za-z0-9]*) is the default\b", re.I),
]

SCALARS = {
    "Edm.Boolean": "bool",
    "Edm.Int16": "number",
    "Edm.Int32": "number",
    "Edm.Int64": "number",
    "Edm.Double": "number",
    "Edm.Single": "number",
    "Edm.Decimal": "number",
    "Edm.Byte": "number",
    "ts:number": "number",
}


def load(graph):
    beta = json.loads((graph / "graph-intune-beta.json").read_text(encoding="utf-8"))
    v1 = json.loads((graph / "graph-intune-v1.0.json").read_text(encoding="utf-8"))
    return beta, v1


def merged(beta, v1):
    """Beta, with what only v1.0 has added (a few properties).

    Enum member order differs between the two only where beta added members
    (checked below); beta's order is the one beta exports follow.
    """
    types = {n: dict(t, properties=list(t["properties"])) for n, t in beta["types"].items()}
    for name, t in v1["types"].items():
        if name not in types:
            types[name] = t
            continue
        have = {p["name"] for p in types[name]["properties"]}
        types[name]["properties"] += [p for p in t["properties"] if p["name"] not in have]
    enums = dict(beta["enums"])
    first_differs = set()
    for name, e in v1["enums"].items():
        if name not in enums:
            enums[name] = e
        elif e["members"] and enums[name]["members"] and e["members"][0][0] != enums[name]["members"][0][0]:
            first_differs.add(name)
    return types, enums, first_differs


def inner(t):
    return t[len("Collection("):-1] if t.startswith("Collection(") else t


def chain(types, name):
    out = []
    while name in types:
        out.append(name)
        name = types[name]["base"]
    return out


def scope(types, enums):
    """Root-derived types and the complex types they reach (with subtypes)."""
    derived = {}
    for n, t in types.items():
        if t["base"]:
            derived.setdefault(t["base"], []).append(n)
    keep = {n for n in types if any(r in chain(types, n) for r in ROOTS)}
    todo = sorted(keep)
    while todo:
        n = todo.pop()
        for c in chain(types, n):
            for p in types[c]["properties"]:
                ty = inner(p["type"])
                if p.get("nav") or ty not in types or types[ty]["kind"] != "complex":
                    continue
                stack = [ty]
                while stack:
                    x = stack.pop()
                    if x not in keep:
                        keep.add(x)
                        todo.append(x)
                    stack += derived.get(x, [])
    return keep


def kind(types, enums, p):
    t = p["type"]
    i = inner(t)
    if p.get("nav") or (i in types and types[i]["kind"] != "complex"):
        return "entity"  # a navigation target (assignments, statuses), not a setting
    if i in enums:
        k = f"enum:{i}"
    elif i in types:
        k = f"complex:{i}"
    else:
        k = SCALARS.get(i, "string")
    return f"list:{k}" if t.startswith("Collection(") else k


def unset_members(name, e, docs):
    names = [m for m, _ in e["members"]]
    notes = e.get("memberDescriptions") or {}
    out = []
    for m, value in e["members"]:
        if (
            m.lower() in UNSET_NAMES
            or UNSET_MEMBER_DOC.search(notes.get(m, ""))
            or (e.get("flags") and value == 0)
        ):
            out.append(m)
    for doc in docs:
        for hit in UNSET_PROPERTY_DOC.findall(doc):
            match = [m for m in names if m.lower() == hit.lower()]
            out += [m for m in match if m not in out]
    return [m for m in names if m in out]


def described_default(k, enums, doc):
    if not doc:
        return None
    if k == "number":
        for pat in NUMBER_DEFAULT:
            m = pat.search(doc)
            if m:
                return m.group(1)
    elif k.startswith("enum:"):
        members = {m.lower(): m for m, _ in enums[k[5:]]["members"]}
        for pat in ENUM_DEFAULT:
            for hit in pat.findall(doc):
                if hit.lower() in members:
                    return members[hit.lower()]
    return None


def render(beta, v1):
    types, enums, first_differs = merged(beta, v1)
    keep = scope(types, enums)
    lines = []
    used = {}
    # A type's base comes with it, so the reader can resolve every property.
    keep |= {c for n in keep for c in chain(types, n)}
    for n in sorted(keep):
        base = types[n]["base"]
        head = f"type {n}" + (f" : {base}" if base and base in types else "")
        lines.append(head)
        for p in sorted(types[n]["properties"], key=lambda p: p["name"]):
            pname = p["name"]
            k = kind(types, enums, p)
            doc = p.get("description") or ""
            e = k.removeprefix("list:")
            if e.startswith("enum:"):
                used.setdefault(e[5:], []).append(doc)
            parts = [f" {pname}", k]
            if k == "entity":
                lines.append(" ".join(parts))
                continue
            if p.get("nullable", True):
                parts.append("null")
            d = described_default(k, enums, doc)
            if d is not None:
                parts.append(f"default={d}")
            lines.append(" ".join(parts))
    enum_lines = []
    for n in sorted(used):
        e = enums[n]
        parts = [f"enum {n}"]
        if e["members"] and n not in first_differs:
            parts.append(f"first={e['members'][0][0]}")
        unset = unset_members(n, e, used[n])
        if unset:
            parts.append("unset=" + ",".join(unset))
        if e.get("flags"):
            parts.append("flags")
        enum_lines.append(" ".join(parts))
    src_b, src_v = beta["source"], v1["source"]
    header = [
        "# Generated by scripts/graph-defaults.py: do not edit.",
        "# Regenerate: python3 scripts/graph-defaults.py --graph ../shared/graph",
        f"# Sources: graph-intune-beta.json ({src_b.get('package', '?')}),"
        f" graph-intune-v1.0.json ({src_v.get('repo', '?')} @ {src_v.get('commit', '?')[:12]}).",
        "# enum <name> [first=<member declared first>] [unset=<members meaning not configured>] [flags]",
        "# type <name> [: <base>], then one line per property it declares (the base's are inherited):",
        "#  <property> <bool|number|string|enum:E|complex:T|list:…|entity> [null] [default=<named in its description>]",
        f"# {len(enum_lines)} enums, {len(keep)} types.",
    ]
    return "\n".join(header + enum_lines + lines) + "\n"


def main():
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", type=Path, default=repo.parent / "shared" / "graph")
    ap.add_argument(
        "--out", type=Path, default=repo / "crates/ringmaster-import/src/graph_defaults.txt"
    )
    ap.add_argument("--check", action="store_true", help="exit 1 if --out is out of date")
    a = ap.parse_args()
    try:
        beta, v1 = load(a.graph)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"graph-defaults: cannot read the schema in {a.graph}: {e}")
    text = render(beta, v1)
    if a.check:
        old = a.out.read_text(encoding="utf-8") if a.out.exists() else ""
        if old != text:
            sys.exit(f"graph-defaults: {a.out} is out of date; run scripts/graph-defaults.py")
        return
    a.out.write_text(text, encoding="utf-8")
    print(f"wrote {a.out} ({len(text):,} bytes)")


if __name__ == "__main__":
    main()

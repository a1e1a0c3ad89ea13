#!/usr/bin/env python3
"""Writes the table of settings-catalog settings that need a minimum (or
maximum) Windows version, or only some Windows editions.

    python3 scripts/setting-applicability.py [--defs FILE] [--out FILE] [--check]

reads the settings-catalog definitions dump
(`settings-catalog/intune-pm-settings-definitions-2025-03-12.json` in the
Graph folder, default `../shared/graph` beside the checkout) and writes
`crates/ringmaster-core/src/setting_versions.txt`, which the conflict analysis
embeds. `--check` writes nothing and exits 1 when the file is not what this
script would write. Python 3 standard library only; the output depends on
the input alone (sorted, no dates).

What is in the table
--------------------
One line per setting definition id (`ItemId`) of a Windows row whose
`MinSupportedVersion` or `MaxSupportedVersion` can exclude a Windows 10/11
device, or whose `Editions` list leaves out an edition family:
`<id> <min> <max> <editions>`, `-` where a bound or the list is absent.
Editions are letters, one per family of Graph's
`deviceManagementConfigurationWindowsSkus` (see EDITIONS below), sorted.

Left out, and why:
- a minimum at or below 10.0.10240, the first Windows 10 build: every Windows
  device Intune's settings catalog manages meets it;
- the minimum 88.8.88888 (the Azure Virtual Desktop watermarking settings):
  a placeholder no Windows build reaches, not a release;
- rows of other platforms (none carry a version in this dump).

- an empty `Editions` list: the catalog does not say, so nothing is judged;
- a list that names every family below: it excludes no edition.

The lists name families (`Windows Enterprise`), never the N editions or
other SKUs; ringmaster maps a device's SKU onto a family only where the SKU
certainly belongs to it (`applicability/settings.rs`). An edition name this
script does not know stops it, so a new family is never dropped silently.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEFS = (
    ROOT.parent
    / "shared/graph/settings-catalog/intune-pm-settings-definitions-2025-03-12.json"
)
DEFAULT_OUT = ROOT / "crates/ringmaster-core/src/setting_versions.txt"
FLOOR = (10, 0, 10240)
PLACEHOLDER = "88.8.88888"
# Catalog edition names -> one letter each, after Graph's
# deviceManagementConfigurationWindowsSkus members: H windowsHome,
# P windowsProfessional, E windowsEnterprise, D windowsEducation,
# I iotEnterprise, M windowsMultiSession, S surfaceHub,
# B holographicForBusiness, L holoLens, K holoLensEnterprise.
EDITIONS = {
    "windows home": "H",
    "windows professional": "P",
    "windows enterprise": "E",
    "windows education": "D",
    "iot enterprise": "I",
    "windows enterprise multisession": "M",
    "surface hub": "S",
    "holographic for business": "B",
    "hololens": "L",
    "hololens enterprise": "K",
}


def version(text, where):
    try:
        parts = tuple(int(p) for p in text.strip().split("."))
    except ValueError:
        sys.exit(f"{where}: version {text!r} is not dotted numbers")
    if not parts:
        sys.exit(f"{where}: empty version")
    return parts


def padded(v):
    return v + (0,) * (4 - len(v)) if len(v) < 4 else v


def build(defs_path):
    try:
        data = json.loads(defs_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        sys.exit(f"{defs_path}: {e}")
    rows = data.get("rows")
    if not isinstance(rows, list):
        sys.exit(f"{defs_path}: no `rows` list")
    lines = {}
    editions = set()
    for n, row in enumerate(rows):
        where = f"{defs_path.name}: rows[{n}]"
        item = row.get("ItemId")
        if not item:
            sys.exit(f"{where}: no ItemId")
        letters = set()
        for e in (row.get("Editions") or "").strip("[]").split(","):
            name = " ".join(e.split()).lower()
            if not name:
                continue
            if name not in EDITIONS:
                sys.exit(f"{where}: edition {e.strip()!r} is not in EDITIONS")
            editions.add(e.strip())
            letters.add(EDITIONS[name])
        lo = (row.get("MinSupportedVersion") or "").strip()
        hi = (row.get("MaxSupportedVersion") or "").strip()
        only = "".join(sorted(letters)) if letters and len(letters) < len(EDITIONS) else ""
        if not lo and not hi and not only:
            continue
        if row.get("Platform") != "Windows":
            print(f"skipped (not Windows): {item}", file=sys.stderr)
            continue
        if lo == PLACEHOLDER or (lo and padded(version(lo, where)) <= padded(FLOOR)):
            lo = ""
        if hi:
            version(hi, where)
        if not lo and not hi and not only:
            continue
        line = f"{item} {lo or '-'} {hi or '-'} {only or '-'}"
        if lines.get(item, line) != line:
            sys.exit(f"{where}: {item} listed twice with different versions")
        lines[item] = line
    head = [
        "# Generated by scripts/setting-applicability.py: do not edit.",
        "# Regenerate: python3 scripts/setting-applicability.py --defs "
        "../shared/graph/settings-catalog/" + defs_path.name,
        "# <setting definition id> <min Windows version or -> <max Windows version or ->"
        " <edition letters or ->",
    ]
    return "\n".join(head + sorted(lines.values())) + "\n", editions


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--defs", type=Path, default=DEFAULT_DEFS)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text, editions = build(args.defs)
    print("edition names seen: " + ", ".join(sorted(editions)))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run scripts/setting-applicability.py")
            sys.exit(1)
        return
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({text.count(chr(10)) - 3} settings)")


if __name__ == "__main__":
    main()

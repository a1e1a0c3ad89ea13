//! The Graph schema table for legacy profiles and compliance policies
//! (`graph_defaults.txt`, written by `scripts/graph-defaults.py` from the
//! Graph schema): each type's base and properties with their kinds, each
//! enum's first member and the members that mean "not configured".

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("graph_defaults.txt");

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Number,
    String,
    Enum(&'static str),
    Complex(&'static str),
    List(Box<Kind>),
    /// A navigation property (assignments, statuses): not a setting.
    Entity,
}

#[derive(Debug)]
pub(crate) struct Prop {
    pub kind: Kind,
    /// Graph may return null: an unset value reads as null, not as a default.
    pub nullable: bool,
    /// The default the property's description names.
    pub default: Option<&'static str>,
}

#[derive(Debug, Default)]
pub(crate) struct Enum {
    /// The member declared first (value 0): what Graph returns for a
    /// non-nullable property nobody set.
    pub first: Option<&'static str>,
    /// Members that mean "not configured".
    pub unset: Vec<&'static str>,
    /// A flags enum: values are comma-separated member lists.
    pub flags: bool,
}

impl Enum {
    pub fn is_unset(&self, member: &str) -> bool {
        self.unset.iter().any(|u| u.eq_ignore_ascii_case(member))
    }
}

#[derive(Debug, Default)]
struct Type {
    base: Option<&'static str>,
    props: HashMap<&'static str, Prop>,
}

#[derive(Debug, Default)]
pub(crate) struct Schema {
    types: HashMap<&'static str, Type>,
    enums: HashMap<&'static str, Enum>,
}

/// `#microsoft.graph.windows10GeneralConfiguration` → `windows10GeneralConfiguration`.
pub(crate) fn type_name(odata_type: &str) -> &str {
    odata_type
        .trim_start_matches('#')
        .trim_start_matches("microsoft.graph.")
}

impl Schema {
    /// Whether the table holds this type (`@odata.type` spelling accepted).
    pub fn has_type(&self, odata_type: &str) -> bool {
        self.types.contains_key(type_name(odata_type))
    }

    /// A property of a type or of one of its bases.
    pub fn prop(&self, odata_type: &str, name: &str) -> Option<&Prop> {
        let mut t = self.types.get(type_name(odata_type));
        while let Some(ty) = t {
            if let Some(p) = ty.props.get(name) {
                return Some(p);
            }
            t = ty.base.and_then(|b| self.types.get(b));
        }
        None
    }

    pub fn enumeration(&self, name: &str) -> Option<&Enum> {
        self.enums.get(name)
    }
}

/// The embedded table, read once.
pub(crate) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        parse(TABLE).unwrap_or_else(|e| panic!("graph_defaults.txt (generated): {e}"))
    })
}

fn kind(s: &'static str) -> Option<Kind> {
    Some(match s {
        "bool" => Kind::Bool,
        "number" => Kind::Number,
        "string" => Kind::String,
        "entity" => Kind::Entity,
        _ => {
            if let Some(e) = s.strip_prefix("enum:") {
                Kind::Enum(e)
            } else if let Some(t) = s.strip_prefix("complex:") {
                Kind::Complex(t)
            } else {
                Kind::List(Box::new(kind(s.strip_prefix("list:")?)?))
            }
        }
    })
}

fn parse(text: &'static str) -> Result<Schema, String> {
    let mut schema = Schema::default();
    let mut current: Option<&'static str> = None;
    for (n, line) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if line.starts_with(' ') {
            let t = current.ok_or_else(|| at("a property before any type"))?;
            let name = words.next().ok_or_else(|| at("no property name"))?;
            let kind = words
                .next()
                .and_then(kind)
                .ok_or_else(|| at("no known kind"))?;
            let mut p = Prop {
                kind,
                nullable: false,
                default: None,
            };
            for w in words {
                match w.split_once('=') {
                    None if w == "null" => p.nullable = true,
                    Some(("default", v)) => p.default = Some(v),
                    _ => return Err(at(&format!("unknown word '{w}'"))),
                }
            }
            schema.types.entry(t).or_default().props.insert(name, p);
            continue;
        }
        match words.next() {
            Some("type") => {
                let name = words.next().ok_or_else(|| at("a type without a name"))?;
                let base = match (words.next(), words.next()) {
                    (None, _) => None,
                    (Some(":"), Some(b)) => Some(b),
                    _ => return Err(at("expected `type <name> [: <base>]`")),
                };
                schema.types.entry(name).or_default().base = base;
                current = Some(name);
            }
            Some("enum") => {
                let name = words.next().ok_or_else(|| at("an enum without a name"))?;
                let mut e = Enum::default();
                for w in words {
                    match w.split_once('=') {
                        None if w == "flags" => e.flags = true,
                        Some(("first", v)) => e.first = Some(v),
                        Some(("unset", v)) => e.unset = v.split(',').collect(),
                        _ => return Err(at(&format!("unknown word '{w}'"))),
                    }
                }
                schema.enums.insert(name, e);
            }
            _ => return Err(at("expected `type`, `enum` or an indented property")),
        }
    }
    // Every name the table uses is in it.
    for (t, ty) in &schema.types {
        if let Some(b) = ty.base.filter(|b| !schema.types.contains_key(b)) {
            return Err(format!("type {t}: unknown base {b}"));
        }
        for (name, p) in &ty.props {
            let mut k = &p.kind;
            while let Kind::List(inner) = k {
                k = inner;
            }
            let known = match k {
                Kind::Enum(e) => schema.enums.contains_key(e),
                Kind::Complex(c) => schema.types.contains_key(c),
                _ => true,
            };
            if !known {
                return Err(format!("{t}.{name}: unknown type {k:?}"));
            }
        }
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_reads_and_holds_what_the_importer_relies_on() {
        let s = parse(TABLE).unwrap();
        let t = "#microsoft.graph.windows10EndpointProtectionConfiguration";
        let ep = |name: &str| s.prop(t, name).unwrap();
        let lm = ep("lanManagerAuthenticationLevel");
        assert_eq!(lm.kind, Kind::Enum("lanManagerAuthenticationLevel"));
        assert!(!lm.nullable);
        let e = s.enumeration("lanManagerAuthenticationLevel").unwrap();
        assert_eq!((e.first, e.unset.len()), (Some("lmAndNltm"), 0));
        // Inherited from deviceConfiguration.
        assert_eq!(ep("displayName").kind, Kind::String);
        assert_eq!(ep("groupAssignments").kind, Kind::Entity);
        assert_eq!(
            ep("firewallProfileDomain").kind,
            Kind::Complex("windowsFirewallNetworkProfile")
        );
        assert_eq!(
            ep("xboxServicesAccessoryManagementServiceStartupMode").default,
            Some("manual")
        );
        assert_eq!(ep("defenderScanMaxCpuPercentage").default, Some("50"));
        assert!(s.prop(t, "noSuchProperty").is_none());
        let threat = s.enumeration("deviceThreatProtectionLevel").unwrap();
        assert!(threat.is_unset("unavailable") && threat.is_unset("NOTSET"));
        assert!(!threat.is_unset("secured"));
        assert!(s.enumeration("sharedPCAllowedAccountType").unwrap().flags);
        assert!(s.has_type("windowsFirewallNetworkProfile"));
    }

    #[test]
    fn bad_lines_name_their_line() {
        for (text, want) in [
            (" x bool\n", "line 1: a property before any type"),
            ("type t\n x widget\n", "line 2: no known kind"),
            ("type t\n x bool maybe\n", "line 2: unknown word 'maybe'"),
            ("enum e first=a odd\n", "line 1: unknown word 'odd'"),
            ("table t\n", "line 1: expected `type`"),
            ("type t : \n", "line 1: expected `type <name> [: <base>]`"),
            ("type t : u\n", "type t: unknown base u"),
            ("type t\n x enum:e\n", "t.x: unknown type"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}

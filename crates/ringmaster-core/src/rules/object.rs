//! A one-row table built from an object written with the rule's own
//! property names, so an admin can test a rule before saving it.

use super::vocab::{self, Grammar, Kind, Object, Source};
use crate::column::MultiColumn;
use crate::lazy::Lazy;
use crate::model::{ASSIGNED_PLAN_FIELDS, DeviceAttr, DeviceMulti, UserAttr, canonical_bool};
use crate::org::Table;

/// A property value as the object file gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjValue {
    Null,
    Str(String),
    List(Vec<String>),
    Records(Vec<Vec<(String, String)>>),
}

/// Builds the single row; unknown properties and wrong shapes are errors.
pub fn one_row(
    grammar: Grammar,
    object: Object,
    fields: &[(String, ObjValue)],
) -> Result<Table, String> {
    let (scalars, mut multi) = match object {
        Object::User => (
            UserAttr::SCALARS,
            vec![
                MultiColumn::default(),
                MultiColumn::default(),
                MultiColumn::with_fields(ASSIGNED_PLAN_FIELDS),
            ],
        ),
        _ => (
            DeviceAttr::SCALARS,
            vec![MultiColumn::default(); DeviceMulti::COUNT],
        ),
    };
    let mut cols = vec![crate::column::DictColumn::default(); scalars];
    let mut ext = Vec::new();
    for (name, value) in fields {
        if vocab::extension(grammar, object).is_some() && vocab::is_extension_name(name) {
            let shape_err = || format!("{}.{name} takes a single string", object.prefix());
            let mut col = crate::column::DictColumn::default();
            match value {
                ObjValue::Null => {}
                ObjValue::Str(s) => {
                    col.set(0, Some(s));
                }
                _ => return Err(shape_err()),
            }
            ext.push((name.to_ascii_lowercase(), col));
            continue;
        }
        let prop = vocab::lookup(grammar, object, name).ok_or_else(|| {
            format!(
                "'{name}' is not a {} property in {grammar}",
                object.prefix()
            )
        })?;
        let shape_err = |want: &str| format!("{}.{} takes {want}", object.prefix(), prop.name);
        match prop.source {
            Source::Device(a) => set_scalar(&mut cols[a.index()], prop, value).map_err(|_| shape_err("a single value"))?,
            Source::User(a) => set_scalar(&mut cols[a.index()], prop, value).map_err(|_| shape_err("a single value"))?,
            Source::DeviceMulti(m) => set_multi(&mut multi[m.index()], value).map_err(|_| shape_err("a list of strings"))?,
            Source::UserMulti(m) if prop.kind == Kind::Records => {
                let ObjValue::Records(recs) = value else { return Err(shape_err("a list of objects")) };
                let rows = recs
                    .iter()
                    .map(|r| {
                        ASSIGNED_PLAN_FIELDS
                            .iter()
                            .map(|f| r.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)).map(|(_, v)| v.clone()))
                            .collect()
                    })
                    .collect();
                multi[m.index()].set_records(0, rows);
            }
            Source::UserMulti(m) => set_multi(&mut multi[m.index()], value).map_err(|_| shape_err("a list of strings"))?,
            Source::MemberOf => return Err("memberOf needs the directory's groups: use `ringmaster explain` on an imported organization".into()),
            Source::Extension | Source::Unbound => {}
        }
    }
    for c in &mut cols {
        c.finish(1);
    }
    for m in &mut multi {
        m.finish(1);
    }
    for (_, c) in &mut ext {
        c.finish(1);
    }
    Ok(Table {
        rows: 1,
        cols: cols.into_iter().map(Lazy::new).collect(),
        multi: multi.into_iter().map(Lazy::new).collect(),
        ext: ext.into_iter().map(|(n, c)| (n, Lazy::new(c))).collect(),
    })
}

fn set_scalar(
    col: &mut crate::column::DictColumn,
    prop: &vocab::Prop,
    v: &ObjValue,
) -> Result<(), ()> {
    let s = match v {
        ObjValue::Null => None,
        ObjValue::Str(s) => Some(s.as_str()),
        _ => return Err(()),
    };
    // Columns hold canonical values; the rule sees them as its grammar spells them.
    let canonical = s.map(|s| match (prop.kind, prop.vocab) {
        (Kind::Bool, _) => canonical_bool(s).unwrap_or(s),
        (_, Some(vocab)) => vocab
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(s))
            .map(|(_, c)| *c)
            .unwrap_or(s),
        _ => s,
    });
    // A word such as `Unknown` stands for no value.
    col.set(0, canonical.filter(|c| !c.is_empty()));
    Ok(())
}

fn set_multi(m: &mut MultiColumn, v: &ObjValue) -> Result<(), ()> {
    match v {
        ObjValue::Null => m.set(0, []),
        ObjValue::Str(s) => m.set(0, [s.as_str()]),
        ObjValue::List(items) => m.set(0, items.iter().map(String::as_str)),
        ObjValue::Records(_) => return Err(()),
    }
    Ok(())
}

//! How values are kept: times as Unix milliseconds (UTC), core types as
//! JSON, wave members as serialised roaring bitmaps, gate results as
//! versioned JSON. Reading a value back that does not parse is
//! [`StoreError::Corrupt`] naming where it was.

use crate::{GateResult, Result, StoreError};
use roaring::RoaringBitmap;

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A JSON column read back; `place` says which row it was (only built on error).
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    s: &str,
    place: impl FnOnce() -> String,
) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{}: {e} in `{s}`", place())))
}

/// A fresh random secret as hex (session ids, form keys).
pub(crate) fn secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Times are kept as milliseconds: they order and compare as numbers.
pub(crate) fn ms(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn from_ms(v: i64, place: impl FnOnce() -> String) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(v)
        .map_err(|e| StoreError::Corrupt(format!("{}: time {v}: {e}", place())))
}

pub(crate) fn bitmap_bytes(b: &RoaringBitmap) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.serialized_size());
    // Writing into a Vec cannot fail.
    let _ = b.serialize_into(&mut v);
    v
}

pub(crate) fn digest(text: &str) -> String {
    // Enough to tell plan texts apart.
    format!("{:016x}", ringmaster_core::fnv1a(text.bytes()))
}

/// The version of the gate result form written now. Rows written before
/// versions were kept have none and the same form.
const GATE_RESULT_VERSION: u64 = 1;

/// A gate result as stored: its serialised form with `"v": 1`.
pub(crate) fn gate_result_text(r: &GateResult) -> Result<String> {
    let mut v = serde_json::to_value(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("v".into(), GATE_RESULT_VERSION.into());
    }
    Ok(v.to_string())
}

/// A stored gate result read back: a form this build does not know, or a
/// record missing what its form needs, is an error, never a default.
pub(crate) fn gate_result(s: &str, place: impl FnOnce() -> String) -> Result<GateResult> {
    #[derive(serde::Deserialize)]
    struct Version {
        v: Option<u64>,
    }
    let corrupt = |why: String, place: String| {
        StoreError::Corrupt(format!("{place}: gate result {why} in `{s}`"))
    };
    match serde_json::from_str::<Version>(s) {
        Ok(Version { v: None })
        | Ok(Version {
            v: Some(GATE_RESULT_VERSION),
        }) => serde_json::from_str(s).map_err(|e| corrupt(e.to_string(), place())),
        Ok(Version { v: Some(v) }) => Err(corrupt(
            format!("of form {v}, newer than this build reads (form {GATE_RESULT_VERSION})"),
            place(),
        )),
        Err(e) => Err(corrupt(e.to_string(), place())),
    }
}

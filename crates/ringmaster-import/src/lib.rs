//! Reads an organization from exports: IntuneManagement-style folders,
//! IntuneCD backups (JSON or YAML), Microsoft Graph list pages
//! (`{"value": [...]}`) or NDJSON, and CSV.
//! What a file holds is told by `@odata.type`, then `@odata.context`, then
//! the file name, then the record's keys. A load is all or nothing: the
//! first bad record stops it with the file, record and field.
//!
//! - `decode`: byte-order-mark sniffing.
//! - `graph`: Graph record types and how each lands in the org.
//! - `csv`: the documented CSV column sets.
//! - `formats`: JSON with comments, CIPP templates, Graph PowerShell SDK
//!   objects, `.mobileconfig` profiles, Microsoft365DSC configurations and
//!   Graph JSON in PowerShell scripts, each read as Graph records.
//! - `intunecd`: IntuneCD's category folders, names in targets, its report.
//! - `settings`: setting leaves from policies; `graph_defaults`: the Graph
//!   schema table (generated) that tells legacy "not configured" values apart;
//!   `identity`: custom OMA-URIs and legacy properties keyed by the catalog
//!   id they write (a generated and a reviewed table).
//! - `snapshot`: an import written as one file and read back while its
//!   exports are unchanged.

mod csv;
mod decode;
mod formats;
pub mod graph;
mod graph_defaults;
mod identity;
mod intunecd;
mod settings;
pub mod snapshot;
mod templates;

use graph::{
    EntraDeviceRec, FieldError, FilterRec, GroupRec, Kind, ManagedDeviceRec, MemberRec, PolicyRec,
    UserRec,
};
use rayon::prelude::*;
use ringmaster_core::model::{Group, GroupKind, MemberKind, Members, Policy};
use ringmaster_core::org::Writes;
use ringmaster_core::org::{DeviceKey, NO_ROW, Org, OrgBuilder};
use ringmaster_core::progress::Progress;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest single file read, so a stray file cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// Where and why an import failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportError {
    pub file: PathBuf,
    /// 1-based record number within the file.
    pub record: Option<usize>,
    /// 1-based line, where the format has lines.
    pub line: Option<usize>,
    /// 1-based column, where the reader knows it (JSON syntax errors).
    pub column: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl ImportError {
    fn file(file: &Path, message: impl Into<String>) -> Self {
        ImportError {
            file: file.to_path_buf(),
            record: None,
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }
}

/// Where a record is, as every import message prints it:
/// `file:line:col, record N, field `x``; `file:line:col` as compilers print
/// it, so editors can jump there.
pub(crate) struct Place<'a> {
    pub file: &'a Path,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub record: Option<usize>,
    pub field: Option<&'a str>,
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(r) = self.record {
            write!(f, ", record {r}")?;
        }
        if let Some(x) = self.field {
            write!(f, ", field `{x}`")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = Place {
            file: &self.file,
            line: self.line,
            column: self.column,
            record: self.record,
            field: self.field.as_deref(),
        };
        write!(f, "{place}: {}", self.message)
    }
}

/// What was read, and what was passed over.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    /// Files or records of kinds ringmaster does not model, with the reason.
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileReport {
    pub path: String,
    pub records: usize,
    pub kinds: Vec<String>,
}

pub struct Loaded {
    pub org: Org,
    pub report: ImportReport,
}

#[derive(Default)]
struct State {
    b: OrgBuilder,
    groups: Vec<Group>,
    group_seen: HashMap<String, String>,
    members: MemberLists,
    /// Files that member records came from, indexed by the `u32` above.
    member_files: Vec<PathBuf>,
    filter_seen: HashMap<String, String>,
    /// Id and display name of every filter read, to resolve filter names.
    filters: Vec<(String, String)>,
    /// Policy key → (file, name) of the first record read.
    policy_seen: HashMap<String, (String, String)>,
    /// Held until every group and filter is read: targets may name them.
    policies: Vec<ReadPolicy>,
    reports: Vec<intunecd::Report>,
    /// Per device row, the Intune record that made it (file index in
    /// `member_files` << 32 | record), to name both when an id comes twice.
    managed_origin: Vec<u64>,
    report: ImportReport,
    progress: Option<Arc<Progress>>,
    /// Bytes of NDJSON per parse chunk.
    chunk: usize,
}

/// Member records as read, before their groups are known (a group's file
/// may come after its members'): one list per group and file, in the order
/// they were met.
#[derive(Default)]
struct MemberLists {
    /// (group id as written, file, members).
    lists: Vec<(String, u32, Members)>,
    /// Group id as written → its latest list.
    latest: rustc_hash::FxHashMap<String, usize>,
    /// The list the last member went to: exports list a group's members
    /// together.
    last: Option<usize>,
}

impl MemberLists {
    fn push(&mut self, group: &str, id: &str, kind: Option<MemberKind>, file: u32) {
        let same = |i: usize| self.lists[i].1 == file && self.lists[i].0 == group;
        if let Some(i) = (self.last.filter(|&i| same(i)))
            .or_else(|| self.latest.get(group).copied().filter(|&i| same(i)))
        {
            self.lists[i].2.push(id, kind);
            self.last = Some(i);
            return;
        }
        self.last = Some(self.lists.len());
        self.latest.insert(group.to_string(), self.lists.len());
        let mut members = Members::default();
        members.push(id, kind);
        self.lists.push((group.to_string(), file, members));
    }
}

/// A policy and where it was read.
struct ReadPolicy {
    policy: Policy,
    file: PathBuf,
    record: Option<usize>,
    line: Option<usize>,
    /// The IntuneCD category folder it came from.
    top: Option<&'static str>,
    /// Targets that name their group instead of giving its id.
    named: Vec<intunecd::NamedTarget>,
}

/// The real-world corpus beside the checkout (`../shared/corpus/<sub>`), which
/// tests and benchmarks read in place. `None` when it is missing; under
/// `CI=true` a missing corpus is a failure, so no test passes by skipping it.
pub fn corpus(sub: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus")
        .join(sub);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing at {}",
        p.display()
    );
    None
}

/// A file's text as exports store it: UTF-8, UTF-8 or UTF-16 with a byte-order mark.
pub fn export_text(p: &Path) -> Result<String, ImportError> {
    read_text(p)
}

/// Bytes as exports store text (UTF-8, UTF-8 or UTF-16 with a byte-order
/// mark) decoded, or why they cannot be.
pub fn decode_text(bytes: Vec<u8>) -> Result<String, String> {
    decode::text(bytes)
}

/// Loads every export below the given files or folders.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, ImportError> {
    load_inner(paths, None, CHUNK_BYTES)
}

/// [`load`], counting the bytes read into `progress` (then a "building"
/// step) for a display on another thread.
pub fn load_with(paths: &[PathBuf], progress: &Arc<Progress>) -> Result<Loaded, ImportError> {
    load_inner(paths, Some(progress.clone()), CHUNK_BYTES)
}

/// `chunk`: bytes of NDJSON per parse chunk (tests make it small).
fn load_inner(
    paths: &[PathBuf],
    progress: Option<Arc<Progress>>,
    chunk: usize,
) -> Result<Loaded, ImportError> {
    let mut files = Vec::new();
    let mut st = State {
        progress,
        chunk,
        ..State::default()
    };
    for p in paths {
        collect(p, &mut files, &mut st)?;
    }
    if files.is_empty() && st.report.skipped.is_empty() {
        let names: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ImportError::file(
            Path::new(&names.join(", ")),
            "no .json, .jsonc, .ndjson, .jsonl, .csv, .yaml, .ps1 or .mobileconfig files found",
        ));
    }
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .collect();
    if let Some(pr) = &st.progress {
        pr.begin("reading exports", "bytes", sizes.iter().sum());
    }
    let mut before = 0;
    for (f, size) in files.iter().zip(&sizes) {
        read_file(f, &mut st)?;
        before += size;
        if let Some(pr) = &st.progress {
            // NDJSON counted its chunks as it went; settle on the file's size.
            pr.set(before);
        }
    }
    if let Some(pr) = &st.progress {
        pr.begin("building the organization", "", 0);
    }
    finish(st)
}

/// Extensions ringmaster reads; anything else is skipped and listed.
fn readable(p: &Path) -> bool {
    matches!(
        ext(p).as_str(),
        "json" | "jsonc" | "ndjson" | "jsonl" | "csv" | "yaml" | "yml" | "ps1" | "mobileconfig"
    )
}

const NOT_READ: &str = "not a format ringmaster reads (.json, .jsonc, .ndjson, .jsonl, .csv, .yaml, .ps1, .mobileconfig)";

/// Folders deeper than this below a named source are not walked: no export
/// nests so deep, and a link farm would otherwise run on.
const MAX_DEPTH: usize = 64;

/// What a walk has met, so links cannot make it loop or read a file twice.
#[derive(Default)]
struct Walk {
    /// Canonical folders being walked, outermost first.
    open: Vec<PathBuf>,
    /// Canonical folders and files already taken.
    seen: std::collections::HashSet<PathBuf>,
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, st: &mut State) -> Result<(), ImportError> {
    let meta =
        std::fs::metadata(p).map_err(|e| ImportError::file(p, format!("cannot read: {e}")))?;
    let mut walk = Walk::default();
    if meta.is_dir() {
        return walk_dir(p, out, st, &mut walk);
    }
    // Named directly or met in a folder, a file of another kind is listed, never fatal:
    // an export folder holds READMEs, scripts and pictures beside the data.
    take_file(p, &meta, out, st, &mut walk);
    Ok(())
}

/// A regular file of a readable kind is taken once; anything else is listed.
fn take_file(
    p: &Path,
    meta: &std::fs::Metadata,
    out: &mut Vec<PathBuf>,
    st: &mut State,
    walk: &mut Walk,
) {
    let skip =
        |st: &mut State, why: &str| st.report.skipped.push(format!("{}: {why}", p.display()));
    if !meta.is_file() {
        // A FIFO, socket or device would block the read or never end.
        return skip(
            st,
            "not a regular file (a pipe, socket or device) and not read",
        );
    }
    if !readable(p) {
        return skip(st, NOT_READ);
    }
    let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if !walk.seen.insert(canonical) {
        return skip(
            st,
            "the same file as one already read (through a link) and not read again",
        );
    }
    out.push(p.to_path_buf());
}

fn walk_dir(
    p: &Path,
    out: &mut Vec<PathBuf>,
    st: &mut State,
    walk: &mut Walk,
) -> Result<(), ImportError> {
    let canonical =
        std::fs::canonicalize(p).map_err(|e| ImportError::file(p, format!("cannot read: {e}")))?;
    // A link to a folder the walk is inside (`up -> ..`, `/proc/self/root`)
    // would walk it again, and everything below it.
    if walk.open.iter().any(|o| o.starts_with(&canonical)) {
        st.report.skipped.push(format!(
            "{}: a link back to a folder it is inside (a loop) and not followed",
            p.display()
        ));
        return Ok(());
    }
    if !walk.seen.insert(canonical.clone()) {
        st.report.skipped.push(format!(
            "{}: the same folder as one already read (through a link) and not read again",
            p.display()
        ));
        return Ok(());
    }
    if walk.open.len() >= MAX_DEPTH {
        return Err(ImportError::file(
            p,
            format!(
                "folders nest deeper than {MAX_DEPTH} levels below the source; name a folder nearer the export"
            ),
        ));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| ImportError::file(p, format!("cannot list folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    walk.open.push(canonical);
    for e in entries {
        match std::fs::metadata(&e) {
            Ok(meta) if meta.is_dir() => walk_dir(&e, out, st, walk)?,
            Ok(meta) => take_file(&e, &meta, out, st, walk),
            Err(err) => st
                .report
                .skipped
                .push(format!("{}: cannot read ({err}), not read", e.display())),
        }
    }
    walk.open.pop();
    Ok(())
}

fn ext(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn read_text(p: &Path) -> Result<String, ImportError> {
    let meta =
        std::fs::metadata(p).map_err(|e| ImportError::file(p, format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ImportError::file(
            p,
            format!(
                "file is {} bytes; the limit is {MAX_FILE_BYTES}",
                meta.len()
            ),
        ));
    }
    // Files whose size the system does not know (/proc) are read up to the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(p)
        .and_then(|f| {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_FILE_BYTES + 1), &mut bytes)
        })
        .map_err(|e| ImportError::file(p, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImportError::file(
            p,
            format!("file is over the limit of {MAX_FILE_BYTES} bytes"),
        ));
    }
    decode::text(bytes).map_err(|m| ImportError::file(p, m))
}

/// Content ringmaster cannot tell is skipped with a note; content it can
/// tell but not parse stops the load.
fn read_file(p: &Path, st: &mut State) -> Result<(), ImportError> {
    if intunecd::category(p).is_some_and(|c| c.folder == intunecd::Folder::Archive) {
        st.report.skipped.push(format!(
            "{}: objects IntuneCD archived once they were removed from Intune are not read",
            p.display()
        ));
        return Ok(());
    }
    if let Some(read) = formats::read(p, st) {
        return read;
    }
    if matches!(ext(p).as_str(), "ndjson" | "jsonl") {
        return read_ndjson_stream(p, st);
    }
    let text = read_text(p)?;
    match ext(p).as_str() {
        "csv" => match csv::read(p, &text, st) {
            Err(e) if e.record.is_none() && e.message.starts_with("cannot tell") => {
                st.report.skipped.push(format!(
                    "{}: a CSV without the columns of users, devices or group members",
                    p.display()
                ));
                Ok(())
            }
            other => other,
        },
        "yaml" | "yml" => read_yaml(p, &text, st),
        _ => read_json(p, &text, st),
    }
}

fn stem_kind(p: &Path) -> Option<Kind> {
    let stem = p.file_stem()?.to_str()?;
    graph::kind_from_name(stem.split('.').next().unwrap_or(stem))
}

fn value_kind(v: &serde_json::Value, hint: Option<Kind>) -> Option<Kind> {
    let o = v.as_object()?;
    o.get("@odata.type")
        .and_then(|t| t.as_str())
        .and_then(graph::kind_from_type)
        .or_else(|| {
            o.get("@odata.context")
                .and_then(|c| c.as_str())
                .and_then(graph::kind_from_context)
        })
        .or(hint)
        .or_else(|| graph::kind_from_shape(o))
}

/// Parses a JSON file. IntuneManagement writes some files (an intent's
/// `_Settings.json`) as a JSON string holding the JSON: those decode twice.
fn parse_json(p: &Path, text: &str) -> Result<serde_json::Value, ImportError> {
    let syntax = |e: serde_json::Error, what: &str| ImportError {
        file: p.to_path_buf(),
        record: None,
        line: Some(e.line()),
        column: Some(e.column()),
        field: None,
        message: format!("not valid JSON{what}: {e}"),
    };
    let v: serde_json::Value = formats::jsonc::parse(text).map_err(|e| syntax(e, ""))?;
    match v {
        serde_json::Value::String(inner) if inner.trim_start().starts_with(['{', '[']) => {
            serde_json::from_str(&inner).map_err(|e| {
                syntax(
                    e,
                    " (in the JSON held by the file's string; line and column are within it)",
                )
            })
        }
        v => Ok(v),
    }
}

/// `<intent>_Settings.json` beside an intent export.
fn sidecar_of(intent: &Path) -> Option<PathBuf> {
    let stem = intent.file_stem()?.to_str()?;
    let side = intent.with_file_name(format!("{stem}_Settings.json"));
    side.is_file().then_some(side)
}

/// The intent export a `_Settings.json` belongs to, when it is there.
fn intent_of(sidecar: &Path) -> Option<PathBuf> {
    let name = sidecar.file_name()?.to_str()?;
    let stem = name
        .strip_suffix("_Settings.json")
        .or_else(|| name.strip_suffix("_settings.json"))?;
    let intent = sidecar.with_file_name(format!("{stem}.json"));
    intent.is_file().then_some(intent)
}

/// An intent's settings from its sidecar file (`{"settings": [...]}`).
fn sidecar_settings(side: &Path) -> Result<serde_json::Value, ImportError> {
    let text = read_text(side)?;
    match parse_json(side, &text)? {
        serde_json::Value::Object(mut o) => match o.remove("settings") {
            Some(s @ serde_json::Value::Array(_)) => Ok(s),
            _ => Err(ImportError::file(
                side,
                "an intent's settings file needs a `settings` array",
            )),
        },
        a @ serde_json::Value::Array(_) => Ok(a),
        _ => Err(ImportError::file(
            side,
            "an intent's settings file needs a `settings` array",
        )),
    }
}

/// An intent (endpoint security, security baseline) without inline settings
/// takes them from its `_Settings.json`, as IntuneManagement exports it.
fn attach_sidecar(p: &Path, item: &mut serde_json::Value) -> Result<(), ImportError> {
    let Some(o) = item.as_object_mut() else {
        return Ok(());
    };
    if !wants_sidecar(o) {
        return Ok(());
    }
    if let Some(side) = sidecar_of(p) {
        o.insert("settings".into(), sidecar_settings(&side)?);
    }
    Ok(())
}

/// An intent without settings of its own: they are in a sidecar file.
fn wants_sidecar(o: &serde_json::Map<String, serde_json::Value>) -> bool {
    let has_inline = ["settings", "settingsDelta"].iter().any(|k| {
        o.get(*k)
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty())
    });
    graph::is_intent(o) && !has_inline
}

/// An ADMX definition value: `enabled` and the definition it sets.
fn is_admx_definition(v: &serde_json::Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.contains_key("enabled")
            && (o.contains_key("definition@odata.bind") || o.contains_key("definition"))
    })
}

/// A bare array of ADMX `definitionValues` (as the PowerShell samples and
/// securedworkstation export them) is one administrative-templates policy
/// named by its file.
fn admx_array(p: &Path, items: &[serde_json::Value]) -> Option<serde_json::Value> {
    if items.is_empty() || !items.iter().all(is_admx_definition) {
        return None;
    }
    let name = p.file_stem()?.to_str()?.to_string();
    Some(serde_json::json!({
        "@odata.type": "#microsoft.graph.groupPolicyConfiguration",
        "displayName": name,
        "definitionValues": items,
    }))
}

fn read_json(p: &Path, text: &str, st: &mut State) -> Result<(), ImportError> {
    if text.len() >= st.chunk
        && let Some(read) = read_large_page(p, text, st)
    {
        return read;
    }
    let v = parse_json(p, text)?;
    read_value(p, v, st)
}

/// The keys a Graph page holds besides its items.
const PAGE_KEYS: [&str; 4] = ["@odata.context", "@odata.count", "@odata.nextLink", "value"];

/// What one item of a large page says about the whole file.
struct Probe {
    kind: Option<Kind>,
    /// A CIPP template or an SDK object, which `formats::graph_json` turns
    /// into Graph JSON.
    foreign: bool,
    /// An ADMX definition value (see [`admx_array`]).
    definition: bool,
    /// An intent whose settings would come from a sidecar file.
    sidecar: bool,
    report: bool,
}

/// Reads a large Graph page (`{"@odata.context": …, "value": [...]}`) or
/// array of plain Graph records item by item: each item's tree is made
/// and dropped on its own, where reading the file as one tree held them
/// all (2,000 settings-catalog policies, a 59 MB file, were a tree of
/// about 350 MB). `None` when the file is anything else (JSON with
/// comments, IntuneCD folders, intents, CIPP templates, SDK objects, ADMX
/// arrays, reports, wrappers): [`read_value`] reads it whole, as before,
/// and the records come out the same either way.
fn read_large_page(p: &Path, text: &str, st: &mut State) -> Option<Result<(), ImportError>> {
    use serde_json::value::RawValue;
    if intunecd::category(p).is_some() || intent_of(p).is_some() {
        return None;
    }
    let body = text.trim_start();
    let array = body.starts_with('[');
    let (items, context): (Vec<&RawValue>, Option<Kind>) = if array {
        (serde_json::from_str(text).ok()?, None)
    } else if body.starts_with('{') {
        let page: std::collections::BTreeMap<String, &RawValue> =
            serde_json::from_str(text).ok()?;
        if !page.keys().all(|k| PAGE_KEYS.contains(&k.as_str())) {
            return None;
        }
        let items = serde_json::from_str(page.get("value")?.get()).ok()?;
        let context = page
            .get("@odata.context")
            .and_then(|c| serde_json::from_str::<String>(c.get()).ok())
            .and_then(|c| graph::kind_from_context(&c));
        (items, context)
    } else {
        return None;
    };
    let hint = context.or_else(|| stem_kind(p));
    let probes: Vec<Option<Probe>> = items
        .par_iter()
        .enumerate()
        .map(|(i, raw)| {
            let v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
            let kind = value_kind(&v, hint);
            Some(Probe {
                kind,
                foreign: formats::is_foreign(&v),
                definition: is_admx_definition(&v),
                sidecar: kind == Some(Kind::Policy) && v.as_object().is_some_and(wants_sidecar),
                report: i == 0 && intunecd::is_report_entry(&v),
            })
        })
        .collect();
    let probes: Vec<Probe> = probes.into_iter().collect::<Option<_>>()?;
    let whole_file_reader = probes.iter().any(|q| q.foreign || q.sidecar)
        || (array && probes.first().is_some_and(|q| q.report))
        || (array && !probes.is_empty() && probes.iter().all(|q| q.definition));
    if whole_file_reader {
        return None;
    }
    let found = probes.into_iter().map(|q| q.kind).collect();
    let items = items.into_iter().map(Item::Text).collect();
    Some(read_items(p, items, found, true, None, st))
}

/// YAML holds the same objects as JSON (IntuneCD writes either). Folders
/// often hold YAML of other tools (pipelines, templates with their own tags,
/// several documents): outside IntuneCD's folders, YAML that does not parse
/// is skipped with a note; inside them it is an error.
fn read_yaml(p: &Path, text: &str, st: &mut State) -> Result<(), ImportError> {
    let v: serde_json::Value = match yaml_serde::from_str(text) {
        Ok(v) => v,
        Err(_) if intunecd::category(p).is_none() => {
            st.report.skipped.push(format!(
                "{}: YAML that does not parse as data is not read",
                p.display()
            ));
            return Ok(());
        }
        Err(e) => {
            return Err(ImportError {
                file: p.to_path_buf(),
                record: None,
                line: e.location().map(|l| l.line()),
                column: e.location().map(|l| l.column()),
                field: None,
                message: format!("not valid YAML: {e}"),
            });
        }
    };
    read_value(p, v, st)
}

fn read_value(p: &Path, v: serde_json::Value, st: &mut State) -> Result<(), ImportError> {
    if intunecd::is_report(&v) {
        return intunecd::read_report(p, v, st);
    }
    let Some(v) = formats::graph_json(p, v, st)? else {
        return Ok(());
    };
    if let Some(intent) = intent_of(p) {
        // Read with its intent (see `attach_sidecar`).
        if v.get("settings").is_some() || v.is_array() {
            st.report.files.push(FileReport {
                path: p.display().to_string(),
                records: 0,
                kinds: vec![format!("settings of {}", intent.display())],
            });
            return Ok(());
        }
    }
    if let serde_json::Value::Object(o) = &v
        && o.len() == 1
        && o.contains_key("settings")
    {
        st.report.skipped.push(format!(
            "{}: intent settings without their intent (expected the intent export beside it)",
            p.display()
        ));
        return Ok(());
    }
    let v = match v {
        serde_json::Value::Array(a) => match admx_array(p, &a) {
            Some(policy) => policy,
            None => serde_json::Value::Array(a),
        },
        v => v,
    };
    let cd = intunecd::category(p);
    // An IntuneCD folder says more than a file name, which is an object's.
    let stem = cd.and_then(|c| c.folder.hint()).or_else(|| stem_kind(p));
    // Pages, wrappers and arrays hold records; anything else is one record.
    let (items, hint, listed): (Vec<serde_json::Value>, Option<Kind>, bool) = match v {
        serde_json::Value::Array(a) => (a, stem, true),
        serde_json::Value::Object(mut o) => {
            let ctx = o
                .get("@odata.context")
                .and_then(|c| c.as_str())
                .and_then(graph::kind_from_context);
            if let Some(serde_json::Value::Array(a)) = o.remove("value") {
                (a, ctx.or(stem), true)
            } else if o.len() <= 3
                && let Some((k, a)) = o.iter_mut().find_map(|(k, v)| match v {
                    // A wrapper's items are records: objects with an id or a name
                    // (`{"policies": [{"key": …}]}` of Edge's own service is not one).
                    serde_json::Value::Array(items)
                        if items.iter().all(|i| {
                            i.as_object().is_some_and(|o| {
                                ["id", "displayName", "name", "@odata.type"]
                                    .iter()
                                    .any(|k| o.contains_key(*k))
                            })
                        }) =>
                    {
                        graph::kind_from_name(k).map(|kind| (kind, std::mem::take(v)))
                    }
                    _ => None,
                })
            {
                let serde_json::Value::Array(a) = a else {
                    unreachable!("matched an array")
                };
                (a, Some(k), true)
            } else {
                (vec![serde_json::Value::Object(o)], stem, false)
            }
        }
        _ => return Err(ImportError::file(p, "expected a JSON object or array")),
    };
    let found: Vec<Option<Kind>> = items
        .iter()
        .map(|v| match (value_kind(v, hint), cd.map(|c| c.folder)) {
            // Policies and the unknown in a folder of objects ringmaster does
            // not model are those objects; users, devices, groups are read.
            (None | Some(Kind::Policy), Some(intunecd::Folder::Unmodelled(what))) => {
                Some(Kind::Skip(what))
            }
            (kind, _) => kind,
        })
        .collect();
    let items = items.into_iter().map(Item::Tree).collect();
    read_items(p, items, found, listed, cd, st)
}

/// A record of a JSON file: its tree, or its text where a large page is
/// read item by item ([`read_large_page`]).
enum Item<'a> {
    Tree(serde_json::Value),
    Text(&'a serde_json::value::RawValue),
}

impl Item<'_> {
    /// The record as text, for [`Part::push`]. A text item is parsed and
    /// written again, as a tree would be, so both read the same.
    fn into_text(self) -> String {
        match self {
            Item::Tree(v) => v.to_string(),
            Item::Text(raw) => serde_json::from_str::<serde_json::Value>(raw.get())
                .map_or_else(|_| raw.get().to_string(), |v| v.to_string()),
        }
    }
}

/// Applies the items of a JSON file whose kinds are `found`: in order,
/// sidecars read and IntuneCD folders heeded, parsed on every core.
fn read_items(
    p: &Path,
    items: Vec<Item<'_>>,
    found: Vec<Option<Kind>>,
    listed: bool,
    cd: Option<intunecd::Category>,
    st: &mut State,
) -> Result<(), ImportError> {
    let mut kinds = Vec::new();
    let n = items.len();
    if found.iter().all(Option::is_none) {
        // Nothing here is a record ringmaster knows: the file is not an export it reads.
        st.report.skipped.push(format!(
            "{}: not an object ringmaster reads (no @odata.type it knows)",
            p.display()
        ));
        return Ok(());
    }
    // Prepared in order (sidecars read, IntuneCD folders heeded), parsed on
    // every core, applied in order: the first bad record is the one reported.
    let mut prepared: Vec<(Option<usize>, Kind, Item<'_>)> = Vec::new();
    let mut stop = None;
    for (i, (mut item, kind)) in items.into_iter().zip(found).enumerate() {
        let record = listed.then_some(i + 1);
        let Some(kind) = kind else {
            stop = Some(ImportError { file: p.to_path_buf(), record, line: None, column: None, field: None, message: "cannot tell what this record is: it has no @odata.type and no keys of a user, device, group, filter or policy, while other records in the file are".into() });
            break;
        };
        if let Kind::Skip(what) = kind {
            if !kinds.contains(&what.to_string()) {
                st.report
                    .skipped
                    .push(format!("{}: {what} are not modelled", p.display()));
            }
            kinds.push(what.to_string());
            continue;
        }
        // A large page read item by item has neither IntuneCD folders nor
        // intents waiting for a sidecar (`read_large_page` checks).
        if kind == Kind::Policy
            && let Item::Tree(item) = &mut item
        {
            let ready = attach_sidecar(p, item).and_then(|()| match cd {
                Some(c) => intunecd::prepare_policy(c.folder, item, p, !listed)
                    .map_err(|e| record_error(p, record, e)),
                None => Ok(()),
            });
            if let Err(e) = ready {
                stop = Some(e);
                break;
            }
        }
        if !kinds.contains(&kind.label().to_string()) {
            kinds.push(kind.label().to_string());
        }
        prepared.push((record, kind, item));
    }
    // One parser for every record: items of JSON files are small, so writing
    // them back to text costs little. Each item's tree is dropped once
    // written. Items whose text is at hand (a large page) go a window of
    // about `st.chunk` bytes at a time, so that the records made of them
    // (a policy's settings are trees until it is applied) are not all held
    // at once: 2,000 policies of 80 settings were 300 MB of records.
    let mut prepared = prepared.into_iter().peekable();
    while prepared.peek().is_some() {
        let mut window = Vec::new();
        let mut bytes = 0;
        while let Some(next) = prepared.next_if(|_| bytes < st.chunk.max(1)) {
            bytes += match &next.2 {
                Item::Text(raw) => raw.get().len(),
                // Trees come from files read whole: one window.
                Item::Tree(_) => 0,
            };
            window.push(next);
        }
        // Parts small enough to share a window between the cores.
        let part_len = window
            .len()
            .div_ceil(4 * rayon::current_num_threads())
            .clamp(1, PART_LINES);
        let records: Vec<Option<usize>> = window.iter().map(|(r, _, _)| *r).collect();
        let parts: Vec<Part> = (window.into_par_iter().chunks(part_len))
            .map(|items| {
                let mut part = Part::default();
                for (_, kind, item) in items {
                    part.push(kind, &item.into_text());
                }
                part
            })
            .collect();
        let mut batches = Vec::with_capacity(parts.len());
        for (part, records) in parts.into_iter().zip(records.chunks(part_len)) {
            batches.push(part.settle(st, p, |i| (records[i], None))?);
        }
        st.b.apply(batches);
    }
    if let Some(e) = stop {
        return Err(e);
    }
    kinds.dedup();
    st.report.files.push(FileReport {
        path: p.display().to_string(),
        records: n,
        kinds,
    });
    Ok(())
}

/// A record's error, with where the record is in its file.
fn record_error(p: &Path, record: Option<usize>, e: FieldError) -> ImportError {
    ImportError {
        file: p.to_path_buf(),
        record,
        line: None,
        column: None,
        field: Some(e.field).filter(|f| !f.is_empty()),
        message: e.message,
    }
}

/// Parses fast; only a failing record is parsed again to learn the field path.
fn de_str<'a, T: serde::Deserialize<'a>>(s: &'a str) -> Result<T, FieldError> {
    if let Ok(v) = serde_json::from_str(s) {
        return Ok(v);
    }
    let mut d = serde_json::Deserializer::from_str(s);
    serde_path_to_error::deserialize(&mut d).map_err(|e| {
        let field = e.path().to_string();
        FieldError {
            field: if field == "." {
                String::new()
            } else {
                field.trim_start_matches('.').to_string()
            },
            message: e.inner().to_string(),
        }
    })
}

/// A typed record of a kind without rows, parsed (possibly in parallel)
/// before it is applied in order. Users and devices go through [`Part`].
enum Parsed {
    Group(Box<GroupRec>),
    Filter(Box<FilterRec>),
    Policy(Box<PolicyRec>),
}

fn parse_line(kind: Kind, s: &str) -> Result<Parsed, FieldError> {
    Ok(match kind {
        Kind::Group => Parsed::Group(Box::new(de_str(s)?)),
        Kind::Filter => Parsed::Filter(Box::new(de_str(s)?)),
        Kind::Policy => Parsed::Policy(Box::new(de_str(s)?)),
        Kind::User | Kind::ManagedDevice | Kind::EntraDevice | Kind::GroupMember => {
            unreachable!("users, devices and members are parsed by Part::take")
        }
        Kind::Skip(_) => unreachable!("skipped before parsing"),
    })
}

/// Whose row a line names.
#[derive(Debug, Clone, Copy)]
enum RowKind {
    User,
    Managed,
    Entra,
}

/// A line as the parse leaves it.
enum ParsedLine {
    /// Only blanks: skipped like an empty line.
    Blank,
    NotUtf8,
    Record(Result<Parsed, FieldError>),
    /// A user or a device: its ids, as spans of [`Part::keys`]; its values
    /// are in [`Part::writes`], by the line's index.
    Row(RowKind, [(usize, usize); 2]),
    /// A group member: the group's id and the member's, as spans of
    /// [`Part::keys`] (ten million member lines need not be twenty million
    /// strings).
    Member([(usize, usize); 2], Option<MemberKind>),
}

/// Lines parsed together on one thread. The values of users and devices
/// are gathered as they are parsed, with the line's index in place of the
/// row (found later, in order): their text is read where it lies in the
/// line, and no record outlives its line.
#[derive(Default)]
struct Part {
    lines: Vec<ParsedLine>,
    writes: Writes,
    keys: String,
}

impl Part {
    fn key(&mut self, id: &str) -> (usize, usize) {
        let from = self.keys.len();
        self.keys.push_str(id);
        (from, self.keys.len())
    }

    fn device_keys(&mut self, keys: [DeviceKey<'_>; 2]) -> [(usize, usize); 2] {
        keys.map(|k| match k {
            DeviceKey::ObjectId(s) | DeviceKey::DeviceId(s) | DeviceKey::ManagedId(s) => {
                self.key(s)
            }
        })
    }

    /// Adds a line's bytes, as read.
    fn push_bytes(&mut self, kind: Kind, line: &[u8]) {
        let parsed = match std::str::from_utf8(line) {
            Err(_) => ParsedLine::NotUtf8,
            Ok(t) => match t.trim() {
                "" => ParsedLine::Blank,
                t => self.take(kind, t),
            },
        };
        self.lines.push(parsed);
    }

    /// Adds a record's text.
    fn push(&mut self, kind: Kind, text: &str) {
        let parsed = self.take(kind, text);
        self.lines.push(parsed);
    }

    fn take(&mut self, kind: Kind, text: &str) -> ParsedLine {
        let at = self.lines.len() as u32;
        let checked = |r: Result<(), FieldError>| r.err().map(|e| ParsedLine::Record(Err(e)));
        match kind {
            Kind::User => match de_str::<UserRec<'_>>(text) {
                Err(e) => ParsedLine::Record(Err(e)),
                Ok(u) => checked(u.check()).unwrap_or_else(|| {
                    let k = self.key(u.id());
                    u.write(at, &mut self.writes);
                    ParsedLine::Row(RowKind::User, [k, (0, 0)])
                }),
            },
            Kind::ManagedDevice => match de_str::<ManagedDeviceRec<'_>>(text) {
                Err(e) => ParsedLine::Record(Err(e)),
                Ok(d) => checked(d.check()).unwrap_or_else(|| {
                    let k = self.device_keys(d.keys());
                    d.write(at, &mut self.writes);
                    ParsedLine::Row(RowKind::Managed, k)
                }),
            },
            Kind::EntraDevice => match de_str::<EntraDeviceRec<'_>>(text) {
                Err(e) => ParsedLine::Record(Err(e)),
                Ok(d) => checked(d.check()).unwrap_or_else(|| {
                    let k = self.device_keys(d.keys());
                    d.write(at, &mut self.writes);
                    ParsedLine::Row(RowKind::Entra, k)
                }),
            },
            Kind::GroupMember => match de_str::<MemberRec<'_>>(text) {
                Err(e) => ParsedLine::Record(Err(e)),
                Ok(m) => match m.kind() {
                    Err(e) => ParsedLine::Record(Err(e)),
                    Ok(kind) => {
                        let ids = [self.key(&m.group_id), self.key(m.member_id.trim())];
                        ParsedLine::Member(ids, kind)
                    }
                },
            },
            _ => ParsedLine::Record(parse_line(kind, text)),
        }
    }

    /// In order: finds the row of each user and device and applies every
    /// other record; then its values go to those rows. `place(i)` says where
    /// line `i` is (record and line number), once for each line that is not
    /// blank.
    fn settle(
        mut self,
        st: &mut State,
        p: &Path,
        mut place: impl FnMut(usize) -> (Option<usize>, Option<usize>),
    ) -> Result<Writes, ImportError> {
        let mut rows = vec![NO_ROW; self.lines.len()];
        for (i, parsed) in self.lines.drain(..).enumerate() {
            let (record, line) = match parsed {
                ParsedLine::Blank => continue,
                _ => place(i),
            };
            let err = |e: FieldError| ImportError {
                file: p.to_path_buf(),
                record,
                line,
                column: None,
                field: Some(e.field).filter(|f| !f.is_empty()),
                message: e.message,
            };
            let key = |(a, b): (usize, usize)| &self.keys[a..b];
            match parsed {
                ParsedLine::Blank => {}
                ParsedLine::NotUtf8 => {
                    return Err(ImportError {
                        file: p.to_path_buf(),
                        record: None,
                        line,
                        column: None,
                        field: None,
                        message: "not valid UTF-8".into(),
                    });
                }
                ParsedLine::Record(r) => {
                    apply_parsed(st, r.map_err(err)?, p, record, line).map_err(err)?;
                }
                ParsedLine::Member([group, id], kind) => {
                    let file = member_file(st, p);
                    st.members.push(key(group), key(id), kind, file);
                }
                ParsedLine::Row(RowKind::User, [id, _]) => rows[i] = st.b.user(key(id)),
                ParsedLine::Row(RowKind::Managed, [id, aad]) => {
                    let row = (st.b)
                        .device(&[DeviceKey::ManagedId(key(id)), DeviceKey::DeviceId(key(aad))]);
                    note_origin(st, row as usize, p, record);
                    rows[i] = row;
                }
                ParsedLine::Row(RowKind::Entra, [id, device_id]) => {
                    rows[i] = (st.b).device(&[
                        DeviceKey::ObjectId(key(id)),
                        DeviceKey::DeviceId(key(device_id)),
                    ]);
                }
            }
        }
        let mut writes = self.writes;
        writes.place_rows(&rows);
        Ok(writes)
    }
}

/// Applies one record of a JSON file (or of a format turned into Graph
/// JSON): `record` and `line` say where it is.
fn apply(
    st: &mut State,
    kind: Kind,
    v: serde_json::Value,
    p: &Path,
    record: Option<usize>,
    line: Option<usize>,
) -> Result<(), ImportError> {
    // One parser for every record: items of JSON files are small, so writing
    // them back to text costs little.
    let mut part = Part::default();
    part.push(kind, &v.to_string());
    let writes = part.settle(st, p, |_| (record, line))?;
    st.b.apply(vec![writes]);
    Ok(())
}

/// Warns when an Intune device comes twice.
fn note_origin(st: &mut State, row: usize, p: &Path, record: Option<usize>) {
    let file = member_file(st, p);
    let here = (u64::from(file) << 32) | record.unwrap_or(1) as u64;
    if st.managed_origin.len() <= row {
        st.managed_origin.resize(row + 1, u64::MAX);
    }
    let first = std::mem::replace(&mut st.managed_origin[row], here);
    if first != u64::MAX {
        let name = |o: u64| {
            format!(
                "{}, record {}",
                st.member_files[(o >> 32) as usize].display(),
                o & 0xFFFF_FFFF
            )
        };
        st.report.warnings.push(format!(
            "{}: the same Intune device (by id or azureADDeviceId) as {}; the later record's values win",
            name(here),
            name(first)
        ));
    }
}

/// Applies a record that is not a user or a device. `record` and `line`
/// say where the record is, for messages about it once the load ends.
fn apply_parsed(
    st: &mut State,
    parsed: Parsed,
    p: &Path,
    record: Option<usize>,
    line: Option<usize>,
) -> Result<(), FieldError> {
    match parsed {
        Parsed::Group(g) => {
            let source = p.display().to_string();
            let group = g.into_group()?;
            let key = group.id.trim().to_ascii_lowercase();
            if let Some(first) = st.group_seen.get(&key) {
                st.report.warnings.push(format!(
                    "{source}: group '{}' ({}) was already read from {first}; this copy is ignored",
                    group.name, group.id
                ));
                return Ok(());
            }
            st.group_seen.insert(key, source);
            st.groups.push(group);
            Ok(())
        }
        Parsed::Filter(f) => {
            let source = p.display().to_string();
            let f = f.into_filter()?;
            let key = f.id.trim().to_ascii_lowercase();
            if let Some(first) = st.filter_seen.get(&key) {
                st.report.warnings.push(format!(
                    "{source}: filter '{}' was already read from {first}; this copy is ignored",
                    f.name
                ));
                return Ok(());
            }
            st.filter_seen.insert(key, source);
            st.filters.push((f.id.clone(), f.name.clone()));
            st.b.add_filter(f);
            Ok(())
        }
        Parsed::Policy(pol) => {
            let source = p.display().to_string();
            let named = pol.group_names()?;
            let mut pol = pol.into_policy(&source)?;
            let key = pol.id.trim().to_ascii_lowercase();
            if let Some((first, name)) = st.policy_seen.get(&key) {
                if name == &pol.name {
                    st.report.warnings.push(format!("{source}: policy '{}' ({}) was already read from {first}; this copy is ignored", pol.name, pol.id));
                    return Ok(());
                }
                // Templates copied and renamed keep their source's id: a
                // different name is a different policy, kept under its own key.
                let id = format!("{} ({})", pol.id, pol.name);
                st.report.warnings.push(format!("{source}: policy '{}' has the id {} of '{name}' read from {first}; it is kept as a separate policy with the id '{id}'", pol.name, pol.id));
                pol.id = id;
                if st.policy_seen.contains_key(&pol.id.to_ascii_lowercase()) {
                    return Err(FieldError {
                        field: "id".into(),
                        message: format!(
                            "policy '{}' is read twice with the reused id {}",
                            pol.name, key
                        ),
                    });
                }
            }
            st.policy_seen.insert(
                pol.id.trim().to_ascii_lowercase(),
                (source, pol.name.clone()),
            );
            st.policies.push(ReadPolicy {
                policy: pol,
                file: p.to_path_buf(),
                record,
                line,
                top: intunecd::category(p).map(|c| c.top),
                named,
            });
            Ok(())
        }
    }
}

/// Bytes per parse chunk: thousands of lines, enough to keep both cores
/// busy, and small enough that the chunks in flight (one read, one parsed,
/// one applied, with their values' copies) stay a small part of the peak:
/// at 1M devices 16 MB chunks cost 50–60 MB more than 4 MB ones.
const CHUNK_BYTES: usize = 4 << 20;

/// One chunk of whole lines, as read: (line number, start, end) of each
/// line that is not blank, ASCII blanks trimmed.
#[derive(Default)]
struct Chunk {
    text: Vec<u8>,
    lines: Vec<(usize, usize, usize)>,
}

/// Cuts a reader into chunks of whole lines, reusing the chunks' buffers.
struct LineReader {
    r: Box<dyn std::io::Read + Send>,
    /// Bytes to read per chunk (a chunk ends at the line break after).
    size: usize,
    /// The start of the line the last chunk's read ended in.
    carry: Vec<u8>,
    line_no: usize,
    started: bool,
    ended: bool,
}

impl LineReader {
    fn new(r: Box<dyn std::io::Read + Send>, size: usize) -> Self {
        LineReader {
            r,
            size: size.max(1),
            carry: Vec::new(),
            line_no: 0,
            started: false,
            ended: false,
        }
    }

    /// Reads the next chunk into `c`; it has no lines only at the end.
    fn next(&mut self, c: &mut Chunk) -> std::io::Result<()> {
        loop {
            self.fill(c)?;
            if !c.lines.is_empty() || (self.ended && self.carry.is_empty()) {
                return Ok(());
            }
        }
    }

    /// Reads a chunk into `c`, which may hold only blank lines.
    fn fill(&mut self, c: &mut Chunk) -> std::io::Result<()> {
        use std::io::Read;
        c.text.clear();
        c.lines.clear();
        c.text.append(&mut self.carry);
        loop {
            if !self.ended && c.text.len() < self.size {
                let want = (self.size - c.text.len()) as u64;
                if (&mut self.r).take(want).read_to_end(&mut c.text)? == 0 {
                    self.ended = true;
                }
                continue;
            }
            if self.ended {
                break;
            }
            // Full: the chunk ends at its last line break, the rest waits.
            if let Some(i) = memchr::memrchr(b'\n', &c.text) {
                self.carry.extend_from_slice(&c.text[i + 1..]);
                c.text.truncate(i + 1);
                break;
            }
            // One line longer than a chunk: read on until it ends.
            if (&mut self.r)
                .take(self.size as u64)
                .read_to_end(&mut c.text)?
                == 0
            {
                self.ended = true;
            }
        }
        let mut start = 0;
        if !self.started {
            self.started = true;
            if c.text.starts_with(&[0xEF, 0xBB, 0xBF]) {
                start = 3;
            }
        }
        let text = &c.text;
        let ends = memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len()));
        for end in ends {
            if start > text.len() {
                break;
            }
            if end == text.len() && start == end {
                break;
            }
            self.line_no += 1;
            let line = text[start..end].trim_ascii();
            if !line.is_empty() {
                let from = line.as_ptr() as usize - text.as_ptr() as usize;
                c.lines.push((self.line_no, from, from + line.len()));
            }
            start = end + 1;
        }
        Ok(())
    }
}

/// Reads NDJSON a chunk at a time: while one chunk is parsed in parallel
/// (and the next read), the previous one is applied in order, so the first
/// bad line is the one reported and nothing is half-applied (the caller
/// drops the builder).
fn read_ndjson_stream(p: &Path, st: &mut State) -> Result<(), ImportError> {
    let cannot = |e: std::io::Error| ImportError::file(p, format!("cannot read: {e}"));
    let file = std::fs::File::open(p).map_err(cannot)?;
    let mut lines = LineReader::new(Box::new(file), st.chunk);
    let mut cur = Chunk::default();
    lines.next(&mut cur).map_err(cannot)?;
    if cur.text.starts_with(&[0xFF, 0xFE]) || cur.text.starts_with(&[0xFE, 0xFF]) {
        // UTF-16 is rare for NDJSON: decode whole, then read as text.
        let text = read_text(p)?;
        lines = LineReader::new(Box::new(std::io::Cursor::new(text.into_bytes())), st.chunk);
        lines.next(&mut cur).map_err(cannot)?;
    }
    let Some(&(first_line, a, b)) = cur.lines.first() else {
        st.report.files.push(FileReport {
            path: p.display().to_string(),
            records: 0,
            kinds: Vec::new(),
        });
        return Ok(());
    };
    let first = std::str::from_utf8(&cur.text[a..b]).map_err(|_| ImportError {
        file: p.to_path_buf(),
        record: None,
        line: Some(first_line),
        column: None,
        field: None,
        message: "not valid UTF-8".into(),
    })?;
    let Some(kind) = ndjson_kind(p, first_line, first.trim(), st)? else {
        return Ok(());
    };
    expect_rows(st, p, kind, &cur);
    let mut records = 0usize;
    let mut spare = Chunk::default();
    let mut pending: Option<(Vec<usize>, Vec<Part>)> = None;
    loop {
        let done = cur.lines.is_empty();
        let ((parsed, read), applied) = rayon::join(
            || {
                let parsed: Vec<Part> = (cur.lines.par_chunks(PART_LINES))
                    .map(|lines| {
                        let mut part = Part::default();
                        for &(_, a, b) in lines {
                            part.push_bytes(kind, &cur.text[a..b]);
                        }
                        part
                    })
                    .collect();
                let read = if done { Ok(()) } else { lines.next(&mut spare) };
                (parsed, read)
            },
            || match pending.take() {
                Some((numbers, results)) => apply_chunk(p, st, &numbers, results, &mut records),
                None => Ok(()),
            },
        );
        applied?;
        if let Some(pr) = &st.progress {
            // Parsed now, applied with the next chunk: near enough to show.
            pr.add(cur.text.len() as u64);
        }
        if done {
            break;
        }
        read.map_err(cannot)?;
        pending = Some((cur.lines.iter().map(|l| l.0).collect(), parsed));
        std::mem::swap(&mut cur, &mut spare);
    }
    st.report.files.push(FileReport {
        path: p.display().to_string(),
        records,
        kinds: vec![kind.label().to_string()],
    });
    Ok(())
}

/// Makes room in the id columns for the users or devices a large file
/// holds, judged from its size and its first chunk: rows are found one by
/// one on one thread, and growing those columns by doubling was a good
/// part of that.
fn expect_rows(st: &mut State, p: &Path, kind: Kind, first: &Chunk) {
    let size = std::fs::metadata(p).map_or(0, |m| m.len()) as usize;
    if first.lines.is_empty() || first.text.is_empty() {
        return;
    }
    // At most what a file of one-byte lines could hold.
    let n = (size / first.text.len().max(1)).saturating_mul(first.lines.len());
    let n = n.min(size / 2);
    // Graph object ids are GUIDs.
    const ID: usize = 36;
    match kind {
        Kind::User => st.b.expect_users(n, ID),
        Kind::ManagedDevice => {
            st.b.expect_devices(n, ID, &[DeviceKey::ManagedId(""), DeviceKey::DeviceId("")]);
        }
        Kind::EntraDevice => {
            st.b.expect_devices(n, ID, &[DeviceKey::ObjectId(""), DeviceKey::DeviceId("")]);
        }
        _ => {}
    }
}

/// Lines parsed together on one thread.
const PART_LINES: usize = 1024;

fn apply_chunk(
    p: &Path,
    st: &mut State,
    numbers: &[usize],
    parts: Vec<Part>,
    records: &mut usize,
) -> Result<(), ImportError> {
    let mut batches = Vec::with_capacity(parts.len());
    for (part, numbers) in parts.into_iter().zip(numbers.chunks(PART_LINES)) {
        batches.push(part.settle(st, p, |i| {
            *records += 1;
            (Some(*records), Some(numbers[i]))
        })?);
    }
    // The chunk's values, each column on its own thread.
    st.b.apply(batches);
    Ok(())
}

/// What an NDJSON file holds: from its name, else from its first record.
/// `None` when a folder's file holds something else (skipped with a note).
fn ndjson_kind(
    p: &Path,
    line: usize,
    first: &str,
    st: &mut State,
) -> Result<Option<Kind>, ImportError> {
    let kind = match stem_kind(p) {
        Some(k) => k,
        None => {
            let v: serde_json::Value = serde_json::from_str(first).map_err(|e| ImportError {
                file: p.to_path_buf(),
                record: Some(1),
                line: Some(line),
                column: None,
                field: None,
                message: format!("not valid JSON: {e}"),
            })?;
            match value_kind(&v, None) {
                Some(k) => k,
                None => {
                    st.report.skipped.push(format!("{}: records that are not users, devices, groups, members, filters or policies (name the file users.ndjson, managedDevices.ndjson, devices.ndjson, groups.ndjson, groupMembers.ndjson, assignmentFilters.ndjson or policies.ndjson if they are)", p.display()));
                    return Ok(None);
                }
            }
        }
    };
    if let Kind::Skip(what) = kind {
        st.report
            .skipped
            .push(format!("{}: {what} are not modelled", p.display()));
        return Ok(None);
    }
    Ok(Some(kind))
}

fn member_file(st: &mut State, p: &Path) -> u32 {
    if st.member_files.last().map(PathBuf::as_path) != Some(p) {
        st.member_files.push(p.to_path_buf());
    }
    (st.member_files.len() - 1) as u32
}

fn finish(mut st: State) -> Result<Loaded, ImportError> {
    let index: HashMap<String, usize> = st
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (ringmaster_core::org::norm_id(&g.id).into_owned(), i))
        .collect();
    let mut orphans: HashMap<String, usize> = HashMap::new();
    for (gid, file, list) in std::mem::take(&mut st.members).lists {
        let file = st.member_files[file as usize].clone();
        match index.get(ringmaster_core::org::norm_id(&gid).as_ref()) {
            Some(&g) => match &mut st.groups[g].kind {
                GroupKind::Static { members } => members.append(list),
                GroupKind::Dynamic { .. } => {
                    *orphans.entry(format!("{}: member records for dynamic group '{}' are ignored (its rule decides)", file.display(), st.groups[g].name)).or_default() += list.len();
                }
            },
            None => {
                *orphans.entry(format!("{}: member records for group {gid}, which is not in the import, are ignored", file.display())).or_default() += list.len();
            }
        }
    }
    let mut orphans: Vec<_> = orphans.into_iter().collect();
    orphans.sort();
    for (msg, n) in orphans {
        st.report.warnings.push(format!("{msg} ({n})"));
    }
    intunecd::resolve(&mut st)?;
    for g in st.groups {
        st.b.add_group(g);
    }
    for p in st.policies {
        st.b.add_policy(p.policy);
    }
    st.b.cluster_devices();
    Ok(Loaded {
        org: st.b.finish(),
        report: st.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line number, text) of each line that is not blank, read whole.
    fn plain_lines(text: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let text = text.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(text);
        let mut parts: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        if parts.last().is_some_and(|l| l.is_empty()) {
            parts.pop();
        }
        (parts.into_iter().enumerate())
            .map(|(i, l)| (i + 1, l.trim_ascii().to_vec()))
            .filter(|(_, l)| !l.is_empty())
            .collect()
    }

    fn chunked_lines(text: &[u8], size: usize) -> Vec<(usize, Vec<u8>)> {
        let mut r = LineReader::new(Box::new(std::io::Cursor::new(text.to_vec())), size);
        let (mut out, mut c) = (Vec::new(), Chunk::default());
        loop {
            r.next(&mut c).unwrap();
            if c.lines.is_empty() {
                return out;
            }
            out.extend((c.lines.iter()).map(|&(n, a, b)| (n, c.text[a..b].to_vec())));
        }
    }

    #[test]
    fn chunks_of_any_size_give_the_same_lines() {
        let long = format!("{{\"id\":\"{}\"}}", "x".repeat(100));
        let texts: Vec<Vec<u8>> = vec![
            b"{\"a\":1}\n{\"b\":2}\n".to_vec(),
            b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n  \t\n{\"b\":2}".to_vec(),
            format!("\n\n{long}\n{{}}\n{long}\n\n").into_bytes(),
            b"one\ntwo\n\n\nthree\n \xC3\xA9 \nfour".to_vec(),
            Vec::new(),
            b"\n\n\n".to_vec(),
        ];
        for text in &texts {
            let want = plain_lines(text);
            for size in 1..=40 {
                assert_eq!(chunked_lines(text, size), want, "size {size} of {text:?}");
            }
            assert_eq!(chunked_lines(text, CHUNK_BYTES), want);
        }
    }

    fn org_bytes(l: &Loaded) -> (Vec<u8>, String) {
        (
            postcard::to_allocvec(&l.org).unwrap(),
            serde_json::to_string(&l.report).unwrap(),
        )
    }

    /// Small chunks apply in many batches, each column's writes from many
    /// threads: the organization comes out byte for byte as from one chunk.
    #[test]
    fn small_chunks_build_the_same_organization() {
        let d = tempfile::tempdir().unwrap();
        ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(400, 3)).unwrap();
        let paths = [d.path().to_path_buf()];
        let whole = load_inner(&paths, None, CHUNK_BYTES).unwrap();
        assert!(whole.org.devices.rows >= 400);
        for size in [1, 700, 20_000] {
            let small = load_inner(&paths, None, size).unwrap();
            assert!(
                org_bytes(&small) == org_bytes(&whole),
                "chunks of {size} bytes"
            );
        }
    }

    /// With chunks of one byte every JSON file is a "large" one: pages and
    /// arrays of plain records are read item by item, everything else
    /// whole. Real exports in every format come out the same either way.
    #[test]
    fn large_pages_read_item_by_item_as_whole_files() {
        let mut dirs = vec![
            "IntuneHydrationKit".to_string(),
            "OpenIntuneBaseline".to_string(),
        ];
        let Some(exports) = corpus("exports") else {
            return;
        };
        for e in std::fs::read_dir(&exports).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(format!("exports/{}", e.file_name().to_string_lossy()));
            }
        }
        dirs.sort();
        for dir in dirs {
            let Some(path) = corpus(&dir) else {
                continue;
            };
            let paths = [path];
            let whole = load_inner(&paths, None, CHUNK_BYTES);
            let items = load_inner(&paths, None, 1);
            match (whole, items) {
                (Ok(a), Ok(b)) => assert!(org_bytes(&a) == org_bytes(&b), "{dir}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{dir}"),
                (a, b) => panic!("{dir}: {:?} against {:?}", a.err(), b.err()),
            }
        }
    }

    /// The generated policies (one page of many settings-catalog policies)
    /// take the item-by-item path; a page of one CIPP template does not.
    #[test]
    fn a_generated_page_is_read_item_by_item() {
        let d = tempfile::tempdir().unwrap();
        ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(50, 3)).unwrap();
        let text = std::fs::read_to_string(d.path().join("configurationPolicies.json")).unwrap();
        let mut st = State {
            chunk: 1,
            ..State::default()
        };
        let path = d.path().join("configurationPolicies.json");
        assert!(read_large_page(&path, &text, &mut st).is_some_and(|r| r.is_ok()));
        assert!(!st.policies.is_empty());
        let cipp = r#"[{"Displayname":"x","RAWJson":"{}"}]"#;
        let mut st = State::default();
        assert!(read_large_page(&path, cipp, &mut st).is_none());
        let commented = "// a note\n{\"value\": []}";
        assert!(read_large_page(&path, commented, &mut st).is_none());
    }

    /// A line that is not UTF-8 is named by its number, whatever chunk it
    /// falls in, and records before it count as read.
    #[test]
    fn a_line_not_utf8_is_named_in_any_chunk() {
        let d = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        for i in 0..30 {
            text.extend(format!("{{\"id\":\"m{i}\",\"deviceName\":\"PC-{i}\"}}\n\n").into_bytes());
        }
        text.extend(b"{\"id\":\"m\xFF\"}\n{\"id\":\"last\"}\n");
        std::fs::write(d.path().join("managedDevices.ndjson"), &text).unwrap();
        for size in [1, 50, 333, CHUNK_BYTES] {
            let Err(e) = load_inner(&[d.path().to_path_buf()], None, size) else {
                panic!("a line that is not UTF-8 was read");
            };
            assert_eq!(
                (e.line, e.message.as_str()),
                (Some(61), "not valid UTF-8"),
                "size {size}"
            );
        }
    }
}

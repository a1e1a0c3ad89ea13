//! Column writes made apart from the columns. A record's row depends on
//! the ids met before it, so rows are found in order as records come; the
//! values then go to their columns, which are independent of each other:
//! records' values are gathered into [`Writes`] on any thread, and each
//! column takes its writes on a thread of its own. Within a column the
//! writes keep their order, so every code comes out as if each write had
//! been made at once.

use super::{DEVICE_KEYS, Table};
use crate::column::{DictColumn, MultiColumn};
use crate::model::{DeviceAttr, DeviceMulti, UserAttr, UserMulti};

/// One value: its row, where its text is, and whether it only fills a cell
/// no earlier write filled.
#[derive(Debug, Clone, Copy)]
struct Write {
    row: u32,
    if_empty: bool,
    from: usize,
    to: usize,
}

/// A list column's write for one row.
#[derive(Debug)]
enum ListWrite {
    /// Values `spans[from..to]`.
    Values { row: u32, from: usize, to: usize },
    /// Records of fields (`assignedPlans`).
    Records {
        row: u32,
        records: Vec<Vec<Option<String>>>,
    },
}

/// Writes to one table.
#[derive(Debug, Default)]
pub(super) struct Queue {
    text: String,
    /// By column index.
    scalar: Vec<Vec<Write>>,
    /// By index in `ext_names`.
    ext: Vec<Vec<Write>>,
    ext_names: Vec<String>,
    multi: Vec<Vec<ListWrite>>,
    spans: Vec<(usize, usize)>,
}

fn slot<T>(v: &mut Vec<Vec<T>>, i: usize) -> &mut Vec<T> {
    if v.len() <= i {
        v.resize_with(i + 1, Vec::new);
    }
    &mut v[i]
}

fn value(v: Option<&str>) -> Option<&str> {
    v.map(str::trim_ascii).filter(|v| !v.is_empty())
}

impl Queue {
    fn text(&mut self, v: &str) -> (usize, usize) {
        let from = self.text.len();
        self.text.push_str(v);
        (from, self.text.len())
    }

    pub(super) fn scalar(&mut self, col: usize, row: u32, v: &str, if_empty: bool) {
        let (from, to) = self.text(v);
        slot(&mut self.scalar, col).push(Write {
            row,
            if_empty,
            from,
            to,
        });
    }

    pub(super) fn ext(&mut self, name: &str, row: u32, v: &str) {
        let i = match (self.ext_names.iter()).position(|n| n.eq_ignore_ascii_case(name)) {
            Some(i) => i,
            None => {
                self.ext_names.push(name.to_string());
                self.ext_names.len() - 1
            }
        };
        let (from, to) = self.text(v);
        slot(&mut self.ext, i).push(Write {
            row,
            if_empty: false,
            from,
            to,
        });
    }

    pub(super) fn list<'a>(
        &mut self,
        col: usize,
        row: u32,
        values: impl IntoIterator<Item = &'a str>,
    ) {
        let from = self.spans.len();
        for v in values {
            let span = self.text(v);
            self.spans.push(span);
        }
        let to = self.spans.len();
        slot(&mut self.multi, col).push(ListWrite::Values { row, from, to });
    }

    pub(super) fn records(&mut self, col: usize, row: u32, records: Vec<Vec<Option<String>>>) {
        slot(&mut self.multi, col).push(ListWrite::Records { row, records });
    }

    fn is_empty(&self) -> bool {
        self.scalar.iter().all(Vec::is_empty)
            && self.ext.iter().all(Vec::is_empty)
            && self.multi.iter().all(Vec::is_empty)
    }
}

/// Makes the writes of `queues`, in that order, to `table`: each column on
/// a thread of its own.
pub(super) fn apply(table: &mut Table, queues: Vec<Queue>) {
    let queues: Vec<Queue> = queues.into_iter().filter(|q| !q.is_empty()).collect();
    if queues.is_empty() {
        return;
    }
    // Each column's writes, queue by queue: (queue, writes).
    let mut scalar: Vec<Vec<(usize, Vec<Write>)>> = Vec::new();
    let mut multi: Vec<Vec<(usize, Vec<ListWrite>)>> = Vec::new();
    let mut texts = Vec::with_capacity(queues.len());
    let mut spans = Vec::with_capacity(queues.len());
    let fixed = table.cols.len();
    for (k, q) in queues.into_iter().enumerate() {
        for (i, w) in q.scalar.into_iter().enumerate() {
            if !w.is_empty() {
                slot(&mut scalar, i).push((k, w));
            }
        }
        for (name, w) in q.ext_names.iter().zip(q.ext) {
            if !w.is_empty() {
                let i = fixed + table.ext_index(name);
                slot(&mut scalar, i).push((k, w));
            }
        }
        for (i, w) in q.multi.into_iter().enumerate() {
            if !w.is_empty() {
                slot(&mut multi, i).push((k, w));
            }
        }
        texts.push(q.text);
        spans.push(q.spans);
    }
    let (texts, spans) = (&texts, &spans);
    rayon::scope(|s| {
        let ext_cols = table.ext.iter_mut().map(|(_, c)| c);
        for (col, w) in table.cols.iter_mut().chain(ext_cols).zip(scalar) {
            if !w.is_empty() {
                s.spawn(move |_| values(col, &w, texts));
            }
        }
        for (col, w) in table.multi.iter_mut().zip(multi) {
            if !w.is_empty() {
                s.spawn(move |_| lists(col, w, spans, texts));
            }
        }
    });
}

fn values(col: &mut DictColumn, writes: &[(usize, Vec<Write>)], texts: &[String]) {
    col.set_all(writes.iter().flat_map(|(k, w)| {
        let text = &texts[*k];
        w.iter()
            .map(move |w| (w.row, &text[w.from..w.to], w.if_empty))
    }));
}

fn lists(
    col: &mut MultiColumn,
    writes: Vec<(usize, Vec<ListWrite>)>,
    spans: &[Vec<(usize, usize)>],
    texts: &[String],
) {
    for (k, w) in writes {
        let (text, spans) = (&texts[k], &spans[k]);
        for l in w {
            match l {
                ListWrite::Values { row, from, to } => {
                    col.set(row, spans[from..to].iter().map(|&(a, b)| &text[a..b]));
                }
                ListWrite::Records { row, records } => col.set_records(row, records),
            }
        }
    }
}

/// Values of users and devices gathered apart from the builder, to be made
/// in order with [`super::OrgBuilder::apply`]. Rows come from
/// [`super::OrgBuilder::user`] and [`super::OrgBuilder::device`], which also
/// set the id columns: those are never written here.
#[derive(Debug, Default)]
pub struct Writes {
    pub(super) users: Queue,
    pub(super) devices: Queue,
    /// Sign-ins: (device row, user id's span in `logon_text`, time).
    pub(super) logons: Vec<(u32, usize, usize, Option<jiff::Timestamp>)>,
    pub(super) logon_text: String,
}

impl Writes {
    /// Sets a user attribute; a missing or blank value sets nothing.
    pub fn set_user(&mut self, row: u32, attr: UserAttr, value_: Option<&str>) {
        debug_assert!(
            attr != UserAttr::ObjectId,
            "ids are set by OrgBuilder::user"
        );
        if let Some(v) = value(value_) {
            self.users.scalar(attr.index(), row, v, false);
        }
    }

    /// Sets a device attribute; a missing or blank value sets nothing.
    pub fn set_device(&mut self, row: u32, attr: DeviceAttr, value_: Option<&str>) {
        debug_assert!(
            !DEVICE_KEYS.contains(&attr),
            "ids are set by OrgBuilder::device"
        );
        if let Some(v) = value(value_) {
            self.devices.scalar(attr.index(), row, v, false);
        }
    }

    /// Sets a device attribute only where no earlier write gave it a value.
    pub fn set_device_if_empty(&mut self, row: u32, attr: DeviceAttr, value_: Option<&str>) {
        debug_assert!(
            !DEVICE_KEYS.contains(&attr),
            "ids are set by OrgBuilder::device"
        );
        if let Some(v) = value(value_) {
            self.devices.scalar(attr.index(), row, v, true);
        }
    }

    pub fn set_user_multi<'a>(
        &mut self,
        row: u32,
        attr: UserMulti,
        values: impl IntoIterator<Item = &'a str>,
    ) {
        self.users.list(attr.index(), row, values);
    }

    pub fn set_device_multi<'a>(
        &mut self,
        row: u32,
        attr: DeviceMulti,
        values: impl IntoIterator<Item = &'a str>,
    ) {
        self.devices.list(attr.index(), row, values);
    }

    pub fn set_user_records(
        &mut self,
        row: u32,
        attr: UserMulti,
        records: Vec<Vec<Option<String>>>,
    ) {
        self.users.records(attr.index(), row, records);
    }

    /// Sets a user's directory extension property (`extension_<app id>_<name>`).
    pub fn set_user_ext(&mut self, row: u32, name: &str, value_: &str) {
        if let Some(v) = value(Some(value_)) {
            self.users.ext(name, row, v);
        }
    }

    /// Sets a device's directory extension property (`extension_<app id>_<name>`).
    pub fn set_device_ext(&mut self, row: u32, name: &str, value_: &str) {
        if let Some(v) = value(Some(value_)) {
            self.devices.ext(name, row, v);
        }
    }

    /// As [`super::OrgBuilder::add_logon`].
    pub fn add_logon(&mut self, row: u32, user_id: &str, at: Option<jiff::Timestamp>) {
        let from = self.logon_text.len();
        self.logon_text.push_str(user_id);
        self.logons.push((row, from, self.logon_text.len(), at));
    }

    /// Bytes of text held, to know when to make them.
    pub fn size(&self) -> usize {
        self.users.text.len() + self.devices.text.len() + self.logon_text.len()
    }
}

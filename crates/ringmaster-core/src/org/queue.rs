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

    fn place_rows(&mut self, rows: &[u32]) {
        let ws = self.scalar.iter_mut().chain(&mut self.ext).flatten();
        ws.for_each(|w| w.row = rows[w.row as usize]);
        for l in self.multi.iter_mut().flatten() {
            match l {
                ListWrite::Values { row, .. } | ListWrite::Records { row, .. } => {
                    *row = rows[*row as usize];
                }
            }
        }
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
        self.device_value(row, attr, value_, false);
    }

    /// Sets a device attribute only where no earlier write gave it a value.
    pub fn set_device_if_empty(&mut self, row: u32, attr: DeviceAttr, value_: Option<&str>) {
        self.device_value(row, attr, value_, true);
    }

    fn device_value(&mut self, row: u32, attr: DeviceAttr, value_: Option<&str>, if_empty: bool) {
        debug_assert!(
            !DEVICE_KEYS.contains(&attr),
            "ids are set by OrgBuilder::device"
        );
        if let Some(v) = value(value_) {
            self.devices.scalar(attr.index(), row, v, if_empty);
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

    /// Writes gathered with an index in place of the row: write `i`'s row
    /// becomes `rows[i]`.
    pub fn place_rows(&mut self, rows: &[u32]) {
        self.users.place_rows(rows);
        self.devices.place_rows(rows);
        self.logons
            .iter_mut()
            .for_each(|l| l.0 = rows[l.0 as usize]);
    }

    /// Bytes of text held, to know when to make them.
    pub fn size(&self) -> usize {
        self.users.text.len() + self.devices.text.len() + self.logon_text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{DeviceKey, Org, OrgBuilder};
    use proptest::prelude::*;

    const DEVICES: u32 = 6;
    const ATTRS: [DeviceAttr; 3] = [DeviceAttr::Name, DeviceAttr::Model, DeviceAttr::OsVersion];

    #[derive(Debug, Clone)]
    enum Op {
        Set(usize, u32, u8),
        IfEmpty(usize, u32, u8),
        List(u32, Vec<u8>),
        Ext(bool, u32, u8),
        User(u32, u8),
        Logon(u32, u8),
    }

    /// Values with repeats, blanks and padding, so codes are shared and
    /// some writes set nothing.
    fn text(v: u8) -> String {
        match v % 8 {
            0 => "  ".into(),
            1 => format!(" v{} ", v % 3),
            n => format!("v{}", n % 5),
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        let row = 0..DEVICES;
        prop_oneof![
            (0..ATTRS.len(), row.clone(), any::<u8>()).prop_map(|(a, r, v)| Op::Set(a, r, v)),
            (0..ATTRS.len(), row.clone(), any::<u8>()).prop_map(|(a, r, v)| Op::IfEmpty(a, r, v)),
            (row.clone(), prop::collection::vec(any::<u8>(), 0..3))
                .prop_map(|(r, v)| Op::List(r, v)),
            (any::<bool>(), row.clone(), any::<u8>()).prop_map(|(n, r, v)| Op::Ext(n, r, v)),
            (0..3u32, any::<u8>()).prop_map(|(r, v)| Op::User(r, v)),
            (row, any::<u8>()).prop_map(|(r, v)| Op::Logon(r, v)),
        ]
    }

    fn write(w: &mut Writes, op: &Op) {
        match op {
            Op::Set(a, r, v) => w.set_device(*r, ATTRS[*a], Some(&text(*v))),
            Op::IfEmpty(a, r, v) => w.set_device_if_empty(*r, ATTRS[*a], Some(&text(*v))),
            Op::List(r, v) => {
                let v: Vec<String> = v.iter().map(|&x| text(x)).collect();
                w.set_device_multi(*r, DeviceMulti::PhysicalIds, v.iter().map(String::as_str));
            }
            // Two spellings of one property name.
            Op::Ext(n, r, v) => {
                let name = if *n {
                    "extension_ab_Site"
                } else {
                    "EXTENSION_AB_site"
                };
                w.set_device_ext(*r, name, &text(*v));
            }
            Op::User(r, v) => w.set_user(*r, UserAttr::Department, Some(&text(*v))),
            Op::Logon(r, v) => w.add_logon(*r, &format!("u{}", v % 4), None),
        }
    }

    fn builder() -> OrgBuilder {
        let mut b = OrgBuilder::new();
        for u in 0..3 {
            b.user(&format!("u{u}"));
        }
        for d in 0..DEVICES {
            b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
        }
        b
    }

    fn bytes(org: &Org) -> Vec<u8> {
        postcard::to_allocvec(org).unwrap()
    }

    proptest! {
        /// However writes are split between the builder's setters and
        /// batches, and whenever they are made, the organization comes out
        /// byte for byte as when each is made at once, in order.
        #[test]
        fn batches_make_the_same_organization(
            ops in prop::collection::vec(op(), 0..60),
            // Per op: 0 the setters, 1 the current batch, 2 a new batch, 3 make what is queued first.
            how in prop::collection::vec(0..4u8, 60),
        ) {
            let mut one = builder();
            for op in &ops {
                let mut w = Writes::default();
                write(&mut w, op);
                one.apply(vec![w]);
            }
            let mut split = builder();
            let mut batches: Vec<Writes> = Vec::new();
            for (op, &h) in ops.iter().zip(&how) {
                match h {
                    0 | 3 => {
                        // The setters' writes are made before any batch:
                        // batches already gathered go first.
                        if h == 3 || !batches.is_empty() {
                            split.apply(std::mem::take(&mut batches));
                        }
                        split.write_with(|w| write(w, op));
                    }
                    1 if !batches.is_empty() => write(batches.last_mut().unwrap(), op),
                    _ => {
                        let mut w = Writes::default();
                        write(&mut w, op);
                        batches.push(w);
                    }
                }
            }
            split.apply(batches);
            let (one, split) = (one.finish(), split.finish());
            prop_assert_eq!(bytes(&one), bytes(&split));
            // And the values are those the writes say, read plainly.
            for (i, &attr) in ATTRS.iter().enumerate() {
                for row in 0..DEVICES {
                    let mut want: Option<String> = None;
                    for op in &ops {
                        match op {
                            Op::Set(a, r, v) | Op::IfEmpty(a, r, v) if *a == i && *r == row => {
                                let v = text(*v).trim().to_string();
                                let fill = matches!(op, Op::Set(..)) || want.is_none();
                                if !v.is_empty() && fill {
                                    want = Some(v);
                                }
                            }
                            _ => {}
                        }
                    }
                    // Rows were numbered by a locality order: find the device by id.
                    let d = one.device_by_object_id(&format!("d{row}")).unwrap();
                    prop_assert_eq!(one.device(attr, d), want.as_deref());
                }
            }
        }
    }
}

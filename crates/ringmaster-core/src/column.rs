//! Columnar storage: every scalar property is a dictionary-encoded column,
//! so a rule predicate is evaluated once per distinct value, not once per row.

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

/// Code 0 is reserved for "no value" (null / missing property).
pub const NULL: u32 = 0;

/// Distinct strings of one column; index = code.
#[derive(Debug, Default, Clone)]
pub struct Dict {
    values: Vec<Box<str>>,
    index: FxHashMap<Box<str>, u32>,
}

impl Dict {
    pub fn new() -> Self {
        // Slot 0 stands for null so codes line up with `NULL`.
        Dict { values: vec!["".into()], index: FxHashMap::default() }
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.index.get(s) {
            return c;
        }
        let c = self.values.len() as u32;
        self.values.push(s.into());
        self.index.insert(s.into(), c);
        c
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }

    /// The string for a code; `None` for `NULL`.
    pub fn value(&self, code: u32) -> Option<&str> {
        if code == NULL { None } else { self.values.get(code as usize).map(|v| &**v) }
    }

    /// Number of codes including the null slot.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.len() <= 1
    }
}

/// One scalar property over all rows.
#[derive(Debug, Clone)]
pub struct DictColumn {
    pub codes: Vec<u32>,
    pub dict: Dict,
}

impl Default for DictColumn {
    fn default() -> Self {
        DictColumn { codes: Vec::new(), dict: Dict::new() }
    }
}

impl DictColumn {
    pub fn set(&mut self, row: u32, value: Option<&str>) {
        let r = row as usize;
        if self.codes.len() <= r {
            self.codes.resize(r + 1, NULL);
        }
        self.codes[r] = match value {
            Some(v) => self.dict.intern(v),
            None => NULL,
        };
    }

    pub fn get(&self, row: u32) -> Option<&str> {
        self.dict.value(self.code(row))
    }

    pub fn code(&self, row: u32) -> u32 {
        self.codes.get(row as usize).copied().unwrap_or(NULL)
    }

    /// Pads the column so it has exactly `rows` entries.
    pub fn finish(&mut self, rows: usize) {
        self.codes.resize(rows, NULL);
    }

    /// Rows whose code satisfies `hit[code]`, built by scanning the codes once.
    pub fn select(&self, hit: &[bool]) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        // Collect runs into a sorted buffer: far faster than inserting one by one.
        let mut buf = Vec::with_capacity(4096);
        for (row, &c) in self.codes.iter().enumerate() {
            if hit[c as usize] {
                buf.push(row as u32);
                if buf.len() == buf.capacity() {
                    out.append(buf.drain(..)).expect("rows are ascending");
                }
            }
        }
        out.append(buf).expect("rows are ascending");
        out
    }
}

/// A multi-valued property (e.g. `devicePhysicalIds`): each row holds a list
/// of codes into a shared dictionary of elements.
#[derive(Debug, Clone)]
pub struct MultiColumn {
    /// `offsets[row]..offsets[row + 1]` indexes into `items`.
    pub offsets: Vec<u32>,
    pub items: Vec<u32>,
    pub dict: Dict,
    /// For record lists (`assignedPlans`): the field values of each element code.
    pub records: Vec<Vec<Option<Box<str>>>>,
    pub fields: Vec<&'static str>,
    pending: Vec<(u32, Vec<u32>)>,
}

impl Default for MultiColumn {
    fn default() -> Self {
        MultiColumn {
            offsets: vec![0],
            items: Vec::new(),
            dict: Dict::new(),
            records: vec![Vec::new()],
            fields: Vec::new(),
            pending: Vec::new(),
        }
    }
}

impl MultiColumn {
    pub fn with_fields(fields: &[&'static str]) -> Self {
        MultiColumn { fields: fields.to_vec(), ..Default::default() }
    }

    /// Records the values of one row; rows may arrive in any order.
    pub fn set<'a>(&mut self, row: u32, values: impl IntoIterator<Item = &'a str>) {
        let codes = values.into_iter().map(|v| self.dict.intern(v)).collect();
        self.pending.push((row, codes));
    }

    /// Records a list of records; each record's key is its fields joined, so
    /// equal records share a code.
    pub fn set_records(&mut self, row: u32, records: Vec<Vec<Option<String>>>) {
        let mut codes = Vec::with_capacity(records.len());
        for rec in records {
            let key: String = rec
                .iter()
                .map(|f| f.as_deref().unwrap_or("\u{0}"))
                .collect::<Vec<_>>()
                .join("\u{1}");
            let before = self.dict.len();
            let code = self.dict.intern(&key);
            if self.dict.len() > before {
                self.records.push(rec.into_iter().map(|f| f.map(Into::into)).collect());
            }
            codes.push(code);
        }
        self.pending.push((row, codes));
    }

    /// Lays the pending rows out densely for `rows` rows.
    pub fn finish(&mut self, rows: usize) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(r, _)| *r);
        let mut offsets = Vec::with_capacity(rows + 1);
        let mut items = Vec::new();
        offsets.push(0u32);
        let mut it = pending.into_iter().peekable();
        for row in 0..rows as u32 {
            while let Some((r, _)) = it.peek() {
                if *r < row {
                    it.next();
                } else {
                    break;
                }
            }
            if let Some((r, _)) = it.peek()
                && *r == row
            {
                let (_, codes) = it.next().expect("peeked");
                items.extend(codes);
            }
            offsets.push(items.len() as u32);
        }
        self.offsets = offsets;
        self.items = items;
    }

    pub fn row(&self, row: u32) -> &[u32] {
        let r = row as usize;
        if r + 1 >= self.offsets.len() {
            return &[];
        }
        &self.items[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }

    pub fn values(&self, row: u32) -> impl Iterator<Item = &str> {
        self.row(row).iter().filter_map(|&c| self.dict.value(c))
    }

    /// The fields of a record element.
    pub fn record(&self, code: u32) -> &[Option<Box<str>>] {
        self.records.get(code as usize).map(|r| &r[..]).unwrap_or(&[])
    }

    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_column_select_and_nulls() {
        let mut c = DictColumn::default();
        c.set(0, Some("Sales"));
        c.set(2, Some("IT"));
        c.set(3, Some("Sales"));
        c.finish(5);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(3), Some("Sales"));
        let sales = c.dict.get("Sales").unwrap() as usize;
        let mut hit = vec![false; c.dict.len()];
        hit[sales] = true;
        assert_eq!(c.select(&hit).iter().collect::<Vec<_>>(), vec![0, 3]);
        hit[NULL as usize] = true;
        assert_eq!(c.select(&hit).iter().collect::<Vec<_>>(), vec![0, 1, 3, 4]);
    }

    #[test]
    fn multi_column_rows_out_of_order() {
        let mut m = MultiColumn::default();
        m.set(2, ["a", "b"]);
        m.set(0, ["b"]);
        m.finish(4);
        assert_eq!(m.values(0).collect::<Vec<_>>(), vec!["b"]);
        assert!(m.values(1).next().is_none());
        assert_eq!(m.values(2).collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(m.values(3).next().is_none());
    }
}

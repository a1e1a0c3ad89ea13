//! A column's codes, one per row, each as wide as the column's largest
//! code needs: most device properties have a handful of values, and four
//! bytes a row for each of forty columns were a third of a million-device
//! organization, in memory and in its snapshot.

use crate::lazy::Slab;

/// Codes in one byte, two or four. The width follows the largest code
/// written, so it only grows; it never depends on the order of writes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Codes {
    U8(Slab<u8>),
    U16(Slab<u16>),
    U32(Slab<u32>),
}

impl Default for Codes {
    fn default() -> Self {
        Codes::U8(Slab::default())
    }
}

/// Applies `$body` to the codes slice `$c` of a [`ColumnView`] whatever
/// their width: one copy of a loop per width, each as tight as on `u32`.
#[macro_export]
macro_rules! each_width {
    ($view:expr, $c:ident => $body:expr) => {
        match $view {
            $crate::column::ColumnView::U8($c) => $body,
            $crate::column::ColumnView::U16($c) => $body,
            $crate::column::ColumnView::U32($c) => $body,
        }
    };
}

/// A column's codes read whole, for passes over many rows: see
/// [`crate::column::DictColumn::view`].
#[derive(Debug, Clone, Copy)]
pub enum ColumnView<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl<'a> ColumnView<'a> {
    /// The row's code; `NULL` past the end.
    #[inline]
    pub fn code(&self, row: u32) -> u32 {
        self.get(row as usize).unwrap_or(super::NULL)
    }

    /// The row's code; `None` past the end.
    #[inline]
    pub fn get(&self, row: usize) -> Option<u32> {
        match self {
            ColumnView::U8(c) => c.get(row).map(|&x| u32::from(x)),
            ColumnView::U16(c) => c.get(row).map(|&x| u32::from(x)),
            ColumnView::U32(c) => c.get(row).copied(),
        }
    }

    pub fn len(&self) -> usize {
        each_width!(self, c => c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every row's code in order.
    pub fn iter(self) -> CodeIter<'a> {
        match self {
            ColumnView::U8(c) => CodeIter::U8(c.iter()),
            ColumnView::U16(c) => CodeIter::U16(c.iter()),
            ColumnView::U32(c) => CodeIter::U32(c.iter()),
        }
    }
}

/// The codes of a [`ColumnView`] as `u32`s, in row order.
#[derive(Debug, Clone)]
pub enum CodeIter<'a> {
    U8(std::slice::Iter<'a, u8>),
    U16(std::slice::Iter<'a, u16>),
    U32(std::slice::Iter<'a, u32>),
}

impl Iterator for CodeIter<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        match self {
            CodeIter::U8(i) => i.next().map(|&x| u32::from(x)),
            CodeIter::U16(i) => i.next().map(|&x| u32::from(x)),
            CodeIter::U32(i) => i.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            CodeIter::U8(i) => i.size_hint(),
            CodeIter::U16(i) => i.size_hint(),
            CodeIter::U32(i) => i.size_hint(),
        }
    }
}

impl ExactSizeIterator for CodeIter<'_> {}

impl<'a> From<&'a [u32]> for ColumnView<'a> {
    fn from(codes: &'a [u32]) -> Self {
        ColumnView::U32(codes)
    }
}

/// The width that holds `code`: 1, 2 or 4 bytes.
#[inline]
fn width(code: u32) -> u8 {
    match code {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        _ => 4,
    }
}

impl Codes {
    #[inline]
    fn width(&self) -> u8 {
        match self {
            Codes::U8(_) => 1,
            Codes::U16(_) => 2,
            Codes::U32(_) => 4,
        }
    }

    /// The codes rewritten `w` bytes wide (each code fits it).
    fn set_width(&mut self, w: u8) {
        if w == self.width() {
            return;
        }
        let all = self.view().iter();
        *self = match w {
            1 => Codes::U8(all.map(|x| x as u8).collect()),
            2 => Codes::U16(all.map(|x| x as u16).collect()),
            _ => Codes::U32(all.collect()),
        };
    }

    /// Makes the codes wide enough to hold `code`.
    #[inline]
    fn widen(&mut self, code: u32) {
        if width(code) > self.width() {
            self.set_width(width(code));
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Codes::U8(s) => s.len(),
            Codes::U16(s) => s.len(),
            Codes::U32(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row's code, reading only its chunk of a stored column.
    pub fn at(&self, row: usize) -> Option<u32> {
        match self {
            Codes::U8(s) => s.at(row).map(u32::from),
            Codes::U16(s) => s.at(row).map(u32::from),
            Codes::U32(s) => s.at(row),
        }
    }

    /// Every code at hand (a stored column checked once).
    pub fn view(&self) -> ColumnView<'_> {
        match self {
            Codes::U8(s) => ColumnView::U8(s),
            Codes::U16(s) => ColumnView::U16(s),
            Codes::U32(s) => ColumnView::U32(s),
        }
    }

    /// Sets row `row`'s code, padding with `NULL` up to it.
    #[inline]
    pub fn set(&mut self, row: usize, code: u32) {
        self.widen(code);
        fn put<T: bytemuck::Pod + Default>(s: &mut Slab<T>, row: usize, v: T) {
            let v_ = s.make_mut();
            if v_.len() <= row {
                v_.resize(row + 1, T::default());
            }
            v_[row] = v;
        }
        match self {
            Codes::U8(s) => put(s, row, code as u8),
            Codes::U16(s) => put(s, row, code as u16),
            Codes::U32(s) => put(s, row, code),
        }
    }

    /// Exactly `rows` codes, padded with `NULL`.
    pub fn resize(&mut self, rows: usize) {
        match self {
            Codes::U8(s) => s.make_mut().resize(rows, 0),
            Codes::U16(s) => s.make_mut().resize(rows, 0),
            Codes::U32(s) => s.make_mut().resize(rows, 0),
        }
    }

    /// Room for `rows` more codes of up to `largest`.
    pub fn reserve(&mut self, rows: usize, largest: u32) {
        self.widen(largest);
        match self {
            Codes::U8(s) => s.make_mut().reserve(rows),
            Codes::U16(s) => s.make_mut().reserve(rows),
            Codes::U32(s) => s.make_mut().reserve(rows),
        }
    }

    /// Replaces each code `c` by `to[c]`, in place: `to` only merges codes
    /// into smaller ones, so every code still fits the width.
    pub fn remap(&mut self, to: &[u32]) {
        match self {
            Codes::U8(s) => s
                .make_mut()
                .iter_mut()
                .for_each(|c| *c = to[*c as usize] as u8),
            Codes::U16(s) => s
                .make_mut()
                .iter_mut()
                .for_each(|c| *c = to[*c as usize] as u16),
            Codes::U32(s) => s.make_mut().iter_mut().for_each(|c| *c = to[*c as usize]),
        }
    }

    /// Gives the codes the width `largest` needs, so that a column's width
    /// depends on its dictionary alone, not on the writes that made it
    /// (merging duplicates leaves fewer codes than were written).
    pub fn fit(&mut self, largest: u32) {
        self.set_width(width(largest));
    }

    /// Moves row `order[i]` to row `i`.
    pub fn permute(&mut self, order: &[u32]) {
        fn moved<T: bytemuck::Pod>(s: &[T], order: &[u32]) -> Slab<T> {
            order.iter().map(|&r| s[r as usize]).collect()
        }
        *self = match self.view() {
            ColumnView::U8(s) => Codes::U8(moved(s, order)),
            ColumnView::U16(s) => Codes::U16(moved(s, order)),
            ColumnView::U32(s) => Codes::U32(moved(s, order)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_widen_as_their_largest_grows_and_keep_every_value() {
        let mut c = Codes::default();
        let mut want = Vec::new();
        for (row, code) in [(3usize, 7u32), (0, 255), (5, 256), (1, 65_535), (9, 65_536)] {
            c.set(row, code);
            if want.len() <= row {
                want.resize(row + 1, 0);
            }
            want[row] = code;
            assert_eq!(c.view().iter().collect::<Vec<_>>(), want);
        }
        assert_eq!(c.width(), 4);
        let fitted = |codes: Vec<u32>| {
            let largest = codes.iter().copied().max().unwrap_or(0);
            let mut c = Codes::U32(Slab::new(codes));
            c.fit(largest);
            c
        };
        assert_eq!(fitted(vec![0, 200]).width(), 1);
        assert_eq!(fitted(vec![300, 2]).width(), 2);
        assert_eq!(c.at(9), Some(65_536));
        assert_eq!(c.at(10), None);
        assert_eq!(c.view().code(10), crate::column::NULL);
        c.permute(&[9, 0, 5]);
        assert_eq!(c.view().iter().collect::<Vec<_>>(), vec![65_536, 255, 256]);
    }
}

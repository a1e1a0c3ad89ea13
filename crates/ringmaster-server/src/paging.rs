//! Lists that grow with the fleet come a page at a time: the API's list
//! routes take `offset` and `limit` (bounded) and say the total in the
//! `x-total-count` header; the dashboard's list pages show at most
//! [`PAGE`] rows with previous/next links and the total.

use minijinja::{Value, context};
use serde::Deserialize;
use utoipa::IntoParams;

/// Rows on a dashboard page, and the API's default page.
pub(crate) const PAGE: usize = 100;
/// The most rows one API call returns.
pub(crate) const MOST: usize = 1000;
/// The header that carries a list's total.
pub(crate) const TOTAL: &str = "x-total-count";

/// Which part of a list: skip `offset` items, return up to `limit`.
#[derive(Debug, Default, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Window {
    /// Items to skip (default 0).
    #[serde(default)]
    pub(crate) offset: Option<usize>,
    /// Items returned at most (default 100, at most 1,000).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
}

impl Window {
    /// Offset and limit, the limit within 1..=[`MOST`].
    pub(crate) fn bounds(self) -> (usize, usize) {
        (
            self.offset.unwrap_or(0),
            self.limit.unwrap_or(PAGE).clamp(1, MOST),
        )
    }

    /// The items of this window out of `all`.
    pub(crate) fn slice<T>(self, all: Vec<T>) -> Vec<T> {
        let (offset, limit) = self.bounds();
        all.into_iter().skip(offset).take(limit).collect()
    }
}

/// The previous/next links of one list on a page: `param` is the query
/// parameter holding its offset (a page may hold several lists), `keep`
/// the rest of the page's query, kept in the links.
pub(crate) fn pager(
    path: &str,
    keep: &[(&str, &str)],
    param: &str,
    offset: usize,
    shown: usize,
    total: usize,
) -> Value {
    let link = |at: usize| {
        let at = at.to_string();
        let mut pairs: Vec<(&str, &str)> = keep.to_vec();
        if at != "0" {
            pairs.push((param, &at));
        }
        let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    };
    let offset = offset.min(total);
    context! {
        first => if shown == 0 { 0 } else { offset + 1 },
        last => offset + shown,
        total,
        prev => (offset > 0).then(|| link(offset.saturating_sub(PAGE))),
        next => (offset + shown < total).then(|| link(offset + shown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded() {
        let w = |offset, limit| Window { offset, limit }.bounds();
        assert_eq!(w(None, None), (0, PAGE));
        assert_eq!(w(Some(5), Some(0)), (5, 1));
        assert_eq!(w(None, Some(1_000_000)), (0, MOST));
        let all: Vec<u32> = (0..10).collect();
        let got = Window {
            offset: Some(8),
            limit: Some(5),
        }
        .slice(all);
        assert_eq!(got, vec![8, 9]);
    }

    #[test]
    fn links_keep_the_query_and_stop_at_the_ends() {
        let p = pager("/ui/devices", &[("q", "a&b")], "offset", 0, 100, 250);
        assert_eq!(p.get_attr("prev").unwrap(), Value::from(()));
        assert_eq!(
            p.get_attr("next").unwrap().as_str(),
            Some("/ui/devices?q=a%26b&offset=100")
        );
        let p = pager("/ui/audit", &[], "offset", 200, 50, 250);
        assert_eq!(
            p.get_attr("prev").unwrap().as_str(),
            Some("/ui/audit?offset=100")
        );
        assert_eq!(p.get_attr("next").unwrap(), Value::from(()));
        assert_eq!(
            (p.get_attr("first").unwrap(), p.get_attr("last").unwrap()),
            (Value::from(201), Value::from(250))
        );
        let p = pager("/ui/audit", &[], "offset", 100, 100, 250);
        assert_eq!(p.get_attr("prev").unwrap().as_str(), Some("/ui/audit"));
    }
}

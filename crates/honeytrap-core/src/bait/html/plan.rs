//! Insertion plans of whole pages seen before. A page served again unchanged (a static file,
//! typically) is rewritten after one comparison of its bytes with the copy kept here instead
//! of a tokenizer pass. A plan holds every point where the comment or a field may go, found by
//! a tokenizer with both on, so it serves any configuration: the tokenizer's state never
//! depends on what it inserts. A page whose bytes keep changing under the same name (a
//! dynamic page) is not copied again: after `CHANGES_KEPT` changes its entry only remembers
//! that, until it is evicted, and the page is tokenized as any other.

use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use super::{HtmlRewriter, Insert, Span, Splice};

/// Pages kept, and the largest kept: at most 1 MiB of copies per cache.
const ENTRIES: usize = 32;
const MAX_PAGE: usize = 32 * 1024;
/// Changes of a page's bytes that still replace its copy (a static file edited).
const CHANGES_KEPT: u8 = 1;

/// A bounded memory of pages and their insertion points; the least recently used page is
/// replaced when full.
#[derive(Default)]
pub struct PlanCache {
    entries: Vec<Entry>,
    clock: u64,
}

struct Entry {
    key: u64,
    page: Box<[u8]>,
    points: Box<[(usize, Insert)]>,
    used: u64,
    /// How often the bytes under this key changed; past `CHANGES_KEPT`, nothing is kept.
    changes: u8,
}

impl PlanCache {
    /// The insertion points of `page`, kept under `name` (likely to be the same for the same
    /// page, such as its URI: the bytes decide, the name only narrows). `None` when the page
    /// is too large to keep.
    fn points(&mut self, name: &[u8], page: &[u8]) -> Option<&[(usize, Insert)]> {
        if page.len() > MAX_PAGE {
            return None;
        }
        let key = FxBuildHasher.hash_one(name);
        self.clock += 1;
        let (slot, changes) = match self.entries.iter().position(|e| e.key == key) {
            Some(at) => {
                let entry = &mut self.entries[at];
                entry.used = self.clock;
                if entry.changes > CHANGES_KEPT {
                    return None;
                }
                if *entry.page == *page {
                    return Some(&self.entries[at].points);
                }
                entry.changes += 1;
                if entry.changes > CHANGES_KEPT {
                    entry.page = Box::default();
                    entry.points = Box::default();
                    return None;
                }
                (at, entry.changes)
            }
            None if self.entries.len() < ENTRIES => {
                self.entries.push(Entry {
                    key,
                    page: Box::default(),
                    points: Box::default(),
                    used: 0,
                    changes: 0,
                });
                (self.entries.len() - 1, 0)
            }
            None => {
                let lru = (0..self.entries.len()).min_by_key(|&at| self.entries[at].used)?;
                (lru, 0)
            }
        };
        self.entries[slot] = Entry {
            key,
            page: page.into(),
            points: plan(page),
            used: self.clock,
            changes,
        };
        Some(&self.entries[slot].points)
    }
}

/// Every insertion point of a whole page, up to the last that could hold one.
fn plan(page: &[u8]) -> Box<[(usize, Insert)]> {
    let empty: Arc<[u8]> = Arc::from(&b""[..]);
    let mut scout = HtmlRewriter::new(Some(empty.clone()), Some(empty));
    let mut points = Vec::new();
    if let Some(stop) = scout.last_trigger(page) {
        let mut i = 0;
        while let Some((after, insert)) = scout.scan(page, i) {
            points.push((after, insert));
            i = after;
            if i > stop || i >= page.len() {
                break;
            }
        }
    }
    points.into_boxed_slice()
}

impl HtmlRewriter {
    /// [`HtmlRewriter::feed_last_spans`] for a body that is this one chunk, with its
    /// insertion points from `plans` (found and kept there under `name` the first time). The
    /// same output; a rewriter that was fed before, or a page too large to keep, is simply fed.
    pub fn feed_whole_spans(
        &mut self,
        page: &[u8],
        plans: &mut PlanCache,
        name: &[u8],
        mut emit: impl FnMut(Span<'_>),
    ) {
        let points = match self.fed {
            false => plans.points(name, page),
            true => None,
        };
        let Some(points) = points else {
            return self.feed_last_spans(page, emit);
        };
        self.fed = true;
        let mut splice = Splice::default();
        for &(at, insert) in points {
            let bytes = match insert {
                Insert::Comment => self.comment_once().and(self.comment.as_deref()),
                Insert::Field => {
                    if self.field.is_some() {
                        self.report.fields += 1;
                    }
                    self.field.as_deref()
                }
            };
            if let Some(bytes) = bytes {
                splice.insert(at, bytes, &mut emit);
            }
        }
        splice.finish(page.len(), &mut emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &[u8] = b"<!--c-->";
    const F: &[u8] = b"<input type=hidden name=f value=t>";

    fn rewriter(comment: bool, field: bool) -> HtmlRewriter {
        HtmlRewriter::new(comment.then(|| Arc::from(C)), field.then(|| Arc::from(F)))
    }

    fn append(out: &mut Vec<u8>, page: &[u8], span: Span<'_>) {
        match span {
            Span::Original(range) => out.extend_from_slice(&page[range]),
            Span::Inserted(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// Through the cache and straight through the tokenizer, with the report.
    fn both_ways(
        plans: &mut PlanCache,
        name: &[u8],
        page: &[u8],
        comment: bool,
        field: bool,
    ) -> (
        (Vec<u8>, super::super::Report),
        (Vec<u8>, super::super::Report),
    ) {
        let mut cached = rewriter(comment, field);
        let mut via_cache = Vec::new();
        cached.feed_whole_spans(page, plans, name, |s| append(&mut via_cache, page, s));
        let mut direct = rewriter(comment, field);
        let mut out = Vec::new();
        direct.feed_last(page, |piece| match piece {
            super::super::Piece::Original(b) | super::super::Piece::Inserted(b) => {
                out.extend_from_slice(b)
            }
        });
        ((via_cache, cached.report()), (out, direct.report()))
    }

    const PAGE: &[u8] = b"<html><head><title>x</title></head><body><form action=/a>\
        <input name=q></form><p>text</p><FORM method=post><button>go</button></FORM></body></html>";

    #[test]
    fn a_kept_plan_rewrites_like_the_tokenizer_in_every_configuration() {
        let mut plans = PlanCache::default();
        for round in 0..2 {
            for (comment, field) in [(true, true), (true, false), (false, true), (false, false)] {
                let (cached, direct) = both_ways(&mut plans, b"/a", PAGE, comment, field);
                assert_eq!(
                    cached, direct,
                    "round {round}, comment {comment}, field {field}"
                );
            }
        }
        assert_eq!(plans.entries.len(), 1);
        let (cached, _) = both_ways(&mut plans, b"/a", PAGE, true, true);
        assert_eq!(cached.1.fields, 2);
        assert!(cached.1.comment);
    }

    #[test]
    fn a_changed_page_is_planned_again_and_one_that_keeps_changing_is_not_kept() {
        let mut plans = PlanCache::default();
        both_ways(&mut plans, b"/b", PAGE, true, true);
        // Same length, other bytes: the form tag is now text inside a comment.
        let mut changed = PAGE.to_vec();
        let at = changed.windows(5).position(|w| w == b"<form").unwrap();
        changed[at..at + 5].copy_from_slice(b"<!---");
        assert_eq!(changed.len(), PAGE.len());
        let (cached, direct) = both_ways(&mut plans, b"/b", &changed, true, true);
        assert_eq!(cached, direct);
        assert_eq!(plans.entries.len(), 1);
        assert_eq!(
            *plans.entries[0].page, *changed,
            "an edited page replaces its copy"
        );

        // Changing again: a dynamic page. Its bytes are no longer kept, its output is right.
        for page in [PAGE, &changed, PAGE] {
            let (cached, direct) = both_ways(&mut plans, b"/b", page, true, true);
            assert_eq!(cached, direct);
            assert!(plans.entries[0].page.is_empty() && plans.entries[0].points.is_empty());
        }
        assert_eq!(plans.entries.len(), 1);
    }

    #[test]
    fn random_pages_through_the_cache_match_the_tokenizer() {
        let mut rng = fastrand::Rng::with_seed(11);
        let parts: [&[u8]; 12] = [
            b"<form>",
            b"<FORM a='>'>",
            b"</head>",
            b"<body x=1>",
            b"<!--",
            b"-->",
            b"<script>",
            b"</script>",
            b"<",
            b"'",
            b"text ",
            b"<textarea><form></textarea>",
        ];
        let mut plans = PlanCache::default();
        for _ in 0..3000 {
            let page: Vec<u8> = (0..rng.usize(0..12))
                .flat_map(|_| parts[rng.usize(..parts.len())].iter().copied())
                .collect();
            // Few names, so hits, replacements and evictions all happen.
            let name = [rng.u8(0..40)];
            let (comment, field) = (rng.bool(), rng.bool());
            let (cached, direct) = both_ways(&mut plans, &name, &page, comment, field);
            assert_eq!(cached, direct, "{:?}", String::from_utf8_lossy(&page));
        }
        assert_eq!(plans.entries.len(), ENTRIES);
    }

    #[test]
    fn pages_too_large_or_rewriters_already_fed_bypass_the_cache() {
        let mut plans = PlanCache::default();
        let mut big = PAGE.to_vec();
        big.resize(MAX_PAGE + 1, b' ');
        let (cached, direct) = both_ways(&mut plans, b"/c", &big, true, true);
        assert_eq!(cached, direct);
        assert!(plans.entries.is_empty());

        // A rewriter inside a comment from its first chunk must not take the page as whole.
        let mut fed = rewriter(true, true);
        fed.feed(b"<!-- ", |_| {});
        let mut out = Vec::new();
        fed.feed_whole_spans(PAGE, &mut plans, b"/d", |s| append(&mut out, PAGE, s));
        assert_eq!(out, PAGE);
        assert!(plans.entries.is_empty());
        assert_eq!(fed.report().fields, 0, "the forms are inside the comment");
    }
}

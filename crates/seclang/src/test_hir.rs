//! Random strings a parsed `@rx` pattern matches, for property tests over CRS patterns.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Appends a random string shaped by `h` (`below(n)` draws a number below `n`): one that
/// `h` matches where its assertions (anchors, word boundaries) happen to hold.
pub(crate) fn sample(h: &Hir, below: &mut impl FnMut(usize) -> usize, out: &mut Vec<u8>) {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.extend_from_slice(&l.0),
        HirKind::Class(Class::Bytes(c)) => {
            let r = c.ranges()[below(c.ranges().len())];
            let span = usize::from(r.end() - r.start()) + 1;
            out.push(r.start() + below(span) as u8);
        }
        HirKind::Class(Class::Unicode(c)) => {
            let r = c.ranges()[below(c.ranges().len())];
            let span = (r.end() as u32 - r.start() as u32) as usize + 1;
            let ch = char::from_u32(r.start() as u32 + below(span) as u32).unwrap_or('x');
            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        }
        HirKind::Capture(c) => sample(&c.sub, below, out),
        HirKind::Repetition(r) => {
            // Long values: fewest copies; otherwise a few more than the least.
            let extra = match r.max {
                _ if out.len() > 512 => 0,
                Some(max) => below((max - r.min).min(3) as usize + 1),
                None => below(4),
            };
            for _ in 0..r.min as usize + extra {
                sample(&r.sub, below, out);
            }
        }
        HirKind::Concat(subs) => subs.iter().for_each(|s| sample(s, below, out)),
        HirKind::Alternation(subs) => sample(&subs[below(subs.len())], below, out),
    }
}

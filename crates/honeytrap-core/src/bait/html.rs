//! A streaming HTML rewriter that adds the bait comment and a hidden field to every form.
//!
//! The output is the input with insertions only, and every insertion sits right after a
//! tag's closing `>`. So no input byte is ever held back: a chunk comes out, split where an
//! insertion goes, during the call that brought it in. What carries over between chunks is a
//! tokenizer state and at most a tag name's worth of bytes (9), not a buffer. Like nginx's
//! sub_filter, it matches across buffer boundaries by state, not by joining buffers; unlike
//! it, it never needs to re-emit held bytes, because it inserts after a match, not in place.
//!
//! The tokenizer follows the WHATWG HTML tokenizer where it decides what is a tag: quotes
//! count only in attribute values (`<form data-x='a>b'>` is one tag), comments end at `-->`,
//! `--!>` or the abrupt `<!-->`, `<!x>` and `<?x>` are bogus comments, and the contents of
//! `script`, `style`, `textarea`, `title`, `xmp`, `iframe`, `noembed` and `noframes` are text
//! up to their end tag, as is everything after `<plaintext>`. Simplifications, none of which
//! can corrupt a page (the worst is a field missing or inside text no one renders): the
//! script "double escaped" states, and foreign content (`<svg><style>` is taken as raw text).
//!
//! Insertions:
//! - the comment, once: right after `</head>`, or right after the `<body ...>` start tag when
//!   the page has no `</head>` before it; pages with neither (fragments) get none. Not right
//!   after `<head>`: that could push a `<meta charset>` out of the first 1024 bytes, where
//!   browsers look for it.
//! - the hidden field: right after every `<form ...>` start tag, whatever its case.

use std::ops::Range;
use std::sync::Arc;

use memchr::memchr;

mod plan;
pub use plan::PlanCache;

/// A piece of output: original bytes, or bytes the rewriter inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Original(&'a [u8]),
    Inserted(&'a [u8]),
}

/// A piece of output as a range of the input chunk, or inserted bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Span<'a> {
    Original(Range<usize>),
    Inserted(&'a [u8]),
}

/// What a rewriter added so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub comment: bool,
    pub fields: u32,
}

/// Longest tag name that means something to us (`plaintext`).
const NAME_CAP: usize = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Text,
    TagOpen,
    EndTagOpen,
    TagName,
    BeforeAttrName,
    AttrName,
    AfterAttrName,
    BeforeAttrValue,
    AttrValueQuoted(u8),
    AttrValueUnquoted,
    /// After `<!`, with how many `-` of `<!--` seen.
    MarkupDecl(u8),
    Comment,
    BogusComment,
    /// Inside a raw text element, with how much of `</name` matched.
    RawText(u8),
    Plaintext,
}

#[derive(Clone, Copy)]
enum Insert {
    Comment,
    Field,
}

/// Cuts a chunk into spans around insertions, in order.
#[derive(Default)]
struct Splice {
    /// How much of the chunk is emitted.
    copied: usize,
}

impl Splice {
    /// The chunk's bytes up to `at`, then `bytes`.
    fn insert<'a>(&mut self, at: usize, bytes: &'a [u8], emit: &mut impl FnMut(Span<'a>)) {
        if self.copied < at {
            emit(Span::Original(self.copied..at));
        }
        emit(Span::Inserted(bytes));
        self.copied = at;
    }

    /// The rest of a chunk of `len` bytes.
    fn finish(self, len: usize, emit: &mut impl FnMut(Span<'_>)) {
        if self.copied < len {
            emit(Span::Original(self.copied..len));
        }
    }
}

/// Byte classes the tag states stop at.
const WHITESPACE: u8 = 1;
const SLASH: u8 = 2;
const EQUALS: u8 = 4;
const GREATER: u8 = 8;
const TAG_NAME_END: u8 = WHITESPACE | SLASH | GREATER;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'\t' as usize] = WHITESPACE;
    t[b'\n' as usize] = WHITESPACE;
    t[0x0c] = WHITESPACE;
    t[b'\r' as usize] = WHITESPACE;
    t[b' ' as usize] = WHITESPACE;
    t[b'/' as usize] = SLASH;
    t[b'=' as usize] = EQUALS;
    t[b'>' as usize] = GREATER;
    t
};

/// `memchr` for the short distances between markup, where its setup costs more than the
/// search: eight bytes a step, then `memchr` once a run proves long.
fn find(needle: u8, haystack: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const SHORT: usize = 64;
    let spread = LOW * u64::from(needle);
    let mut at = 0;
    while at + 8 <= haystack.len().min(SHORT) {
        let word = u64::from_le_bytes(haystack[at..at + 8].try_into().unwrap_or([0; 8])) ^ spread;
        // The lowest byte of `word` that is zero sets its high bit here; bits above it may
        // be false alarms, the lowest never is.
        let zero = word.wrapping_sub(LOW) & !word & HIGH;
        if zero != 0 {
            return Some(at + zero.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    if at >= SHORT {
        return memchr(needle, &haystack[at..]).map(|found| at + found);
    }
    haystack[at..]
        .iter()
        .position(|&b| b == needle)
        .map(|found| at + found)
}

/// Where the attribute whose name starts at `i` ends, if it is `name="value"` (or single
/// quotes) whole in `chunk`: the index after its closing quote.
fn quoted_attribute_end(chunk: &[u8], i: usize) -> Option<usize> {
    // The name's first byte belongs to it whatever it is.
    let equals = skip_until(chunk, i + 1, WHITESPACE | SLASH | EQUALS | GREATER);
    if chunk.get(equals) != Some(&b'=') {
        return None;
    }
    let quote = *chunk
        .get(equals + 1)
        .filter(|&&q| q == b'"' || q == b'\'')?;
    let value = equals + 2;
    find(quote, &chunk[value..]).map(|at| value + at + 1)
}

/// The first index from `i` whose byte is in one of `classes`, or the chunk's length.
fn skip_until(chunk: &[u8], i: usize, classes: u8) -> usize {
    chunk[i..]
        .iter()
        .position(|&b| CLASS[usize::from(b)] & classes != 0)
        .map_or(chunk.len(), |at| i + at)
}

/// The first index from `i` whose byte is in none of `classes`, or the chunk's length.
fn skip_while(chunk: &[u8], i: usize, classes: u8) -> usize {
    chunk[i..]
        .iter()
        .position(|&b| CLASS[usize::from(b)] & classes == 0)
        .map_or(chunk.len(), |at| i + at)
}

/// Rewrites one response. Build one per response; feed it every body chunk in order.
#[derive(Debug)]
pub struct HtmlRewriter {
    state: State,
    name: [u8; NAME_CAP],
    name_len: usize,
    /// The name did not fit: it is none of ours.
    name_long: bool,
    end_tag: bool,
    /// The raw text element we are in (its name is still in `name`).
    raw_len: usize,
    /// Last three bytes of the current comment, and how many it has (up to 3).
    recent: [u8; 3],
    comment_len: u8,
    comment: Option<Arc<[u8]>>,
    field: Option<Arc<[u8]>>,
    report: Report,
    /// What the tag being read is to us, known once its name ends.
    kind: TagKind,
    /// Some input was fed: a later chunk is not a whole page.
    fed: bool,
}

/// The tags the rewriter acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TagKind {
    Form,
    Body,
    HeadEnd,
    Plaintext,
    RawText,
    Other,
}

impl TagKind {
    fn of(name: &[u8], end_tag: bool) -> TagKind {
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        if end_tag {
            return if is(b"head") {
                TagKind::HeadEnd
            } else {
                TagKind::Other
            };
        }
        // By length first: most tags are ruled out without comparing a byte.
        match name.len() {
            4 if is(b"form") => TagKind::Form,
            4 if is(b"body") => TagKind::Body,
            9 if is(b"plaintext") => TagKind::Plaintext,
            3 if is(b"xmp") => TagKind::RawText,
            5 if is(b"style") || is(b"title") => TagKind::RawText,
            6 if is(b"script") || is(b"iframe") => TagKind::RawText,
            7 if is(b"noembed") => TagKind::RawText,
            8 if is(b"textarea") || is(b"noframes") => TagKind::RawText,
            _ => TagKind::Other,
        }
    }
}

impl HtmlRewriter {
    /// `comment` is inserted once (as given: include the newline or spacing you want);
    /// `field` after every form start tag. `None` turns either off. The comment is shared by
    /// all responses; the field holds this response's token.
    pub fn new(comment: Option<Arc<[u8]>>, field: Option<Arc<[u8]>>) -> HtmlRewriter {
        HtmlRewriter {
            state: State::Text,
            name: [0; NAME_CAP],
            name_len: 0,
            name_long: false,
            end_tag: false,
            raw_len: 0,
            recent: [0; 3],
            comment_len: 0,
            comment,
            field,
            report: Report::default(),
            kind: TagKind::Other,
            fed: false,
        }
    }

    pub fn report(&self) -> Report {
        self.report
    }

    /// Rewrites one chunk. `emit` receives, in order, pieces that together are the chunk
    /// with insertions; all of the chunk is emitted before this returns.
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(Piece<'_>)) {
        self.feed_spans(chunk, |span| match span {
            Span::Original(range) => emit(Piece::Original(&chunk[range])),
            Span::Inserted(bytes) => emit(Piece::Inserted(bytes)),
        });
    }

    /// [`HtmlRewriter::feed`] for the body's last chunk: the same output, but the scan stops
    /// after the last place where something could still go, since no state is needed after.
    pub fn feed_last(&mut self, chunk: &[u8], mut emit: impl FnMut(Piece<'_>)) {
        self.feed_last_spans(chunk, |span| match span {
            Span::Original(range) => emit(Piece::Original(&chunk[range])),
            Span::Inserted(bytes) => emit(Piece::Inserted(bytes)),
        });
    }

    /// [`HtmlRewriter::feed_last`] with original bytes as ranges of `chunk`.
    pub fn feed_last_spans(&mut self, chunk: &[u8], emit: impl FnMut(Span<'_>)) {
        let stop = self.last_trigger(chunk);
        self.feed_until(chunk, stop, emit);
    }

    /// [`HtmlRewriter::feed`] with original bytes as ranges of `chunk`, so a caller can
    /// point into its own buffer instead of copying (as nginx filters do).
    pub fn feed_spans(&mut self, chunk: &[u8], emit: impl FnMut(Span<'_>)) {
        self.feed_until(chunk, Some(chunk.len()), emit);
    }

    /// Where in the last chunk the last tag that could be followed by an insertion starts:
    /// a `<form`, or `</head` / `<body` while the comment is due (ASCII case ignored, a
    /// superset of what the tokenizer acts on), or the chunk's start when a tag from the
    /// chunk before is still open. `None`: nothing can be inserted in this chunk.
    fn last_trigger(&self, chunk: &[u8]) -> Option<usize> {
        let want_comment = self.comment.is_some() && !self.report.comment;
        let want_field = self.field.is_some();
        let triggers = |rest: &[u8]| {
            let starts = |name: &[u8]| {
                rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name)
            };
            // The byte after `<` rules out most tags before any longer comparison.
            match rest.get(1).map(u8::to_ascii_lowercase) {
                Some(b'f') => want_field && starts(b"<form"),
                Some(b'/') => want_comment && starts(b"</head"),
                Some(b'b') => want_comment && starts(b"<body"),
                _ => false,
            }
        };
        if let Some(at) = memchr::memrchr_iter(b'<', chunk).find(|&at| triggers(&chunk[at..])) {
            return Some(at);
        }
        let in_tag = !matches!(
            self.state,
            State::Text
                | State::Plaintext
                | State::Comment
                | State::BogusComment
                | State::MarkupDecl(_)
                | State::RawText(_)
        );
        in_tag.then_some(0)
    }

    /// Rewrites `chunk`; once an insertion lands past `stop` (none can follow), or when
    /// `stop` is `None`, the rest goes out unscanned.
    fn feed_until(&mut self, chunk: &[u8], stop: Option<usize>, mut emit: impl FnMut(Span<'_>)) {
        self.fed |= !chunk.is_empty();
        let mut splice = Splice::default();
        if let Some(stop) = stop {
            let mut i = 0;
            while i < chunk.len() {
                let Some((after, insert)) = self.scan(chunk, i) else {
                    break;
                };
                i = after;
                let bytes = match insert {
                    Insert::Comment => self.comment.as_deref(),
                    Insert::Field => self.field.as_deref(),
                };
                if let Some(bytes) = bytes {
                    splice.insert(i, bytes, &mut emit);
                }
                if i > stop {
                    break;
                }
            }
        }
        splice.finish(chunk.len(), &mut emit);
    }

    /// [`HtmlRewriter::feed`] into a vector.
    pub fn feed_to_vec(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.feed(chunk, |piece| match piece {
            Piece::Original(b) | Piece::Inserted(b) => out.extend_from_slice(b),
        });
    }

    /// Runs the tokenizer from `i` until an insertion point or the end of the chunk.
    /// Returns where it stopped and what to insert there; `None` at the end of the chunk.
    fn scan(&mut self, chunk: &[u8], mut i: usize) -> Option<(usize, Insert)> {
        // A tag's `>` at `i`: stop there if something goes after it, else go on scanning.
        macro_rules! close_tag {
            ($self:ident, $i:ident) => {{
                $i += 1;
                match $self.tag_end() {
                    Some(insert) => return Some(($i, insert)),
                    None => continue,
                }
            }};
        }
        while i < chunk.len() {
            let b = chunk[i];
            match self.state {
                State::Text => match find(b'<', &chunk[i..]) {
                    Some(at) => {
                        i += at;
                        self.state = State::TagOpen;
                    }
                    None => return None,
                },
                State::Plaintext => return None,
                State::TagOpen => match b {
                    b'!' => self.state = State::MarkupDecl(0),
                    b'/' => self.state = State::EndTagOpen,
                    b'?' => self.state = State::BogusComment,
                    _ if b.is_ascii_alphabetic() => {
                        self.begin_name(false);
                        continue;
                    }
                    // `a < b` is text; a second `<` may open a tag: look at it again.
                    _ => {
                        self.state = State::Text;
                        continue;
                    }
                },
                State::EndTagOpen => {
                    if b.is_ascii_alphabetic() {
                        self.begin_name(true);
                        continue;
                    }
                    self.state = if b == b'>' {
                        State::Text
                    } else {
                        State::BogusComment
                    };
                }
                // Inside a tag, whole runs of bytes that cannot change the state are
                // skipped with a table lookup each: most of a page's bytes are in tags.
                State::TagName => {
                    let end = skip_until(chunk, i, TAG_NAME_END);
                    if end == chunk.len() {
                        // The name goes on in the next chunk.
                        self.push_name(&chunk[i..end]);
                        return None;
                    }
                    self.kind = if self.name_len == 0 && !self.name_long {
                        // The whole name is here: judged in place, copied only for raw text.
                        let kind = TagKind::of(&chunk[i..end], self.end_tag);
                        if kind == TagKind::RawText {
                            self.push_name(&chunk[i..end]);
                        }
                        kind
                    } else {
                        self.push_name(&chunk[i..end]);
                        if self.name_long {
                            TagKind::Other
                        } else {
                            TagKind::of(&self.name[..self.name_len], self.end_tag)
                        }
                    };
                    i = end;
                    match chunk.get(i) {
                        None => return None,
                        Some(b'>') => close_tag!(self, i),
                        Some(_) => self.state = State::BeforeAttrName,
                    }
                }
                State::BeforeAttrName => {
                    i = skip_while(chunk, i, WHITESPACE | SLASH);
                    match chunk.get(i) {
                        None => return None,
                        Some(b'>') => close_tag!(self, i),
                        // Even `=` and quotes start a name here (a parse error browsers forgive).
                        Some(_) => {
                            // The usual `name="value"` in one step when it is all in the chunk:
                            // the same transitions, without a dispatch for each.
                            if let Some(next) = quoted_attribute_end(chunk, i) {
                                i = next;
                                continue;
                            }
                            self.state = State::AttrName;
                        }
                    }
                }
                State::AttrName => {
                    i = skip_until(chunk, i, WHITESPACE | SLASH | EQUALS | GREATER);
                    match chunk.get(i) {
                        None => return None,
                        Some(b'>') => close_tag!(self, i),
                        Some(b'=') => self.state = State::BeforeAttrValue,
                        Some(b'/') => self.state = State::BeforeAttrName,
                        Some(_) => self.state = State::AfterAttrName,
                    }
                }
                State::AfterAttrName => {
                    i = skip_while(chunk, i, WHITESPACE);
                    match chunk.get(i) {
                        None => return None,
                        Some(b'>') => close_tag!(self, i),
                        Some(b'=') => self.state = State::BeforeAttrValue,
                        Some(b'/') => self.state = State::BeforeAttrName,
                        Some(_) => self.state = State::AttrName,
                    }
                }
                State::BeforeAttrValue => {
                    i = skip_while(chunk, i, WHITESPACE);
                    match chunk.get(i) {
                        None => return None,
                        Some(b'>') => close_tag!(self, i),
                        Some(&q @ (b'"' | b'\'')) => self.state = State::AttrValueQuoted(q),
                        Some(_) => self.state = State::AttrValueUnquoted,
                    }
                }
                State::AttrValueQuoted(quote) => match find(quote, &chunk[i..]) {
                    Some(at) => {
                        i += at;
                        self.state = State::BeforeAttrName;
                    }
                    None => return None,
                },
                State::AttrValueUnquoted => {
                    i = skip_until(chunk, i, WHITESPACE | GREATER);
                    match chunk.get(i) {
                        None => return None,
                        Some(b'>') => close_tag!(self, i),
                        Some(_) => self.state = State::BeforeAttrName,
                    }
                }
                State::MarkupDecl(dashes) => {
                    if b == b'-' && dashes == 1 {
                        self.state = State::Comment;
                        self.recent = [0, b'-', b'-'];
                        self.comment_len = 0;
                    } else if b == b'-' {
                        self.state = State::MarkupDecl(1);
                    } else {
                        // `<!DOCTYPE ...>`, `<![CDATA[...` and `<!x` all end at the next `>`.
                        self.state = State::BogusComment;
                        continue;
                    }
                }
                State::Comment => {
                    let rest = &chunk[i..];
                    let Some(at) = find(b'>', rest) else {
                        self.remember(rest);
                        return None;
                    };
                    self.remember(&rest[..at]);
                    let closes = self.recent[1..] == *b"--"
                        || (self.recent == *b"--!" && self.comment_len >= 3);
                    i += at;
                    if closes {
                        self.state = State::Text;
                    } else {
                        self.remember(b">");
                    }
                }
                State::BogusComment => match find(b'>', &chunk[i..]) {
                    Some(at) => {
                        i += at;
                        self.state = State::Text;
                    }
                    None => return None,
                },
                State::RawText(matched) => {
                    let matched = usize::from(matched);
                    if matched == 0 {
                        match find(b'<', &chunk[i..]) {
                            Some(at) => {
                                i += at;
                                self.state = State::RawText(1);
                            }
                            None => return None,
                        }
                    } else if matched == 1 {
                        if b == b'/' {
                            self.state = State::RawText(2);
                        } else {
                            self.state = State::RawText(0);
                            continue;
                        }
                    } else if matched - 2 < self.raw_len {
                        if b.to_ascii_lowercase() == self.name[matched - 2] {
                            self.state = State::RawText(matched as u8 + 1);
                        } else {
                            self.state = State::RawText(0);
                            continue;
                        }
                    } else if matches!(b, b'>' | b'/' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ') {
                        // `</script` and a delimiter: the end tag; its name is in `name`.
                        self.name_len = self.raw_len;
                        self.name_long = false;
                        self.end_tag = true;
                        self.state = State::TagName;
                        continue;
                    } else {
                        // `</scripts`: still script text.
                        self.state = State::RawText(0);
                        continue;
                    }
                }
            }
            i += 1;
        }
        None
    }

    fn begin_name(&mut self, end_tag: bool) {
        self.state = State::TagName;
        self.end_tag = end_tag;
        self.name_len = 0;
        self.name_long = false;
    }

    fn push_name(&mut self, bytes: &[u8]) {
        let room = NAME_CAP - self.name_len;
        let fits = bytes.len().min(room);
        for (to, b) in self.name[self.name_len..][..fits].iter_mut().zip(bytes) {
            *to = b.to_ascii_lowercase();
        }
        self.name_len += fits;
        self.name_long |= bytes.len() > room;
    }

    /// Keeps the last three bytes of a comment across chunks, for `-->` and `--!>`.
    fn remember(&mut self, bytes: &[u8]) {
        for &b in &bytes[bytes.len().saturating_sub(3)..] {
            self.recent = [self.recent[1], self.recent[2], b];
        }
        self.comment_len = self
            .comment_len
            .saturating_add(bytes.len().min(3) as u8)
            .min(3);
    }

    /// A tag just closed with `>`: what follows, and what to insert after it.
    fn tag_end(&mut self) -> Option<Insert> {
        self.state = State::Text;
        match self.kind {
            TagKind::Form => {
                if self.field.is_some() {
                    self.report.fields += 1;
                }
                Some(Insert::Field)
            }
            TagKind::Body | TagKind::HeadEnd => self.comment_once(),
            TagKind::Plaintext => {
                self.state = State::Plaintext;
                None
            }
            TagKind::RawText => {
                self.raw_len = self.name_len;
                self.state = State::RawText(0);
                None
            }
            TagKind::Other => None,
        }
    }

    fn comment_once(&mut self) -> Option<Insert> {
        if self.report.comment || self.comment.is_none() {
            return None;
        }
        self.report.comment = true;
        Some(Insert::Comment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "\n<!-- TODO remove old login /old/login.php -->";
    const F: &str = "<input type=\"hidden\" name=\"form_nonce\" value=\"tok\">";

    fn rewriter() -> HtmlRewriter {
        HtmlRewriter::new(Some(Arc::from(C.as_bytes())), Some(F.as_bytes().into()))
    }

    /// Feeds `input` in chunks ending at `cuts`, the last one as the last, checking that
    /// each call emits its chunk.
    fn run(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Report) {
        let mut r = rewriter();
        let mut out = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            let chunk = &input[start..end];
            let mut original = Vec::new();
            let emit = |p: Piece<'_>| match p {
                Piece::Original(b) => {
                    original.extend_from_slice(b);
                    out.extend_from_slice(b);
                }
                Piece::Inserted(b) => out.extend_from_slice(b),
            };
            if end == input.len() {
                r.feed_last(chunk, emit);
            } else {
                r.feed(chunk, emit);
            }
            assert_eq!(original, chunk, "a chunk must come out whole, in order");
            start = end;
        }
        (out, r.report())
    }

    fn remove_all(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(haystack.len());
        let mut i = 0;
        while i < haystack.len() {
            if haystack[i..].starts_with(needle) {
                i += needle.len();
            } else {
                out.push(haystack[i]);
                i += 1;
            }
        }
        out
    }

    fn random_cuts(rng: &mut fastrand::Rng, len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = match rng.u8(0..4) {
            // Every byte alone.
            0 => (1..len).collect(),
            1 => (0..rng.usize(0..4)).map(|_| rng.usize(0..=len)).collect(),
            _ => (0..rng.usize(0..len.max(1)))
                .map(|_| rng.usize(0..=len))
                .collect(),
        };
        cuts.sort_unstable();
        cuts
    }

    /// Building blocks with their expected output: `@` marks where the field goes, `^` a
    /// place for the comment after `</head>`, `~` one after `<body>`; the first `^` or `~`
    /// of a page gets the comment. Each block leaves the tokenizer in text.
    const BLOCKS: &[(&str, &str)] = &[
        (
            "<form action=\"/login\" method=post>",
            "<form action=\"/login\" method=post>@",
        ),
        ("<FORM\nMETHOD='POST'>", "<FORM\nMETHOD='POST'>@"),
        (
            "<form data-x='a>b' data-y=\"c>d\">",
            "<form data-x='a>b' data-y=\"c>d\">@",
        ),
        ("<form a=b\"c>", "<form a=b\"c>@"),
        ("<form =\"x>", "<form =\"x>@"),
        ("<form \"a>b\">", "<form \"a>@b\">"),
        ("<form x \"a>", "<form x \"a>@"),
        ("<form/>", "<form/>@"),
        ("<form>", "<form>@"),
        ("</form>", "</form>"),
        ("</FORM >", "</FORM >"),
        ("<formx>", "<formx>"),
        ("<forms a>", "<forms a>"),
        ("<form-x>", "<form-x>"),
        ("< form>", "< form>"),
        ("a < b && c <= d", "a < b && c <= d"),
        ("<<form>", "<<form>@"),
        ("<!-- <form> -->", "<!-- <form> -->"),
        ("<!--<form>--!><form>", "<!--<form>--!><form>@"),
        ("<!--><form>", "<!--><form>@"),
        ("<!---><form>", "<!---><form>@"),
        (
            "<!-- a -- b > <form> - ->-->",
            "<!-- a -- b > <form> - ->-->",
        ),
        ("<!--!><form>-->", "<!--!><form>-->"),
        ("<!DOCTYPE html>", "<!DOCTYPE html>"),
        ("<!x <form>", "<!x <form>"),
        ("<?xml <form>", "<?xml <form>"),
        ("</ <form>", "</ <form>"),
        ("</>", "</>"),
        (
            "<script>if (a<b) document.write('<form>')</script>",
            "<script>if (a<b) document.write('<form>')</script>",
        ),
        (
            "<SCRIPT type=x>'</scrip><form></scripts><form>'</Script\n>",
            "<SCRIPT type=x>'</scrip><form></scripts><form>'</Script\n>",
        ),
        (
            "<style>/* <form> */</style >",
            "<style>/* <form> */</style >",
        ),
        ("<textarea><form></textarea>", "<textarea><form></textarea>"),
        ("<title><form></title>", "<title><form></title>"),
        ("<xmp><form></xmp>", "<xmp><form></xmp>"),
        (
            "<noscript><form></noscript>",
            "<noscript><form>@</noscript>",
        ),
        ("<input value=\"<form>\">", "<input value=\"<form>\">"),
        (
            "<div title='<form>' x=\"'\">",
            "<div title='<form>' x=\"'\">",
        ),
        ("<head>", "<head>"),
        ("</head>", "</head>^"),
        ("</HEAD>", "</HEAD>^"),
        ("<body class=\"home\">", "<body class=\"home\">~"),
        ("</body>", "</body>"),
        ("<bodyx>", "<bodyx>"),
        ("text \u{e9}\u{1f600}", "text \u{e9}\u{1f600}"),
        (
            "<div title=\"a value longer than the sixty-four bytes searched eight at a time > <form> \" x='a value longer than the sixty-four bytes searched eight at a time > <form> '><form>",
            "<div title=\"a value longer than the sixty-four bytes searched eight at a time > <form> \" x='a value longer than the sixty-four bytes searched eight at a time > <form> '><form>@",
        ),
        ("A paragraph of text longer than sixty-four bytes, so the search hands over to memchr. <form>", "A paragraph of text longer than sixty-four bytes, so the search hands over to memchr. <form>@"),
        ("\n", "\n"),
    ];

    /// Blocks that leave the page in a state nothing follows well, for the very end.
    const TAILS: &[&str] = &[
        "",
        "<form action=\"/x",
        "<form",
        "<",
        "<!-- <form>",
        "<script> <form>",
        "<textarea> <form> </texta",
        "<plaintext><form><!--",
        "<!DOCTYPE",
    ];

    fn expected(marked: &str) -> String {
        let mut out = String::new();
        let mut comment_done = false;
        for ch in marked.chars() {
            match ch {
                '@' => out.push_str(F),
                '^' | '~' => {
                    if !comment_done {
                        out.push_str(C);
                        comment_done = true;
                    }
                }
                _ => out.push(ch),
            }
        }
        out
    }

    #[test]
    fn each_block_alone_and_in_any_chunking() {
        let mut rng = fastrand::Rng::with_seed(1);
        for (input, marked) in BLOCKS {
            for _ in 0..30 {
                let cuts = random_cuts(&mut rng, input.len());
                let (out, _) = run(input.as_bytes(), &cuts);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    expected(marked),
                    "{input:?} {cuts:?}"
                );
            }
        }
    }

    #[test]
    fn random_pages_match_the_oracle_for_random_chunkings() {
        let mut rng = fastrand::Rng::with_seed(20240607);
        for _ in 0..3000 {
            let mut input = String::new();
            let mut marked = String::new();
            for _ in 0..rng.usize(0..25) {
                let (i, m) = BLOCKS[rng.usize(..BLOCKS.len())];
                input.push_str(i);
                marked.push_str(m);
            }
            let tail = TAILS[rng.usize(..TAILS.len())];
            input.push_str(tail);
            marked.push_str(tail);
            let want = expected(&marked);
            let cuts = random_cuts(&mut rng, input.len());
            let (out, report) = run(input.as_bytes(), &cuts);
            assert_eq!(String::from_utf8_lossy(&out), want, "cuts {cuts:?}");
            assert_eq!(report.fields as usize, marked.matches('@').count());
            assert_eq!(report.comment, marked.contains(['^', '~']));
        }
    }

    #[test]
    fn arbitrary_bytes_come_out_unchanged_but_for_insertions() {
        // Byte soup heavy in the characters the tokenizer cares about, and invalid UTF-8.
        const ALPHABET: &[&[u8]] = &[
            b"<",
            b">",
            b"/",
            b"!",
            b"-",
            b"\"",
            b"'",
            b"=",
            b" ",
            b"\n",
            b"form",
            b"FoRm",
            b"head",
            b"body",
            b"script",
            b"textarea",
            b"plaintext",
            b"x",
            b"\xff",
            b"\xc3",
            b"?",
            b"<!--",
            b"-->",
            b"</",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..rng.usize(0..200) {
                input.extend_from_slice(ALPHABET[rng.usize(..ALPHABET.len())]);
            }
            let whole = run(&input, &[]).0;
            let cuts = random_cuts(&mut rng, input.len());
            let (out, report) = run(&input, &cuts);
            assert_eq!(out, whole, "the output must not depend on the chunking");
            // Take the insertions out again: the original bytes remain, exactly.
            let stripped = remove_all(&remove_all(&out, F.as_bytes()), C.as_bytes());
            assert_eq!(stripped, input);
            assert_eq!(
                out.len(),
                input.len()
                    + report.fields as usize * F.len()
                    + if report.comment { C.len() } else { 0 }
            );
        }
    }

    #[test]
    fn a_ten_megabyte_page_streams_through() {
        let mut page = b"<!DOCTYPE html><html><head><title>x</title></head><body>".to_vec();
        let row = b"<p class=\"row\">lorem ipsum <b>dolor</b> sit amet</p>\n<form method=post>\
                    <input name=q></form><script>var a = 1 < 2;</script>\n";
        let rows = 10 * 1024 * 1024 / row.len();
        for _ in 0..rows {
            page.extend_from_slice(row);
        }
        page.extend_from_slice(b"</body></html>");
        let mut r = rewriter();
        let mut out = Vec::with_capacity(page.len() + rows * F.len() + C.len());
        for chunk in page.chunks(16 * 1024) {
            r.feed_to_vec(chunk, &mut out);
        }
        let report = r.report();
        assert_eq!(report.fields as usize, rows);
        assert!(report.comment);
        assert_eq!(out.len(), page.len() + rows * F.len() + C.len());
        // The state is a few bytes, whatever the page: nothing grows with the input.
        assert!(std::mem::size_of::<HtmlRewriter>() <= 128);
    }

    #[test]
    fn comment_goes_after_head_end_or_body_start_once_and_not_into_fragments() {
        let (out, _) = run(b"<html><head><meta charset=utf-8></head><body></body>", &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("<html><head><meta charset=utf-8></head>{C}<body></body>")
        );
        let (out, _) = run(b"<!doctype html><title>t</title><body id=b><p>", &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("<!doctype html><title>t</title><body id=b>{C}<p>")
        );
        let (out, report) = run(b"<div><p>partial</p></div>", &[]);
        assert_eq!(out, b"<div><p>partial</p></div>");
        assert!(!report.comment);
    }

    #[test]
    fn disabled_insertions_leave_the_page_alone() {
        let page = b"</head><body><form></form>";
        let mut r = HtmlRewriter::new(None, Some(F.as_bytes().into()));
        let mut out = Vec::new();
        r.feed_to_vec(page, &mut out);
        assert_eq!(out, format!("</head><body><form>{F}</form>").as_bytes());
        let mut r = HtmlRewriter::new(Some(Arc::from(C.as_bytes())), None);
        let mut out = Vec::new();
        r.feed_to_vec(page, &mut out);
        assert_eq!(out, format!("</head>{C}<body><form></form>").as_bytes());
        assert_eq!(
            r.report(),
            Report {
                comment: true,
                fields: 0
            }
        );
    }
}

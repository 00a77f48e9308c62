//! libinjection's first SQLi pass (no quote context, ANSI), computed here for the inputs it
//! is simplest on, so that `@detectSQLi` can answer "not SQLi" without the library.
//!
//! `libinjectionrs` 0.1.1 spends about 1.5 µs on a browser's User-Agent and 3 µs on a URL
//! (a `contains` over 30 delimiters for every byte of a word, a `String` and a binary search
//! over 9,352 strings for every keyword lookup; `benches/sqli.rs`). The tokenizer and fold below are the
//! library's, rule for rule, over the subset of inputs that are ASCII, hold no `'` or `"`,
//! and, as far as the fold reads, no comment (`--`, `/*`, `#`), variable (`@`), `$`, `[`,
//! brace, backslash or backtick where a token starts. On such an input the library makes
//! one pass only: the quote passes need a quote, the MySQL re-parse a comment it read. So a first-pass fingerprint that is not on the library's list is the library's
//! "not SQLi"; a listed one goes to the library, which decides (its whitelist) and names
//! the fingerprint. Keywords come from the library's own table.
//!
//! `screen_differential` holds [`fingerprint`] to the library's first pass on millions of
//! inputs.

use std::sync::OnceLock;

use libinjectionrs::sqli::sqli_data::{get_char_type, CharType, Keyword, SQL_KEYWORDS};
use rustc_hash::FxHashMap;

/// The most tokens a fingerprint has.
const MAX_TOKENS: usize = 5;
/// A token keeps at most this many bytes of its text (the library's 32-byte buffer with its
/// terminating NUL).
const TOKEN_TEXT: usize = 31;

// Token types, as their fingerprint characters.
const NONE: u8 = 0;
const BAREWORD: u8 = b'n';
const KEYWORD: u8 = b'k';
const FUNCTION: u8 = b'f';
const UNION: u8 = b'U';
const EXPRESSION: u8 = b'E';
const TSQL: u8 = b'T';
const SQLTYPE: u8 = b't';
const OPERATOR: u8 = b'o';
const LOGIC_OPERATOR: u8 = b'&';
const VARIABLE: u8 = b'v';
const NUMBER: u8 = b'1';
const COLLATE: u8 = b'A';
const GROUP: u8 = b'B';
const FINGERPRINT: u8 = b'F';
const STRING: u8 = b's';
const DOT: u8 = b'.';
const COMMA: u8 = b',';
const SEMICOLON: u8 = b';';
const COLON: u8 = b':';
const LEFT_PAREN: u8 = b'(';
const RIGHT_PAREN: u8 = b')';
const UNKNOWN: u8 = b'?';

/// An input outside the subset this module follows the library on.
struct Unsupported;

#[derive(Clone, Copy)]
struct Token {
    kind: u8,
    len: u8,
    text: [u8; TOKEN_TEXT],
}

impl Token {
    const NONE: Token = Token {
        kind: NONE,
        len: 0,
        text: [0; TOKEN_TEXT],
    };

    fn new(kind: u8, text: &[u8]) -> Token {
        let mut t = Token {
            kind,
            ..Token::NONE
        };
        let len = text.len().min(TOKEN_TEXT);
        t.text[..len].copy_from_slice(&text[..len]);
        t.len = len as u8;
        t
    }

    fn text(&self) -> &[u8] {
        &self.text[..usize::from(self.len)]
    }

    /// The library's `cstrcasecmp(upper, text) == 0`.
    fn is(&self, upper: &[u8]) -> bool {
        self.text().eq_ignore_ascii_case(upper)
    }

    fn is_unary_operator(&self) -> bool {
        self.kind == OPERATOR
            && (matches!(self.text(), b"+" | b"-" | b"!" | b"~" | b"!!") || self.is(b"NOT"))
    }
}

/// The library's keyword table (`SQL_KEYWORDS`, a `const` of 9,352 `&str` entries: a copy
/// of it used at run time would be 0.3 MB of relocated data, resident in every process),
/// read at compile time into tables without pointers: its fingerprints (`0` and up to five
/// type characters) packed in integers, and the words it does not read as barewords.
const fn is_listed_fingerprint(k: &Keyword) -> bool {
    let w = k.word.as_bytes();
    k.token_type == FINGERPRINT && !w.is_empty() && w.len() <= 8 && w[0] == b'0'
}

/// The types `lookup_word` maps; any other reads as a bareword.
const fn is_typed_word(k: &Keyword) -> bool {
    let mut i = 0;
    let types = b"kfUETto&v1ABF";
    while i < types.len() {
        if types[i] == k.token_type {
            return !is_listed_fingerprint(k);
        }
        i += 1;
    }
    false
}

/// How many entries are listed fingerprints (`fingerprints`) or typed words (not).
const fn count(fingerprints: bool) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < SQL_KEYWORDS.len() {
        let k = &SQL_KEYWORDS[i];
        let counted = if fingerprints {
            is_listed_fingerprint(k)
        } else {
            is_typed_word(k)
        };
        if counted {
            n += 1;
        }
        i += 1;
    }
    n
}

/// Room for a word of the table (its longest has 29 bytes; the build fails past this).
const LONGEST_WORD: usize = 32;

/// `key` (at most 8 bytes, no NUL) as an integer, byte order kept.
const fn packed(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let mut i = 0;
    while i < key.len() {
        bytes[i] = key[i];
        i += 1;
    }
    u64::from_be_bytes(bytes)
}

/// The listed fingerprints, in the table's (byte) order.
static FINGERPRINTS: [u64; count(true)] = {
    let mut out = [0u64; count(true)];
    let (mut i, mut n) = (0, 0);
    while i < SQL_KEYWORDS.len() {
        if is_listed_fingerprint(&SQL_KEYWORDS[i]) {
            out[n] = packed(SQL_KEYWORDS[i].word.as_bytes());
            n += 1;
        }
        i += 1;
    }
    out
};

/// The other words with a type: (type, length, word).
static WORDS: [(u8, u8, [u8; LONGEST_WORD]); count(false)] = {
    let mut out = [(0u8, 0u8, [0u8; LONGEST_WORD]); count(false)];
    let (mut i, mut n) = (0, 0);
    while i < SQL_KEYWORDS.len() {
        let k = &SQL_KEYWORDS[i];
        if is_typed_word(k) {
            let w = k.word.as_bytes();
            assert!(
                w.len() <= LONGEST_WORD,
                "a keyword longer than the table's words"
            );
            let mut j = 0;
            while j < w.len() {
                out[n].2[j] = w[j];
                j += 1;
            }
            out[n] = (k.token_type, w.len() as u8, out[n].2);
            n += 1;
        }
        i += 1;
    }
    out
};

/// [`WORDS`] by word.
struct Keywords {
    types: FxHashMap<&'static [u8], u8>,
    longest: usize,
    /// [`maybe_bit`] of every word of `types`, set.
    maybe: [u64; MAYBE_WORDS],
}

/// Words of [`Keywords::maybe`]: 16384 bits (2 KB) for the table's 950 typed words, so
/// that most words of ordinary text (a User-Agent's, a search's) are barewords without an
/// upper-cased copy and a hash map probe.
const MAYBE_WORDS: usize = 256;

/// The bit of [`Keywords::maybe`] for a non-empty word: from its length and its first,
/// middle and last bytes with bit 5 cleared (the same for both cases of a letter, and one
/// `and` where `to_ascii_uppercase` is a compare and a select).
fn maybe_bit(word: &[u8]) -> usize {
    let n = word.len();
    let up = |i: usize| u32::from(word[i] & !0x20);
    let h = up(0).wrapping_mul(0x9e37_79b1)
        ^ up(n - 1).wrapping_mul(0x85eb_ca77)
        ^ up(n / 2).wrapping_mul(0xc2b2_ae3d)
        ^ (n as u32).wrapping_mul(0x27d4_eb2f);
    (h >> 18) as usize % (MAYBE_WORDS * 64)
}

fn keywords() -> &'static Keywords {
    static KEYWORDS: OnceLock<Keywords> = OnceLock::new();
    KEYWORDS.get_or_init(|| {
        let types: FxHashMap<&'static [u8], u8> = WORDS
            .iter()
            .map(|(t, len, word)| (&word[..usize::from(*len)], *t))
            .collect();
        let longest = WORDS.iter().map(|w| usize::from(w.1)).max().unwrap_or(0);
        let mut maybe = [0u64; MAYBE_WORDS];
        for word in types.keys().filter(|w| !w.is_empty()) {
            let bit = maybe_bit(word);
            maybe[bit / 64] |= 1 << (bit % 64);
        }
        Keywords {
            types,
            longest,
            maybe,
        }
    })
}

/// Builds the keyword table now rather than on first use.
pub(super) fn load_keywords() {
    keywords();
}

/// The library's `lookup_word`: the type of `word`, ASCII case ignored.
fn lookup(word: &[u8]) -> u8 {
    let k = keywords();
    if word.is_empty() || word.len() > k.longest.max(8) {
        return BAREWORD;
    }
    // Every listed fingerprint begins with `0` (any that did not would be in the map); a
    // word of the map has its bit set.
    let fingerprint = word.len() <= 8 && word[0] == b'0' && !word.contains(&0);
    let bit = maybe_bit(word);
    let typed = k.maybe[bit / 64] & (1 << (bit % 64)) != 0;
    if !fingerprint && !typed {
        return BAREWORD;
    }
    let mut upper = [0u8; 64];
    let upper = &mut upper[..word.len()];
    for (u, b) in upper.iter_mut().zip(word) {
        *u = b.to_ascii_uppercase();
    }
    if fingerprint && FINGERPRINTS.binary_search(&packed(upper)).is_ok() {
        return FINGERPRINT;
    }
    if !typed {
        return BAREWORD;
    }
    k.types.get(&*upper).copied().unwrap_or(BAREWORD)
}

/// A byte of [`WORD_BYTE`] that ends a word (`parse_word`'s delimiters).
const WORD_END: u8 = 1;
/// A byte of [`WORD_BYTE`] after which a keyword is a token of its own.
const SEPARATOR: u8 = 2;

/// What each byte is to a word: [`WORD_END`], [`SEPARATOR`] or 0.
const WORD_BYTE: [u8; 256] = {
    let mut t = [0; 256];
    let ends = b" []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r\"\xa0\x00";
    let mut i = 0;
    while i < ends.len() {
        t[ends[i] as usize] = WORD_END;
        i += 1;
    }
    t[b'.' as usize] = SEPARATOR;
    t[b'`' as usize] = SEPARATOR;
    t
};

fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0 | 0)
}

struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// Reads the next token into `out` (written in place rather than returned, which
    /// copied it twice); false at the end.
    fn next(&mut self, out: &mut Token) -> Result<bool, Unsupported> {
        while let Some(&b) = self.input.get(self.pos) {
            let after = self.input.get(self.pos + 1).copied();
            let token = match get_char_type(b) {
                CharType::White => {
                    self.pos += 1;
                    continue;
                }
                CharType::Bang | CharType::Op2 => self.operator2(),
                CharType::Op1 | CharType::Unary => self.single(OPERATOR),
                CharType::LeftParens
                | CharType::RightParens
                | CharType::Comma
                | CharType::Semicolon => self.single(b),
                CharType::Dash if after != Some(b'-') => self.single(OPERATOR),
                CharType::Slash if after != Some(b'*') => self.single(OPERATOR),
                CharType::Number => self.number(),
                CharType::Other => self.single(UNKNOWN),
                // Without a quote in the input, the string prefixes (`b'`, `e'`, `n'`,
                // `q'`, `u&'`, `x'`) fall back to words.
                CharType::Word
                | CharType::BString
                | CharType::EString
                | CharType::NQString
                | CharType::QString
                | CharType::UString
                | CharType::XString => self.word(),
                _ => return Err(Unsupported),
            };
            *out = token;
            return Ok(true);
        }
        Ok(false)
    }

    fn single(&mut self, kind: u8) -> Token {
        let t = Token::new(kind, &self.input[self.pos..][..1]);
        self.pos += 1;
        t
    }

    fn operator2(&mut self) -> Token {
        let rest = &self.input[self.pos..];
        if rest.len() < 2 {
            return self.single(OPERATOR);
        }
        if rest.starts_with(b"<=>") {
            self.pos += 3;
            return Token::new(OPERATOR, b"<=>");
        }
        let kind = lookup(&rest[..2]);
        if kind != BAREWORD {
            self.pos += 2;
            let kind = if kind == LOGIC_OPERATOR {
                LOGIC_OPERATOR
            } else {
                OPERATOR
            };
            return Token::new(kind, &rest[..2]);
        }
        if rest[0] == b':' {
            return self.single(COLON);
        }
        self.single(OPERATOR)
    }

    fn word(&mut self) -> Token {
        let rest = &self.input[self.pos..];
        // One pass finds the word's end and its separators: `a.b` and ``a`b``, where a
        // keyword before the separator is a token of its own (its type does not depend on
        // what follows).
        let mut len = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            match WORD_BYTE[usize::from(b)] {
                WORD_END => {
                    len = i;
                    break;
                }
                SEPARATOR => {
                    let kind = lookup(&rest[..i]);
                    if kind != BAREWORD {
                        self.pos += i;
                        return Token::new(kind, &rest[..i]);
                    }
                }
                _ => {}
            }
        }
        let word = &rest[..len];
        self.pos += len;
        let kind = if word.len() <= TOKEN_TEXT {
            lookup(word)
        } else {
            BAREWORD
        };
        Token::new(kind, word)
    }

    fn number(&mut self) -> Token {
        let input = self.input;
        let start = self.pos;
        let digits_from = |mut at: usize, ok: fn(u8) -> bool| {
            while at < input.len() && ok(input[at]) {
                at += 1;
            }
            at
        };
        if input[start] == b'0' && start + 1 < input.len() {
            let radix_digit: Option<fn(u8) -> bool> = match input[start + 1] {
                b'x' | b'X' => Some(|b| b.is_ascii_hexdigit()),
                b'b' | b'B' => Some(|b| b == b'0' || b == b'1'),
                _ => None,
            };
            if let Some(ok) = radix_digit {
                let end = digits_from(start + 2, ok);
                self.pos = end;
                let kind = if end == start + 2 { BAREWORD } else { NUMBER };
                return Token::new(kind, &input[start..end]);
            }
        }
        let mut end = digits_from(start, |b| b.is_ascii_digit());
        if input.get(end) == Some(&b'.') {
            end = digits_from(end + 1, |b| b.is_ascii_digit());
            if end - start == 1 {
                self.pos = end;
                return Token::new(DOT, b".");
            }
        }
        let (mut have_e, mut have_exp) = (false, false);
        if matches!(input.get(end), Some(b'e' | b'E')) {
            have_e = true;
            end += 1;
            if matches!(input.get(end), Some(b'+' | b'-')) {
                end += 1;
            }
            let digits_end = digits_from(end, |b| b.is_ascii_digit());
            have_exp = digits_end > end;
            end = digits_end;
        }
        // Oracle's float and double suffixes.
        if matches!(input.get(end), Some(b'd' | b'D' | b'f' | b'F')) {
            match input.get(end + 1) {
                None => end += 1,
                Some(&b) if is_white(b) || b == b';' || b == b'u' || b == b'U' => end += 1,
                Some(_) => {}
            }
        }
        self.pos = end;
        let kind = if have_e && !have_exp {
            BAREWORD
        } else {
            NUMBER
        };
        Token::new(kind, &input[start..end])
    }
}

/// The library's `syntax_merge_words`: `a b` read as one keyword (`UNION ALL`, `NOT IN`).
fn merge_words(a: &mut Token, b: &Token) -> bool {
    const FIRST: &[u8] = &[
        KEYWORD, BAREWORD, OPERATOR, UNION, FUNCTION, EXPRESSION, TSQL, SQLTYPE,
    ];
    if !FIRST.contains(&a.kind) || !(FIRST.contains(&b.kind) || b.kind == LOGIC_OPERATOR) {
        return false;
    }
    let len = usize::from(a.len) + usize::from(b.len) + 1;
    if len > TOKEN_TEXT {
        return false;
    }
    let mut merged = [0u8; TOKEN_TEXT];
    merged[..a.text().len()].copy_from_slice(a.text());
    merged[a.text().len()] = b' ';
    merged[a.text().len() + 1..len].copy_from_slice(b.text());
    let kind = lookup(&merged[..len]);
    if kind == BAREWORD {
        return false;
    }
    *a = Token::new(kind, &merged[..len]);
    true
}

/// Words that are functions before `(` (`libinjection_sqli_fold`'s list).
const FUNCTION_WORDS: &[&[u8]] = &[
    b"USER_ID",
    b"USER_NAME",
    b"DATABASE",
    b"PASSWORD",
    b"USER",
    b"CURRENT_USER",
    b"CURRENT_DATE",
    b"CURRENT_TIME",
    b"CURRENT_TIMESTAMP",
    b"LOCALTIME",
    b"LOCALTIMESTAMP",
];

/// What the fold does with the two tokens at `left` (the library's rules, in its order).
enum Two {
    /// The second goes.
    Drop,
    /// The second goes; the fold starts over.
    DropRestart,
    /// The second goes; the fold backs up one token.
    DropBack,
    /// A token changed type; the fold looks again.
    Retyped,
    /// On to three tokens (from the first, with `restart`).
    Through { restart: bool },
}

fn fold_two(v: &mut [Token; MAX_TOKENS + 3], left: usize) -> Two {
    let (a, b) = (&v[left], &v[left + 1]);
    if a.kind == SEMICOLON && b.kind == SEMICOLON {
        return Two::Drop;
    }
    if (a.kind == OPERATOR || a.kind == LOGIC_OPERATOR)
        && (b.is_unary_operator() || b.kind == SQLTYPE)
    {
        return Two::DropRestart;
    }
    if a.kind == LEFT_PAREN && b.is_unary_operator() {
        return Two::DropBack;
    }
    let (head, tail) = v.split_at_mut(left + 1);
    if merge_words(&mut head[left], &tail[0]) {
        return Two::DropBack;
    }
    let (a, b) = (&v[left], &v[left + 1]);
    if a.kind == SEMICOLON
        && b.kind == FUNCTION
        && b.len >= 2
        && b.text[..2].eq_ignore_ascii_case(b"IF")
    {
        // T-SQL's `; IF`.
        v[left + 1].kind = TSQL;
        return Two::Retyped;
    }
    if (a.kind == BAREWORD || a.kind == VARIABLE)
        && b.kind == LEFT_PAREN
        && FUNCTION_WORDS.iter().any(|w| a.is(w))
    {
        v[left].kind = FUNCTION;
        return Two::Retyped;
    }
    if a.kind == KEYWORD && (a.is(b"IN") || a.is(b"NOT IN")) {
        v[left].kind = if b.kind == LEFT_PAREN {
            OPERATOR
        } else {
            BAREWORD
        };
        return Two::Retyped;
    }
    if a.kind == OPERATOR && (a.is(b"LIKE") || a.is(b"NOT LIKE")) {
        if b.kind == LEFT_PAREN {
            v[left].kind = FUNCTION;
        }
        return Two::Through { restart: false };
    }
    if a.kind == SQLTYPE
        && [
            BAREWORD, NUMBER, SQLTYPE, LEFT_PAREN, FUNCTION, VARIABLE, STRING,
        ]
        .contains(&b.kind)
    {
        // The type goes, not the second token.
        v[left] = v[left + 1];
        return Two::DropRestart;
    }
    if a.kind == COLLATE && b.kind == BAREWORD {
        let restart = b.text().contains(&b'_');
        if restart {
            v[left + 1].kind = SQLTYPE;
        }
        return Two::Through { restart };
    }
    if (a.kind == LEFT_PAREN && b.kind == LEFT_PAREN)
        || (a.kind == RIGHT_PAREN && b.kind == RIGHT_PAREN)
    {
        return Two::DropRestart;
    }
    Two::Through { restart: false }
}

/// What the fold does with the three tokens at `left` (the library's rules, in its order);
/// but for [`Three::Keep`], it starts over.
enum Three {
    /// The second and third go.
    DropTwo,
    /// The second goes.
    DropMiddle,
    /// The second goes, and the fold backs up three tokens (the library's `1,-1`).
    DropMiddleBack,
    /// No fold: the first token stays, the fold moves on.
    Keep,
}

fn fold_three(v: &mut [Token; MAX_TOKENS + 3], left: usize) -> Three {
    let (a, b, c) = (&v[left], &v[left + 1], &v[left + 2]);
    let value = |k: u8| [BAREWORD, NUMBER, STRING, VARIABLE].contains(&k);
    let drop_two = (a.kind == NUMBER && b.kind == OPERATOR && c.kind == NUMBER)
        || (a.kind == OPERATOR && b.kind != LEFT_PAREN && c.kind == OPERATOR)
        || (a.kind == LOGIC_OPERATOR && c.kind == LOGIC_OPERATOR)
        || (a.kind == VARIABLE
            && b.kind == OPERATOR
            && [VARIABLE, NUMBER, BAREWORD].contains(&c.kind))
        || ((a.kind == BAREWORD || a.kind == NUMBER)
            && b.kind == OPERATOR
            && (c.kind == NUMBER || c.kind == BAREWORD))
        || (value(a.kind) && b.kind == OPERATOR && b.text() == b"::" && c.kind == SQLTYPE)
        || (value(a.kind) && b.kind == COMMA && value(c.kind));
    if drop_two {
        return Three::DropTwo;
    }
    let unary = b.is_unary_operator();
    if ([EXPRESSION, GROUP, COMMA].contains(&a.kind) && unary && c.kind == LEFT_PAREN)
        || ([KEYWORD, EXPRESSION, GROUP].contains(&a.kind)
            && unary
            && (value(c.kind) || c.kind == FUNCTION))
    {
        return Three::DropMiddle;
    }
    if a.kind == COMMA && unary && value(c.kind) {
        return Three::DropMiddleBack;
    }
    if a.kind == COMMA && unary && c.kind == FUNCTION {
        return Three::DropMiddle;
    }
    if a.kind == BAREWORD && b.kind == DOT && c.kind == BAREWORD {
        // `database.table`.
        return Three::DropTwo;
    }
    if a.kind == EXPRESSION && b.kind == DOT && c.kind == BAREWORD {
        return Three::DropMiddle;
    }
    if a.kind == FUNCTION && b.kind == LEFT_PAREN && c.kind != RIGHT_PAREN && a.is(b"USER") {
        // `USER(x)` is not the function.
        v[left].kind = BAREWORD;
    }
    Three::Keep
}

/// Reads tokens into `v` from `pos` on until there are `want` (the fold keeps at most one
/// past [`MAX_TOKENS`]); whether there are. `more` turns false at the end of the input.
fn read_to(
    lexer: &mut Lexer<'_>,
    v: &mut [Token; MAX_TOKENS + 3],
    pos: &mut usize,
    more: &mut bool,
    want: usize,
) -> Result<bool, Unsupported> {
    while *more && *pos <= MAX_TOKENS && *pos < want {
        if lexer.next(&mut v[*pos])? {
            *pos += 1;
        } else {
            *more = false;
        }
    }
    Ok(*pos >= want)
}

/// The library's fold: the folded tokens (at most [`MAX_TOKENS`]) into `v`, and how many
/// there are. `v` is the caller's, so that the 264-byte array is not copied out.
fn fold(lexer: &mut Lexer<'_>, v: &mut [Token; MAX_TOKENS + 3]) -> Result<usize, Unsupported> {
    // Leading `(`, SQL types and unary operators are skipped.
    loop {
        if !lexer.next(&mut v[0])? {
            return Ok(0);
        }
        let t = &v[0];
        if !(t.kind == LEFT_PAREN || t.kind == SQLTYPE || t.is_unary_operator()) {
            break;
        }
    }
    let mut more = true;
    let mut pos = 1;
    let mut left = 0;
    loop {
        if pos >= MAX_TOKENS {
            let k = |i: usize| v[i].kind;
            let special = (k(0) == NUMBER
                && (k(1) == OPERATOR || k(1) == COMMA)
                && k(2) == LEFT_PAREN
                && k(3) == NUMBER
                && k(4) == RIGHT_PAREN)
                || (k(0) == BAREWORD
                    && k(1) == OPERATOR
                    && k(2) == LEFT_PAREN
                    && (k(3) == BAREWORD || k(3) == NUMBER)
                    && k(4) == RIGHT_PAREN)
                || (k(0) == NUMBER
                    && k(1) == RIGHT_PAREN
                    && k(2) == COMMA
                    && k(3) == LEFT_PAREN
                    && k(4) == NUMBER)
                || (k(0) == BAREWORD
                    && k(1) == RIGHT_PAREN
                    && k(2) == OPERATOR
                    && k(3) == LEFT_PAREN
                    && k(4) == BAREWORD);
            if special {
                if pos > MAX_TOKENS {
                    v[1] = v[MAX_TOKENS];
                    pos = 2;
                } else {
                    pos = 1;
                }
                left = 0;
            }
        }
        if !more || left >= MAX_TOKENS {
            left = pos;
            break;
        }
        if !read_to(lexer, v, &mut pos, &mut more, left + 2)? {
            left = pos;
            continue;
        }

        match fold_two(v, left) {
            Two::Drop => {
                pos -= 1;
                continue;
            }
            Two::DropRestart => {
                pos -= 1;
                left = 0;
                continue;
            }
            Two::DropBack => {
                pos -= 1;
                left = left.saturating_sub(1);
                continue;
            }
            Two::Retyped => continue,
            Two::Through { restart } => {
                if restart {
                    left = 0;
                }
            }
        }
        if !read_to(lexer, v, &mut pos, &mut more, left + 3)? {
            left = pos;
            continue;
        }
        match fold_three(v, left) {
            Three::DropTwo => pos -= 2,
            Three::DropMiddle => {
                v[left + 1] = v[left + 2];
                pos -= 1;
            }
            Three::DropMiddleBack => {
                v[left + 1] = v[left + 2];
                pos = pos.saturating_sub(3);
            }
            Three::Keep => {
                left += 1;
                continue;
            }
        }
        left = 0;
    }
    Ok(left.min(MAX_TOKENS))
}

/// The library's first-pass fingerprint of `input` (without the fold's tokens of type
/// none), or `None` for an input outside this module's subset.
pub fn fingerprint(input: &[u8]) -> Option<Vec<u8>> {
    let mut tokens = [Token::NONE; MAX_TOKENS + 3];
    let n = first_pass(input, &mut tokens)?;
    Some(
        tokens[..n]
            .iter()
            .map(|t| t.kind)
            .filter(|&k| k != NONE)
            .collect(),
    )
}

/// The library's first pass over `input`, if it is ASCII (the library shows a token's
/// text as `<binary>` where it is not UTF-8), holds no quote (the string prefixes are words
/// then, and this is the only pass) and stays in the subset as far as the fold reads.
fn first_pass(input: &[u8], tokens: &mut [Token; MAX_TOKENS + 3]) -> Option<usize> {
    if !input.is_ascii() || memchr::memchr2(b'\'', b'"', input).is_some() {
        return None;
    }
    fold(&mut Lexer { input, pos: 0 }, tokens).ok()
}

/// Whether `input` is certainly not SQLi by libinjection: one pass, whose fingerprint the
/// library does not list. False means "ask the library".
pub fn clears(input: &[u8]) -> bool {
    let mut tokens = [Token::NONE; MAX_TOKENS + 3];
    let Some(n) = first_pass(input, &mut tokens) else {
        return false;
    };
    // The list's keys: `0` and the fingerprint upper-cased.
    let mut key = [b'0'; MAX_TOKENS + 1];
    let mut len = 1;
    for t in &tokens[..n] {
        if t.kind != NONE {
            key[len] = t.kind.to_ascii_uppercase();
            len += 1;
        }
    }
    len == 1 || !listed(&key[..len])
}

/// [`lookup`]`(key) == FINGERPRINT` for a fingerprint key (`0` and up to five upper-case
/// type characters): the binary search alone, without `lookup`'s upper-cased copy and
/// keyword-bit probe, as every such listed key is in [`FINGERPRINTS`].
fn listed(key: &[u8]) -> bool {
    FINGERPRINTS.binary_search(&packed(key)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word of the library's table, in three cases, and a few that are not in it,
    /// have the type the library's `lookup_word` gives them (its binary search finds every
    /// entry: the table holds no word twice and is sorted).
    #[test]
    fn words_have_the_librarys_types() {
        use libinjectionrs::sqli::sqli_data::lookup_word;
        let mut words: Vec<String> = ["rust", "mozilla", "x86_64", "", "a b", "union all x"]
            .map(String::from)
            .to_vec();
        for k in SQL_KEYWORDS {
            words.push(k.word.to_string());
            words.push(k.word.to_ascii_lowercase());
            let mut mixed = k.word.to_ascii_lowercase().into_bytes();
            mixed
                .iter_mut()
                .step_by(2)
                .for_each(|b| *b = b.to_ascii_uppercase());
            words.push(String::from_utf8(mixed).unwrap());
        }
        for w in &words {
            assert_eq!(
                char::from(lookup(w.as_bytes())),
                lookup_word(w).to_char(),
                "{w:?}"
            );
        }
    }

    /// The binary search over the fingerprints needs them in order, as the library's own
    /// over its table does.
    /// [`listed`] answers as [`lookup`] on every key [`clears`] can build up to four
    /// types long, and on every listed fingerprint and its prefixes.
    #[test]
    fn listed_is_lookup_on_fingerprint_keys() {
        let types: Vec<u8> = b"nkfUETto&v1ABFs.,;:()?"
            .iter()
            .map(|t| t.to_ascii_uppercase())
            .collect();
        let mut keys: Vec<Vec<u8>> = vec![b"0".to_vec()];
        let mut from = 0;
        for _ in 0..4 {
            let to = keys.len();
            for i in from..to {
                for &t in &types {
                    let mut k = keys[i].clone();
                    k.push(t);
                    keys.push(k);
                }
            }
            from = to;
        }
        for f in FINGERPRINTS {
            let bytes = f.to_be_bytes();
            let n = bytes.iter().position(|&b| b == 0).unwrap_or(8);
            for len in 1..=n {
                keys.push(bytes[..len].to_vec());
            }
        }
        let mut hits = 0;
        for k in &keys[1..] {
            let want = lookup(k) == FINGERPRINT;
            assert_eq!(listed(k), want, "{}", String::from_utf8_lossy(k));
            hits += usize::from(want);
        }
        assert!(hits > 1000, "{hits}");
    }

    #[test]
    fn fingerprints_are_sorted() {
        assert!(FINGERPRINTS.windows(2).all(|w| w[0] < w[1]));
        let typed = SQL_KEYWORDS
            .iter()
            .filter(|k| b"kfUETto&v1ABF".contains(&k.token_type));
        assert_eq!(FINGERPRINTS.len() + WORDS.len(), typed.count());
    }

    /// What browsers send is computed, not listed: cleared without the library.
    #[test]
    fn browser_values_are_cleared() {
        for value in [
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
            "https://www.example.com/products/list.php?category=books&page=2",
            "rust programming",
            "en-US,en;q=0.5",
        ] {
            assert!(clears(value.as_bytes()), "{value}");
            assert!(!libinjectionrs::detect_sqli(value.as_bytes()).is_injection());
        }
    }

    /// Listed fingerprints, quotes and comments are the library's to decide.
    #[test]
    fn injections_and_unsupported_inputs_are_left_to_the_library() {
        let union = b"1 union select password from users";
        let mut state = libinjectionrs::SqliState::new(union, libinjectionrs::SqliFlags::FLAG_NONE);
        let listed = state.get_fingerprint().as_str().as_bytes().to_vec();
        assert_eq!(fingerprint(union), Some(listed));
        for value in [
            "1 union select password from users",
            "1 and sleep(5)",
            "1' or '1'='1",
            "1 or 1=1--",
            "1 /* x */ union select 2",
            "@@version",
            "caf\u{e9} au lait",
        ] {
            assert!(!clears(value.as_bytes()), "{value}");
        }
    }
}

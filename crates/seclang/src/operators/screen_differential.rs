//! Differential tests of the `@detectSQLi` and `@detectXSS` pre-screens against the library:
//! whenever a screen answers "not an injection", libinjection must answer false, or the
//! screen would hide an attack.
//!
//! Inputs are random, drawn near the screens' borders: SQL keywords and functions (the
//! library's own table), word runs and digits, next to the bytes the tokenizers treat
//! specially. `HONEYTRAP_SCREEN_ROUNDS` sets how many inputs each random test draws.

use libinjectionrs::sqli::blacklist::is_blacklisted;
use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;

use super::detect_sqli::provably_not_sqli;
use super::detect_xss::provably_not_xss;
use super::sqli_fingerprint;

/// splitmix64: small, seedable, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Inputs per random test: a few seconds in a release build unless the environment asks
/// for more; a debug build does less.
fn rounds() -> usize {
    if let Some(n) = std::env::var("HONEYTRAP_SCREEN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    }
}

const WORD_BYTES: &[u8] = b"abcdefnquxABEFNQUXZz_0123456789";
/// Bytes with a meaning to the SQL tokenizer or its whitespace, plus high bytes.
const SQL_BORDER_BYTES: &[u8] = b"'\"`-#/*.;,()[]{}@$!=<>|&^~+%:?\\ \t\n\x0b\x0c\r\0\xa0\xff";
const SQL_BORDER_PIECES: &[&str] = &[
    "--", "-- ", "/*", "*/", "/*!", "#", "0x", "0b", "1e", "1e-", "1.", ".1", "1d", "1f", "1fu",
    "' ", "'--", "\"", "'", "`", "{`", "@@", "n'", "q'[", "u&'", "x'4f'", "b'01'", "e'",
];

/// One SQL keyword or function name from the library's table, in a random case.
fn push_keyword(rng: &mut Rng, out: &mut Vec<u8>) {
    let word = rng.pick(SQL_KEYWORDS).word.as_bytes();
    let lower = rng.chance(2);
    for &b in word {
        let mixed = rng.chance(4);
        out.push(if lower != mixed {
            b.to_ascii_lowercase()
        } else {
            b
        });
    }
}

/// One piece next to the SQL screen's border.
fn push_sql_piece(rng: &mut Rng, out: &mut Vec<u8>) {
    match rng.below(8) {
        0..=3 => push_keyword(rng, out),
        4 | 5 => {
            for _ in 0..1 + rng.below(4) {
                out.push(*rng.pick(WORD_BYTES));
            }
        }
        6 => {
            for _ in 0..1 + rng.below(3) {
                out.push(b'0' + rng.below(10) as u8);
            }
        }
        _ => out.extend_from_slice(rng.pick(SQL_BORDER_PIECES).as_bytes()),
    }
}

/// A string near the SQL screen's border: keywords, word runs, digits and border pieces,
/// glued together (most such inputs pass the screen), or separated by spaces, by border
/// bytes, or by a mix of the three; or glued words with runs of one border byte put in, at either end or inside,
/// which is what a screen that let one more byte through would pass.
fn sql_input(rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    let glue = rng.below(5);
    for i in 0..1 + rng.below(6) {
        if i > 0 {
            match (glue, rng.below(3)) {
                (0 | 4, _) | (3, 0) => {}
                (1, _) | (3, 1) => out.push(b' '),
                _ => out.push(*rng.pick(SQL_BORDER_BYTES)),
            }
        }
        push_sql_piece(rng, out);
    }
    if glue == 4 {
        let byte = *rng.pick(SQL_BORDER_BYTES);
        for _ in 0..1 + rng.below(2) {
            let at = match rng.below(3) {
                0 => 0,
                1 => out.len(),
                _ => rng.below(out.len() + 1),
            };
            for _ in 0..1 + rng.below(3) {
                out.insert(at, byte);
            }
        }
    }
}

const HTML_BORDER_BYTES: &[u8] = b"<>=/!?%-'\"` \t\n\x0b\x0c\r\0:;&#[]\xff";
/// What opens tags, comments and attribute values.
const HTML_STRUCTURE: &[&str] = &["<", "=", "</", "<!", "<?", "<%", " ", "/", ">", "= "];
const HTML_WORDS: &[&str] = &[
    "script",
    "img",
    "svg",
    "xsl",
    "a",
    "iframe",
    "style",
    "onerror",
    "onload",
    "onclick",
    "on",
    "href",
    "src",
    "action",
    "formaction",
    "xmlns",
    "xlink:href",
    "attributename",
    "values",
    "from",
    "to",
    "by",
    "javascript:",
    "vbscript:",
    "data:",
    "java&#x09;script:",
    "alert(1)",
    "DOCTYPE",
    "!--",
    "--",
    "[if",
    "xml",
    "import",
    "entity",
    "[CDATA[",
    "]]",
    "%>",
    "&colon;",
    "&#106;",
    "x",
    "1",
];

/// A string near the XSS screen's border: tag, attribute and URL words with the bytes the
/// HTML5 tokenizer switches state on; `<` and `=` rare in "quiet" inputs.
fn html_input(rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    let quiet = rng.chance(2);
    for _ in 0..1 + rng.below(8) {
        let start = out.len();
        match rng.below(3) {
            0 => out.extend_from_slice(rng.pick(HTML_WORDS).as_bytes()),
            1 => out.push(*rng.pick(HTML_BORDER_BYTES)),
            _ => out.extend_from_slice(rng.pick(HTML_STRUCTURE).as_bytes()),
        }
        if quiet && !rng.chance(30) {
            for b in &mut out[start..] {
                if *b == b'<' || *b == b'=' {
                    *b = b' ';
                }
            }
        }
    }
}

/// Runs `draw` `rounds` times; for every input the screen passes, the library must say
/// false. Returns (inputs screened, library positives) so callers can show the test
/// reached both sides of the border.
fn differential(
    seed: u64,
    rounds: usize,
    draw: fn(&mut Rng, &mut Vec<u8>),
    screen: fn(&[u8]) -> bool,
    library: fn(&[u8]) -> bool,
) -> (usize, usize) {
    let mut rng = Rng(seed);
    let mut input = Vec::new();
    let (mut screened, mut positives) = (0, 0);
    for _ in 0..rounds {
        draw(&mut rng, &mut input);
        let is_injection = library(&input);
        positives += usize::from(is_injection);
        if screen(&input) {
            screened += 1;
            assert!(
                !is_injection,
                "the screen passed an injection: {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
    (screened, positives)
}

fn sqli(input: &[u8]) -> bool {
    libinjectionrs::detect_sqli(input).is_injection()
}

fn xss(input: &[u8]) -> bool {
    libinjectionrs::detect_xss(input).is_injection()
}

/// The SQL screen's argument rests on this: no listed fingerprint is one character long
/// except `X`.
#[test]
fn only_evil_is_a_listed_one_token_fingerprint() {
    let listed: Vec<char> = (0x20u8..0x7f)
        .map(char::from)
        .filter(|c| is_blacklisted(&c.to_string()))
        .collect();
    assert_eq!(listed, ['X', 'x']);
    assert!(!is_blacklisted(""));
}

/// Every keyword of the library's table, in both cases, alone and with word and border
/// affixes (`v--` is a fingerprint a screen letting `-` through would pass).
#[test]
fn sqli_screen_is_sound_on_every_keyword() {
    const AFFIXES: &[&str] = &[
        "", "_", "1", "x", "_1a", "--", "-", "---", "#", "/*", "*/", ".", ".1", " ", " 1", "||",
        "&&", "(", ")", "'", "\"", "`", "@", ";", ",", "=", "!", "+", "\\", "\0",
    ];
    let mut screened = 0;
    for keyword in SQL_KEYWORDS {
        for case in [
            keyword.word.to_ascii_uppercase(),
            keyword.word.to_ascii_lowercase(),
        ] {
            for affix in AFFIXES {
                for input in [
                    format!("{case}{affix}"),
                    format!("{affix}{case}"),
                    format!("1{case}{affix}"),
                    format!("x{affix}{case}"),
                ] {
                    if provably_not_sqli(input.as_bytes()) {
                        screened += 1;
                        assert!(!sqli(input.as_bytes()), "screen passed {input:?}");
                    }
                }
            }
        }
    }
    assert!(screened > SQL_KEYWORDS.len(), "{screened} screened");
}

/// Every input of up to two bytes, for both screens.
#[test]
fn screens_are_sound_on_every_short_input() {
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
    inputs.extend((0..=255u8).map(|a| vec![a]));
    inputs.extend((0..=255u8).flat_map(|a| (0..=255u8).map(move |b| vec![a, b])));
    for input in &inputs {
        if provably_not_sqli(input) {
            assert!(!sqli(input), "sqli screen passed {input:?}");
        }
        if provably_not_xss(input) {
            assert!(!xss(input), "xss screen passed {input:?}");
        }
    }
}

#[test]
fn sqli_screen_is_sound_on_random_inputs() {
    let rounds = rounds();
    let (screened, positives) =
        differential(0x5eed_5971, rounds, sql_input, provably_not_sqli, sqli);
    eprintln!("sqli: {rounds} inputs, {screened} screened, {positives} injections");
    assert!(screened > rounds / 20, "{screened} of {rounds} screened");
    assert!(
        positives > rounds / 100,
        "{positives} of {rounds} injections"
    );
}

#[test]
fn xss_screen_is_sound_on_random_inputs() {
    let rounds = rounds();
    let (screened, positives) =
        differential(0x5eed_0455, rounds, html_input, provably_not_xss, xss);
    eprintln!("xss: {rounds} inputs, {screened} screened, {positives} injections");
    assert!(screened > rounds / 5, "{screened} of {rounds} screened");
    assert!(
        positives > rounds / 100,
        "{positives} of {rounds} injections"
    );
}

/// `@detectSQLi` captures the fingerprint of the pass that matched without tokenizing again;
/// it must be the one the library hands out, on the same random inputs.
#[test]
fn sqli_capture_is_the_library_fingerprint_on_random_inputs() {
    use super::{build, Captures};
    let op = build("detectSQLi", "");
    let rounds = rounds() / 10;
    let mut rng = Rng(0x5eed_f1a9);
    let (mut input, mut positives) = (Vec::new(), 0);
    for _ in 0..rounds {
        sql_input(&mut rng, &mut input);
        let want = libinjectionrs::detect_sqli(&input);
        let mut caps = Captures::new(true);
        let shown = String::from_utf8_lossy(&input);
        assert_eq!(
            op.matches(&input, &mut caps),
            want.is_injection(),
            "{shown}"
        );
        if want.is_injection() {
            positives += 1;
            let fp = want.fingerprint.map(|f| f.to_string()).unwrap_or_default();
            assert_eq!(caps.groups(), vec![fp.into_bytes()], "{shown}");
        }
    }
    assert!(
        positives > rounds / 100,
        "{positives} of {rounds} injections"
    );
}

/// Pieces of the inputs `sqli_fingerprint` computes on: what browsers send (User-Agents,
/// URLs, `Accept` values), numbers in each of the tokenizer's forms, and the operators,
/// punctuation and whitespace it reads; a few bytes outside its subset.
const PLAIN_PIECES: &[&[u8]] = &[
    b"Mozilla/5.0",
    b"(X11; Linux x86_64; rv:128.0)",
    b"Gecko/20100101",
    b"Firefox/128.0",
    b"(KHTML, like Gecko)",
    b"Chrome/120.0.0.0",
    b"https://www.example.com/a/b.php?x=1&y=2",
    b"en-US,en;q=0.5",
    b"gzip, deflate, br",
    b"text/html,*/*;q=0.8",
    b"user(",
    b"USER_ID(",
    b"current_user",
    b"not in (",
    b"in (",
    b"not like",
    b"like(",
    b"collate utf8_bin",
    b"; if",
    b"1.5",
    b".5",
    b".",
    b"0x1f",
    b"0x",
    b"0b101",
    b"0b",
    b"1e5",
    b"1e",
    b"1e+",
    b"2.e",
    b"1d",
    b"1f",
    b"1fu",
    b"1f;",
    b"12",
    b"=",
    b"<",
    b">",
    b"!",
    b"|",
    b"&",
    b"^",
    b"~",
    b"+",
    b"-",
    b"*",
    b"/",
    b"%",
    b"?",
    b":",
    b";",
    b",",
    b"(",
    b")",
    b"<=>",
    b"!=",
    b"<>",
    b"||",
    b"&&",
    b"::",
    b"!!",
    b":=",
    b" ",
    b"  ",
    b"\t",
    b"\n",
    b"\x01",
    b"\0",
    b"a.b",
    b"union.x",
    b"x`y",
    b"select`",
    b"--",
    b"/*",
    b"#",
    b"@",
    b"$",
    b"'",
    b"\"",
    b"\\",
    b"[",
    b"{",
    b"`",
    b"\xa0",
    b"\xc3\xa9",
];

/// A string of [`PLAIN_PIECES`], keywords, words and digits, mostly inside the subset
/// `sqli_fingerprint` follows the library on.
fn plain_input(rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    for i in 0..1 + rng.below(9) {
        if i > 0 && rng.chance(2) {
            out.push(b' ');
        }
        match rng.below(4) {
            0 => push_keyword(rng, out),
            1 => push_sql_piece(rng, out),
            _ => {
                let piece: &[u8] = rng.pick::<&[u8]>(PLAIN_PIECES);
                out.extend_from_slice(piece);
            }
        }
    }
}

/// The library's first pass: no quote context, ANSI.
fn first_pass(input: &[u8]) -> String {
    let mut state = libinjectionrs::SqliState::new(input, libinjectionrs::SqliFlags::FLAG_NONE);
    state.get_fingerprint().as_str().to_string()
}

/// Wherever `sqli_fingerprint` computes a fingerprint, it is the library's first pass's.
#[test]
fn sqli_fingerprints_are_the_librarys_first_pass() {
    let rounds = rounds();
    let mut rng = Rng(0x5eed_f1a9);
    let mut input = Vec::new();
    let mut computed = 0;
    let mut listed = 0;
    for round in 0..rounds {
        if round % 2 == 0 {
            plain_input(&mut rng, &mut input);
        } else {
            sql_input(&mut rng, &mut input);
        }
        let Some(fp) = sqli_fingerprint::fingerprint(&input) else {
            continue;
        };
        computed += 1;
        let want = first_pass(&input);
        listed += usize::from(is_blacklisted(&want));
        assert_eq!(
            String::from_utf8_lossy(&fp),
            want,
            "{:?}",
            String::from_utf8_lossy(&input)
        );
    }
    eprintln!("sqli_fingerprint: {rounds} inputs, {computed} computed, {listed} listed");
    assert!(computed > rounds / 4, "{computed} of {rounds} computed");
    assert!(listed > rounds / 1000, "{listed} of {rounds} listed");
}

#[test]
fn sqli_fingerprint_screen_is_sound_on_random_inputs() {
    let rounds = rounds();
    for (seed, draw) in [
        (0x5eed_c1ea, plain_input as fn(&mut Rng, &mut Vec<u8>)),
        (0x5eed_c1eb, sql_input),
    ] {
        let (screened, positives) =
            differential(seed, rounds, draw, sqli_fingerprint::clears, sqli);
        eprintln!("clears: {rounds} inputs, {screened} screened, {positives} injections");
        assert!(screened > rounds / 10, "{screened} of {rounds} screened");
        assert!(
            positives > rounds / 100,
            "{positives} of {rounds} injections"
        );
    }
}

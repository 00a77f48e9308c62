//! `honeytrap rules check`: compile rule files the way the module's `honeytrap_rules_file`
//! does (each argument becomes an `Include`), report every error with file:line, summarise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use honeytrap_seclang::rule::Rule;
use honeytrap_seclang::{LoadError, RuleSet, RuleSetBuilder};

use crate::{CheckArgs, Failure, Outcome};

/// Where the module's errors say a path came from; kept so messages look the same.
const ORIGIN: &str = "honeytrap_rules_file";

/// Adds each path as the module does; a failing path is reported and the next one still
/// checked, so one run lists the errors of every file given.
pub fn load(paths: &[String], base: &Path) -> (RuleSetBuilder, Vec<LoadError>) {
    let mut builder = RuleSet::builder();
    let mut errors = Vec::new();
    for path in paths {
        if let Err(mut e) = builder.add_text(&format!("Include \"{path}\""), ORIGIN, base) {
            // An error of the Include itself (no such file) is about the argument.
            if e.origin == ORIGIN {
                e.origin = path.clone();
                e.line = 0;
                e.reason = e.reason.trim_start_matches("Include: ").to_string();
            }
            errors.push(e);
        }
    }
    (builder, errors)
}

/// `file:line: reason`, with a hint when the fix is not obvious from the reason.
pub fn describe(e: &LoadError) -> String {
    let at = match (e.origin.is_empty(), e.line) {
        (true, _) => String::new(),
        (false, 0) => format!("{}: ", e.origin),
        (false, n) => format!("{}:{n}: ", e.origin),
    };
    let hint = if e.reason.contains("no file matches") {
        " (check the path; quote globs so that the shell leaves them to honeytrap)"
    } else if e.reason.contains("cannot read") {
        " (check the path and its permissions)"
    } else if e.reason.contains("ends with chain") {
        " (add the chained SecRule, or drop `chain` from the last rule)"
    } else {
        ""
    };
    format!("{at}{}{hint}", e.reason)
}

/// What a compiled set holds, for the summary.
#[derive(Default, Debug)]
pub struct Summary {
    pub files: BTreeSet<String>,
    pub rules: usize,
    pub links: usize,
    pub phases: BTreeMap<u8, usize>,
    pub operators: BTreeMap<String, usize>,
}

impl Summary {
    pub fn of(rs: &RuleSet) -> Summary {
        let mut s = Summary::default();
        for r in rs.rules() {
            s.rules += 1;
            *s.phases.entry(r.phase).or_default() += 1;
            let mut link: Option<&Rule> = Some(r);
            while let Some(l) = link {
                s.files.insert(l.origin.to_string());
                // SecAction counts as @unconditionalMatch, as SecLang defines it.
                *s.operators
                    .entry(format!("@{}", l.operator_name))
                    .or_default() += 1;
                if !std::ptr::eq(l, r) {
                    s.links += 1;
                }
                link = l.chained.as_deref();
            }
        }
        s
    }
}

pub fn run(args: &CheckArgs) -> Outcome {
    let base = std::env::current_dir()
        .map_err(|e| Failure::fatal(format!("cannot read the current directory: {e}")))?;
    let (builder, mut errors) = load(&args.paths, &base);
    let built = if errors.is_empty() {
        match builder.build() {
            Ok(rs) => Some(rs),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    } else {
        None
    };
    for e in &errors {
        eprintln!("error: {}", describe(e));
    }
    let Some(rs) = built else {
        return Err(Failure::findings(format!(
            "{} error(s); nothing was compiled",
            errors.len()
        )));
    };
    if !args.quiet {
        print_summary(&rs);
    }
    Ok(())
}

fn print_summary(rs: &RuleSet) {
    let s = Summary::of(rs);
    let c = rs.config();
    println!(
        "ok: {} rules ({} chained links) from {} file(s), 0 errors",
        s.rules,
        s.links,
        s.files.len()
    );
    let phases: Vec<String> = s
        .phases
        .iter()
        .map(|(p, n)| format!("{}: {n}", phase_name(*p)))
        .collect();
    println!("phases: {}", phases.join(", "));
    let mut ops: Vec<(&String, &usize)> = s.operators.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let ops: Vec<String> = ops.iter().map(|(o, n)| format!("{o} {n}")).collect();
    println!("operators ({}): {}", ops.len(), ops.join(", "));
    println!(
        "engine: {:?}, request body access {}, response body access {}",
        c.engine,
        on_off(c.request_body_access),
        on_off(c.response_body_access)
    );
    for note in rs.notices() {
        println!("notice: {note}");
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

pub fn phase_name(p: u8) -> &'static str {
    match p {
        1 => "1 request headers",
        2 => "2 request body",
        3 => "3 response headers",
        4 => "4 response body",
        5 => "5 logging",
        _ => "other",
    }
}

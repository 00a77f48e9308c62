//! `honeytrap rules test`: one raw request (and optionally its response) through the rules,
//! phase by phase as the module drives them, then what matched, on what, and the decision.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use honeytrap_seclang::actions::Disruptive;
use honeytrap_seclang::rule::Rule;
use honeytrap_seclang::transformations::TABLE;
use honeytrap_seclang::{EngineMode, MatchedRule, RuleSet, Transaction, TxInput};
use serde_json::{json, Value};

use crate::check::{describe, load};
use crate::httpmsg::{self, Message};
use crate::{Failure, Outcome, TestArgs};

/// Longest matched value printed in text mode; `--json` gives it whole.
const VALUE_SHOWN: usize = 160;

pub fn run(args: &TestArgs) -> Outcome {
    let base = std::env::current_dir()
        .map_err(|e| Failure::fatal(format!("cannot read the current directory: {e}")))?;
    let (builder, errors) = load(&args.rules, &base);
    if let Some(e) = errors.first() {
        return Err(Failure::fatal(format!(
            "the rules do not load: {} (run `honeytrap rules check` on them for every error)",
            describe(e)
        )));
    }
    let rs = Arc::new(
        builder
            .build()
            .map_err(|e| Failure::fatal(format!("the rules do not compile: {}", describe(&e))))?,
    );

    let raw = if args.request == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::fatal(format!("cannot read the request from stdin: {e}")))?;
        buf
    } else {
        std::fs::read(&args.request).map_err(|e| {
            Failure::fatal(format!(
                "cannot read the request file {}: {e}",
                args.request
            ))
        })?
    };
    let request =
        httpmsg::parse(&raw).map_err(|e| Failure::fatal(format!("{}: {e}", args.request)))?;
    let response = match &args.response {
        Some(path) => {
            let raw = std::fs::read(path).map_err(|e| {
                Failure::fatal(format!(
                    "cannot read the response file {}: {e}",
                    path.display()
                ))
            })?;
            Some(
                httpmsg::parse(&raw)
                    .map_err(|e| Failure::fatal(format!("{}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let mut tx = rs.transaction(TxInput {
        remote_addr: args.remote_addr.clone(),
        remote_port: 40000,
        server_addr: "127.0.0.1".into(),
        server_port: 80,
        server_name: request
            .header("host")
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .unwrap_or_else(|| "localhost".into()),
        unique_id: "honeytrap-rules-test".into(),
    });
    // The report shows `nolog` matches with `--all`, and a disruptive one may be `nolog`.
    tx.record_nolog_matches();
    let phases_run = evaluate(&mut tx, &request, response.as_ref());
    let report = Report::of(&rs, &tx, phases_run, &request, response.as_ref(), args.all);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.json).unwrap_or_default()
        );
    } else {
        report.print();
    }
    Ok(())
}

/// Runs the phases the module would; a blocking intervention stops the request there (nginx
/// answers at once), and phase 5 always runs. Returns the last phase that ran before 5.
pub fn evaluate(tx: &mut Transaction, req: &Message, resp: Option<&Message>) -> u8 {
    let blocks =
        |tx: &Transaction, iv: Option<_>| iv.is_some() && tx.engine_mode() == EngineMode::On;
    tx.set_request_line(&req.first, &req.second, &req.third);
    for (n, v) in &req.headers {
        tx.add_request_header(n, v);
    }
    let mut last = 1;
    let iv = tx.process_request_headers();
    if !blocks(tx, iv) {
        last = 2;
        if !req.body.is_empty() {
            tx.append_request_body(&req.body);
        }
        let iv = tx.process_request_body();
        if !blocks(tx, iv) {
            if let Some(resp) = resp {
                last = 3;
                let status = String::from_utf8_lossy(&resp.second).parse().unwrap_or(200);
                tx.set_response_status(status, &resp.first);
                for (n, v) in &resp.headers {
                    tx.add_response_header(n, v);
                }
                let iv = tx.process_response_headers();
                if !blocks(tx, iv) && tx.wants_response_body() {
                    last = 4;
                    tx.append_response_body(&resp.body);
                    let _ = tx.process_response_body();
                }
            }
        }
    }
    tx.process_logging();
    last
}

/// `t:` names of a rule link as it runs: the phase's default transformations unless `t:none`,
/// then its own.
fn transformations(r: &Rule) -> Vec<&'static str> {
    let mut ids: Vec<u8> = Vec::new();
    if let Some(d) = &r.defaults {
        if !r.actions.t_none {
            ids.extend_from_slice(&d.transforms);
        }
    }
    ids.extend_from_slice(&r.actions.transforms);
    ids.iter()
        .filter_map(|&i| TABLE.get(usize::from(i)).map(|(name, _)| *name))
        .collect()
}

fn is_disruptive(d: Disruptive) -> bool {
    matches!(
        d,
        Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect
    )
}

struct Report {
    json: Value,
    lines: Vec<String>,
}

impl Report {
    fn of(
        rs: &RuleSet,
        tx: &Transaction,
        phases_run: u8,
        req: &Message,
        resp: Option<&Message>,
        all: bool,
    ) -> Report {
        let by_id: HashMap<u32, &Rule> = rs.rules().iter().map(|r| (r.id, r)).collect();
        let shown: Vec<&MatchedRule> = tx
            .matched_rules()
            .iter()
            .filter(|m| all || (m.log && m.id != 0))
            .collect();
        let mut lines = Vec::new();
        let mut warnings: Vec<String> = req
            .warnings
            .iter()
            .map(|w| format!("request: {w}"))
            .collect();
        if let Some(r) = resp {
            warnings.extend(r.warnings.iter().map(|w| format!("response: {w}")));
        }
        for w in &warnings {
            lines.push(format!("warning: {w}"));
        }
        lines.push(format!(
            "request: {} {} {} ({} headers, {} body bytes); phases run: 1-{phases_run}, 5",
            String::from_utf8_lossy(&req.first),
            String::from_utf8_lossy(&req.second),
            String::from_utf8_lossy(&req.third),
            req.headers.len(),
            req.body.len()
        ));
        let mut matched_json = Vec::new();
        lines.push(format!("matched rules: {}", shown.len()));
        for m in &shown {
            let rule = by_id.get(&m.id).copied();
            let mut chain: Vec<Vec<&'static str>> = Vec::new();
            let mut link = rule;
            while let Some(l) = link {
                chain.push(transformations(l));
                link = l.chained.as_deref();
            }
            let value = String::from_utf8_lossy(&m.matched_var).into_owned();
            let mut head = format!("  {} (phase {})", m.id, m.phase);
            if let Some(s) = m.severity {
                head.push_str(&format!(" severity {s}"));
            }
            if is_disruptive(m.disruptive) {
                head.push_str(&format!(" {:?}", m.disruptive).to_lowercase());
            }
            if !m.log {
                head.push_str(" nolog");
            }
            if !m.msg.is_empty() {
                head.push_str(&format!(": {}", m.msg));
            }
            lines.push(head);
            if let Some(r) = rule {
                lines.push(format!(
                    "      rule: {}:{} @{}",
                    r.origin, r.line, r.operator_name
                ));
            }
            if !m.matched_var_name.is_empty() {
                lines.push(format!(
                    "      matched {} (transformed) = {}",
                    m.matched_var_name,
                    shorten(&value)
                ));
            }
            let t: Vec<String> = chain
                .iter()
                .map(|ts| {
                    if ts.is_empty() {
                        "none".to_string()
                    } else {
                        ts.join(",")
                    }
                })
                .collect();
            if !t.is_empty() {
                lines.push(format!("      t: {}", t.join(" | chain: ")));
            }
            if !m.logdata.is_empty() {
                lines.push(format!("      logdata: {}", shorten(&m.logdata)));
            }
            matched_json.push(json!({
                "id": m.id,
                "phase": m.phase,
                "msg": m.msg,
                "severity": m.severity,
                "tags": &m.tags[..],
                "log": m.log,
                "disruptive": format!("{:?}", m.disruptive).to_lowercase(),
                "matched_var_name": m.matched_var_name,
                "matched_var": value,
                "logdata": m.logdata,
                "transformations": chain,
                "file": rule.map(|r| r.origin.to_string()),
                "line": rule.map(|r| r.line),
            }));
        }
        let scores = tx.anomaly_scores();
        lines.push(format!(
            "anomaly scores: inbound {}, outbound {}",
            scores.inbound, scores.outbound
        ));
        let mode = tx.engine_mode();
        let (decision, decision_json) = match tx.intervention() {
            Some(iv) => {
                let what = if iv.drop {
                    "drop the connection".to_string()
                } else if let Some(to) = &iv.redirect {
                    format!("redirect {} to {to}", iv.status)
                } else {
                    format!("deny with status {}", iv.status)
                };
                (
                    format!("blocked: {what} (rule {}, phase {})", iv.rule_id, iv.phase),
                    json!({"action": "block", "status": iv.status, "redirect": iv.redirect,
                           "drop": iv.drop, "rule_id": iv.rule_id, "phase": iv.phase}),
                )
            }
            None => match tx
                .matched_rules()
                .iter()
                .find(|m| is_disruptive(m.disruptive))
            {
                Some(m) if mode != EngineMode::On => (
                    format!(
                        "pass: engine {mode:?}; with SecRuleEngine On, rule {} would {} (phase {})",
                        m.id,
                        format!("{:?}", m.disruptive).to_lowercase(),
                        m.phase
                    ),
                    json!({"action": "pass", "engine": format!("{mode:?}"),
                           "would_block_rule_id": m.id, "phase": m.phase}),
                ),
                _ => (
                    format!("pass (engine {mode:?})"),
                    json!({"action": "pass", "engine": format!("{mode:?}")}),
                ),
            },
        };
        lines.push(format!("decision: {decision}"));
        let json = json!({
            "request": {
                "method": String::from_utf8_lossy(&req.first),
                "uri": String::from_utf8_lossy(&req.second),
                "protocol": String::from_utf8_lossy(&req.third),
                "body_bytes": req.body.len(),
            },
            "warnings": warnings,
            "phases_run": phases_run,
            "matched": matched_json,
            "ids": shown.iter().map(|m| m.id).collect::<Vec<_>>(),
            "anomaly_scores": {"inbound": scores.inbound, "outbound": scores.outbound},
            "engine": format!("{mode:?}"),
            "decision": decision_json,
        });
        Report { json, lines }
    }

    fn print(&self) {
        for l in &self.lines {
            println!("{l}");
        }
    }
}

/// Escapes control bytes and cuts long values so one match stays on one line.
fn shorten(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() <= VALUE_SHOWN {
        return escaped;
    }
    let cut: String = escaped.chars().take(VALUE_SHOWN).collect();
    format!("{cut}… ({} bytes)", s.len())
}

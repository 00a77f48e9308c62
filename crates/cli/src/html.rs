//! The `--html` page: one self-contained file (inline CSS and SVG, no script, no external
//! resource) so that it can be mailed, archived or opened offline and shows the same forever.

use std::fmt::Write;

use crate::report::{clip, format_time, Stats, KINDS};

/// One color per kind, in [`KINDS`] order; chosen to stay apart for color-blind readers.
pub const KIND_COLORS: [&str; 4] = ["#d9480f", "#f59f00", "#1c7ed6", "#868e96"];
const RULE_COLOR: &str = "#7048e8";
const TECHNIQUE_COLOR: &str = "#c2255c";
const BAIT_COLOR: &str = "#f59f00";
/// Most bars in the timeline; hours are merged into wider bins beyond that.
const MAX_BINS: i64 = 96;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A horizontal bar chart; each row is a label and stacked (value, color) segments.
fn hbars(id: &str, rows: &[(String, Vec<(u64, &str)>)]) -> String {
    if rows.is_empty() {
        return "<p class=\"none\">none</p>".into();
    }
    let (label_w, bar_w, row_h) = (270.0, 420.0, 24.0);
    let max = rows
        .iter()
        .map(|(_, segs)| segs.iter().map(|s| s.0).sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let height = rows.len() as f64 * row_h + 8.0;
    let mut svg = format!(
        "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" role=\"img\">",
        w = label_w + bar_w + 80.0
    );
    for (i, (label, segs)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\">{l}</text>",
            x = label_w - 8.0,
            ty = y + 16.0,
            l = esc(&clip(label, 36))
        );
        let mut x = label_w;
        let mut total = 0;
        for (v, color) in segs {
            let w = *v as f64 / max * bar_w;
            if w > 0.0 {
                let _ = write!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h}\" fill=\"{color}\"><title>{v}</title></rect>",
                    h = row_h - 6.0
                );
            }
            x += w;
            total += v;
        }
        let _ = write!(
            svg,
            "<text x=\"{tx:.1}\" y=\"{ty}\">{total}</text>",
            tx = x + 6.0,
            ty = y + 16.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Events over time: stacked bars by kind, hours merged so that at most [`MAX_BINS`] remain.
fn timeline(s: &Stats) -> String {
    let (Some((&h0, _)), Some((&h1, _))) = (s.hourly.first_key_value(), s.hourly.last_key_value())
    else {
        return "<p class=\"none\">no timestamps</p>".into();
    };
    let hours = h1 - h0 + 1;
    let per_bin = (hours + MAX_BINS - 1) / MAX_BINS;
    let bins = ((hours + per_bin - 1) / per_bin) as usize;
    let mut counts = vec![[0u64; 4]; bins];
    for (h, c) in &s.hourly {
        let b = ((h - h0) / per_bin) as usize;
        for k in 0..4 {
            counts[b][k] += c[k];
        }
    }
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (left, top, w, h) = (60.0, 10.0, 760.0, 220.0);
    let bar = w / bins as f64;
    let mut svg = format!(
        "<svg id=\"timeline\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\">",
        left + w + 20.0,
        top + h + 40.0
    );
    // Axis and three grid lines with their counts.
    for i in 0..=3 {
        let v = max * f64::from(i) / 3.0;
        let y = top + h - h * f64::from(i) / 3.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#dee2e6\"/><text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{v:.0}</text>",
            x2 = left + w,
            tx = left - 6.0,
            ty = y + 4.0
        );
    }
    for (i, c) in counts.iter().enumerate() {
        let x = left + i as f64 * bar;
        let mut y = top + h;
        for k in 0..4 {
            if c[k] == 0 {
                continue;
            }
            let bh = c[k] as f64 / max * h;
            y -= bh;
            let _ = write!(
                svg,
                "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{bw:.2}\" height=\"{bh:.2}\" fill=\"{color}\"><title>{kind}: {n}</title></rect>",
                bw = (bar - 1.0).max(0.5),
                color = KIND_COLORS[k],
                kind = KINDS[k],
                n = c[k]
            );
        }
    }
    // Start, middle and end of the span under the axis.
    for (frac, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let hour = h0 + ((hours as f64) * frac) as i64;
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"{anchor}\">{t}</text>",
            x = left + w * frac,
            y = top + h + 18.0,
            t = esc(&format_time(hour.min(h1 + 1) * 3600))
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{y}\" class=\"note\">one bar = {per_bin} hour(s)</text></svg>",
        y = top + h + 36.0
    );
    svg
}

fn legend() -> String {
    let mut out = String::from("<p class=\"legend\">");
    for (k, c) in KINDS.iter().zip(KIND_COLORS) {
        let _ = write!(out, "<span><i style=\"background:{c}\"></i>{k}</span>");
    }
    out.push_str("</p>");
    out
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return "<p class=\"none\">none</p>".into();
    }
    let mut out = String::from("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

pub fn page(s: &Stats, top: usize) -> String {
    let span = match (s.first, s.last) {
        (Some(a), Some(b)) => format!("{} to {}", format_time(a), format_time(b)),
        _ => "no timestamps".into(),
    };
    let kinds: Vec<(String, Vec<(u64, &str)>)> = (0..4)
        .filter(|&k| s.by_kind[k] > 0)
        .map(|k| (KINDS[k].to_string(), vec![(s.by_kind[k], KIND_COLORS[k])]))
        .collect();
    let sources: Vec<(String, Vec<(u64, &str)>)> = s
        .top_sources(top)
        .into_iter()
        .map(|(ip, st)| {
            let segs = (0..4).map(|k| (st.by_kind[k], KIND_COLORS[k])).collect();
            (ip.to_string(), segs)
        })
        .collect();
    let rules: Vec<(String, Vec<(u64, &str)>)> = s
        .top_rules(top)
        .into_iter()
        .map(|(id, n, msg)| {
            let label = if msg.is_empty() {
                id.to_string()
            } else {
                format!("{id} {msg}")
            };
            (label, vec![(n, RULE_COLOR)])
        })
        .collect();
    let techniques: Vec<(String, Vec<(u64, &str)>)> = s
        .top_techniques(top)
        .into_iter()
        .map(|(id, n, name)| (format!("{id} {name}"), vec![(n, TECHNIQUE_COLOR)]))
        .collect();
    let baits: Vec<(String, Vec<(u64, &str)>)> = s
        .baits_sorted()
        .into_iter()
        .take(top)
        .map(|((kind, name), b)| (format!("{kind} {name}"), vec![(b.events, BAIT_COLOR)]))
        .collect();
    let reuse_rows: Vec<Vec<String>> = s
        .reuse_sorted()
        .into_iter()
        .take(top)
        .map(|((served, used, bait), r)| {
            vec![
                served.clone(),
                used.clone(),
                bait.clone(),
                r.events.to_string(),
                r.first.map(format_time).unwrap_or_default(),
            ]
        })
        .collect();

    let mut html = String::with_capacity(64 * 1024);
    html.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>honeytrap events report</title><style>\
         body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#212529;background:#fff}\
         h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}\
         .chart text{font:12px system-ui,sans-serif;fill:#343a40}.chart .note{fill:#868e96}\
         .cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #dee2e6;border-radius:6px;padding:8px 14px}\
         .card b{display:block;font-size:20px}.legend span{margin-right:14px}\
         .legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}\
         table{border-collapse:collapse}td,th{border-bottom:1px solid #dee2e6;padding:3px 10px;text-align:left}\
         .none{color:#868e96}</style></head><body>\n",
    );
    let _ = write!(
        html,
        "<h1>honeytrap events report</h1><p>{span}</p><div class=\"cards\">\
         <div class=\"card\"><b>{}</b>events</div><div class=\"card\"><b>{}</b>sources</div>\
         <div class=\"card\"><b>{}</b>baits touched</div><div class=\"card\"><b>{}</b>rules matched</div>\
         <div class=\"card\"><b>{}</b>bait reuse pairs</div></div>",
        s.events,
        s.sources.len(),
        s.baits.len(),
        s.rules.len(),
        s.reuse.len()
    );
    let _ = write!(
        html,
        "<h2>Events over time</h2>{}{}\n<h2>Events by kind</h2>{}\n\
         <h2>Top sources</h2>{}\n<h2>Baits touched</h2>{}\n<h2>Top rules</h2>{}\n\
         <h2>Top MITRE ATT&amp;CK techniques</h2>{}\n\
         <h2>Attributed bait reuse (served to one address, used from another)</h2>{}\n",
        legend(),
        timeline(s),
        hbars("kinds", &kinds),
        hbars("sources", &sources),
        hbars("baits", &baits),
        hbars("rules", &rules),
        hbars("techniques", &techniques),
        table(
            &["served to", "used by", "bait", "events", "first used"],
            reuse_rows
        )
    );
    if s.bad_lines > 0 {
        let _ = write!(
            html,
            "<p class=\"none\">{} unreadable line(s) skipped.</p>",
            s.bad_lines
        );
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_escapes() {
        let mut s = Stats::default();
        s.add_line(
            0,
            br#"{"@timestamp":"2024-05-01T10:00:00Z","source":{"ip":"192.0.2.1"},"honeytrap":{"kind":"rules","rules":[{"id":"1","msg":"<script>x</script>"}]}}"#,
        );
        let p = page(&s, 10);
        assert!(p.contains("<svg id=\"timeline\""));
        assert!(p.contains("&lt;script&gt;"));
        assert!(!p.contains("<script"));
        assert!(!p.contains("http://") || !p.contains("src="));
    }

    #[test]
    fn timeline_merges_hours_into_at_most_max_bins() {
        let mut s = Stats::default();
        for day in 0..30 {
            let line = format!(
                r#"{{"@timestamp":"2024-05-{:02}T10:00:00Z","honeytrap":{{"kind":"decoy"}}}}"#,
                day + 1
            );
            s.add_line(0, line.as_bytes());
        }
        let svg = timeline(&s);
        let bars = svg.matches("<rect").count();
        assert!(bars > 0 && bars <= MAX_BINS as usize, "{bars}");
    }
}

//! One CRS regression stage's request through every phase, as the in-process runner
//! (`crs_regression.rs`) checks it and the profile-guided build's training run
//! (`examples/pgo_train.rs`) replays it.

use std::sync::Arc;

use honeytrap_seclang::{RuleSet, Transaction, TxInput};

use crate::crs_suite::Request;

/// `req` through phases 1-5; the suite's `/reflect` backend answers with the status, headers
/// and body it is sent, any other URI with a small HTML page.
pub fn drive(rs: &Arc<RuleSet>, req: &Request) -> Transaction {
    let mut tx = rs.transaction(TxInput {
        remote_addr: "127.0.0.1".into(),
        remote_port: 40000,
        server_addr: "127.0.0.1".into(),
        server_port: 80,
        server_name: "localhost".into(),
        unique_id: "test".into(),
    });
    tx.set_request_line(&req.method, &req.uri, &req.version);
    for (n, v) in &req.headers {
        tx.add_request_header(n, v);
    }
    tx.process_request_headers();
    tx.append_request_body(&req.body);
    tx.process_request_body();
    let reflected = req
        .uri
        .starts_with(b"/reflect")
        .then(|| serde_json::from_slice::<serde_json::Value>(&req.body).ok())
        .flatten();
    match reflected {
        Some(j) => {
            tx.set_response_status(j["status"].as_u64().unwrap_or(200) as u16, b"HTTP/1.1");
            if let Some(h) = j["headers"].as_object() {
                for (k, v) in h {
                    tx.add_response_header(k.as_bytes(), v.as_str().unwrap_or("").as_bytes());
                }
            }
            if j["headers"].get("Content-Type").is_none() {
                tx.add_response_header(b"Content-Type", b"text/html");
            }
            tx.process_response_headers();
            tx.append_response_body(j["body"].as_str().unwrap_or("").as_bytes());
        }
        None => {
            tx.set_response_status(200, b"HTTP/1.1");
            tx.add_response_header(b"Content-Type", b"text/html");
            tx.process_response_headers();
            tx.append_response_body(b"<html><body>ok</body></html>");
        }
    }
    tx.process_response_body();
    tx.process_logging();
    tx
}

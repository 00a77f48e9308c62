//! `honeytrap es setup`: the index template the module would install (from
//! `honeytrap_core::sink::elasticsearch::index_template`), put unconditionally so that a setup
//! after an upgrade brings the new mappings, then Kibana saved objects, imported with
//! overwrite. Both are idempotent: running setup twice leaves the same state.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use honeytrap_core::sink::elasticsearch::index_template;

use crate::{EsArgs, Failure, Outcome};

/// Largest answer read; error bodies are cut to an excerpt anyway.
const ANSWER_LIMIT: u64 = 1 << 20;

fn read_secret(path: &Path, flag: &str) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::fatal(format!("cannot read {flag} {}: {e}", path.display())))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.is_empty() {
        return Err(Failure::fatal(format!(
            "{flag} {} is empty",
            path.display()
        )));
    }
    Ok(secret)
}

/// The `Authorization` header, as the module's sink builds it from the same files.
pub fn auth_header(args: &EsArgs) -> Result<Option<String>, Failure> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    if let Some(path) = &args.api_key_file {
        let key = read_secret(path, "--api-key-file")?;
        let key = key.trim();
        if key.contains(char::is_whitespace) {
            return Err(Failure::fatal(format!(
                "--api-key-file {} must hold one key (encoded, or id:api_key) and nothing else",
                path.display()
            )));
        }
        // `id:api_key` as Elasticsearch shows it at creation, or already encoded.
        let encoded = if key.contains(':') {
            b64(key)
        } else {
            key.to_string()
        };
        return Ok(Some(format!("ApiKey {encoded}")));
    }
    match (&args.user, &args.password_file) {
        (Some(user), Some(path)) => {
            let password = read_secret(path, "--password-file")?;
            Ok(Some(format!(
                "Basic {}",
                b64(&format!("{user}:{password}"))
            )))
        }
        _ => Ok(None),
    }
}

fn agent(args: &EsArgs) -> Result<ureq::Agent, Failure> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca)
            .map_err(|e| Failure::fatal(format!("cannot read --ca {}: {e}", ca.display())))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(Failure::fatal(format!(
                "--ca {} holds no PEM certificate",
                ca.display()
            )));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        // Statuses are explained below; as errors they would lose the body.
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(args.timeout)))
        .tls_config(tls.build())
        .user_agent(concat!("honeytrap-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

/// What to do about a refusal, in the operator's terms.
fn explain(status: u16, what: &str) -> String {
    match status {
        401 => format!("{what}: the credentials were refused (HTTP 401); check --api-key-file or --user/--password-file"),
        403 => format!("{what}: not allowed (HTTP 403); the key or user needs the manage_index_templates cluster privilege (Kibana: the saved objects management privilege)"),
        404 => format!("{what}: not found (HTTP 404); is the URL the server's base URL, without a path?"),
        s => format!("{what}: HTTP {s}"),
    }
}

/// The answer's body when the server accepted the request (2xx), else an error that says
/// what `what` was and what the server answered.
fn accepted(
    response: &mut ureq::http::Response<ureq::Body>,
    what: &str,
) -> Result<String, Failure> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(ANSWER_LIMIT)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(Failure::fatal(format!(
            "{}: {}",
            explain(status, what),
            excerpt(&text)
        )));
    }
    Ok(text)
}

fn base(url: &str, flag: &str) -> Result<String, Failure> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Failure::fatal(format!(
            "{flag} {url:?} is not an http:// or https:// URL"
        )));
    }
    if url.split('/').nth(2).is_some_and(|host| host.contains('@')) {
        return Err(Failure::fatal(format!(
            "{flag}: no credentials in the URL; use --api-key-file or --user with --password-file"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

pub fn run(args: &EsArgs) -> Outcome {
    let es = base(&args.url, "--url")?;
    let auth = auth_header(args)?;
    let agent = agent(args)?;
    let with_auth = |mut req: ureq::RequestBuilder<ureq::typestate::WithBody>| {
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        req
    };

    let url = format!("{es}/_index_template/{}", args.index);
    let mut response = with_auth(agent.put(&url))
        .header("Content-Type", "application/json")
        .send(index_template(&args.index))
        .map_err(|e| {
            Failure::fatal(format!(
                "cannot reach Elasticsearch at {es}: {e} (check --url, and --ca for a private CA)"
            ))
        })?;
    accepted(
        &mut response,
        &format!("installing the index template {}", args.index),
    )?;
    println!(
        "index template {} installed for data stream {} ({es})",
        args.index, args.index
    );

    if let (Some(kibana), Some(objects)) = (&args.kibana_url, &args.kibana_objects) {
        import_kibana(
            &agent,
            auth.as_deref(),
            &base(kibana, "--kibana-url")?,
            objects,
        )?;
    }
    Ok(())
}

/// `POST /api/saved_objects/_import?overwrite=true`, the file as multipart form data.
fn import_kibana(agent: &ureq::Agent, auth: Option<&str>, kibana: &str, objects: &Path) -> Outcome {
    let ndjson = std::fs::read(objects).map_err(|e| {
        Failure::fatal(format!(
            "cannot read --kibana-objects {}: {e}",
            objects.display()
        ))
    })?;
    let count = ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    if count == 0 {
        return Err(Failure::fatal(format!(
            "--kibana-objects {} holds no saved object (expected Kibana's NDJSON export)",
            objects.display()
        )));
    }
    // A boundary that cannot occur in the file: derived from its length and a fixed tag,
    // checked below.
    let boundary = format!("honeytrap-{:x}-boundary", ndjson.len());
    if ndjson
        .windows(boundary.len())
        .any(|w| w == boundary.as_bytes())
    {
        return Err(Failure::fatal(
            "the saved objects file contains the multipart boundary",
        ));
    }
    let mut body = Vec::with_capacity(ndjson.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.ndjson\"\r\nContent-Type: application/ndjson\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&ndjson);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

    let url = format!("{kibana}/api/saved_objects/_import?overwrite=true");
    let mut req = agent.post(&url).header("kbn-xsrf", "true").header(
        "Content-Type",
        &format!("multipart/form-data; boundary={boundary}"),
    );
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let mut response = req.send(&body[..]).map_err(|e| {
        Failure::fatal(format!(
            "cannot reach Kibana at {kibana}: {e} (check --kibana-url)"
        ))
    })?;
    let text = accepted(&mut response, "importing the Kibana saved objects")?;
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let imported = answer["successCount"].as_u64().unwrap_or(0);
    let errors = answer["errors"].as_array().map_or(0, Vec::len);
    if answer["success"] == serde_json::Value::Bool(false) || errors > 0 {
        return Err(Failure::fatal(format!(
            "Kibana imported {imported} of {count} saved objects; errors: {}",
            excerpt(&answer["errors"].to_string())
        )));
    }
    println!(
        "Kibana: {imported} saved object(s) imported from {}",
        objects.display()
    );
    Ok(())
}

//! Decoy answers: decoy servers (`honeytrap_decoy on`) say what an unconfigured nginx would,
//! decoy paths ask for credentials. Either way the body is read first, so that the event
//! carries what was posted and any credentials, decoded.

use honeytrap_core::event::Kind;
use ngx::core::Status;
use ngx::ffi::{
    ngx_http_finalize_request, ngx_http_read_client_request_body, ngx_http_request_t, ngx_int_t,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_SPECIAL_RESPONSE,
};

use crate::baits::{self, sensor};
use crate::{guard, request, respond};

/// What the decoy answers once the body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A decoy server: the default welcome page at `/`, 404 elsewhere.
    DefaultPage,
    /// A decoy path: a Basic challenge, whatever was sent (nothing ever logs in).
    LoginChallenge,
}

const WELCOME_PAGE: &[u8] = b"<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
";

const NOT_FOUND_PAGE: &[u8] = b"<html>
<head><title>404 Not Found</title></head>
<body>
<center><h1>404 Not Found</h1></center>
<hr><center>nginx</center>
</body>
</html>
";

const UNAUTHORIZED_PAGE: &[u8] = b"<html>
<head><title>401 Authorization Required</title></head>
<body>
<center><h1>401 Authorization Required</h1></center>
<hr><center>nginx</center>
</body>
</html>
";

/// Reads the body, then answers. `in_content_phase`: the content phase finalizes what a
/// handler returns; other phases do not, so there we balance the body read's count.
pub(crate) fn start(
    r: &mut ngx_http_request_t,
    answer: Answer,
    in_content_phase: bool,
) -> ngx_int_t {
    let callback = match answer {
        Answer::DefaultPage => default_page_body_read as extern "C" fn(*mut ngx_http_request_t),
        Answer::LoginChallenge => challenge_body_read,
    };
    // SAFETY: a live request in a phase handler; the callback is ours.
    let rc = unsafe { ngx_http_read_client_request_body(r, Some(callback)) };
    if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        return rc;
    }
    if !in_content_phase {
        // SAFETY: balances the reference the body read took; the callback finalizes.
        unsafe { ngx_http_finalize_request(r, Status::NGX_DONE.into()) };
    }
    Status::NGX_DONE.into()
}

extern "C" fn default_page_body_read(r: *mut ngx_http_request_t) {
    finish(r, Answer::DefaultPage);
}

extern "C" fn challenge_body_read(r: *mut ngx_http_request_t) {
    finish(r, Answer::LoginChallenge);
}

fn finish(r: *mut ngx_http_request_t, answer: Answer) {
    // SAFETY: nginx calls body handlers with the live request once the body is read.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let on_panic = || NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    let rc = guard::run(log, "decoy body handler", on_panic, || {
        record(request, answer);
        respond(request, answer)
    });
    // SAFETY: finalizes the request this handler took over.
    unsafe { ngx_http_finalize_request(r, rc) };
}

fn respond(r: &mut ngx_http_request_t, answer: Answer) -> ngx_int_t {
    match answer {
        Answer::LoginChallenge => {
            let challenge = "Basic realm=\"Restricted area\"";
            // SAFETY: the request is live; the header is copied into its pool.
            let request = unsafe { ngx::http::Request::from_ngx_http_request(r) };
            if request
                .add_header_out("WWW-Authenticate", challenge)
                .is_none()
            {
                return Status::NGX_ERROR.into();
            }
            respond::send(r, 401, "text/html", UNAUTHORIZED_PAGE)
        }
        Answer::DefaultPage => {
            let path = r.uri.as_bytes();
            if path == b"/" || path == b"/index.html" {
                respond::send(r, 200, "text/html", WELCOME_PAGE)
            } else {
                respond::send(r, 404, "text/html", NOT_FOUND_PAGE)
            }
        }
    }
}

/// Puts the body and any credentials into the request's event; a decoy path's event is made
/// here, a decoy server's was made when the request arrived.
fn record(r: &mut ngx_http_request_t, answer: Answer) {
    let Some(sensor) = sensor(r) else { return };
    let limits = &sensor.runtime.limits;
    let body = request::body(r, limits.body + 1);
    let captured = baits::credentials_of(r, &body.bytes);
    if answer == Answer::LoginChallenge {
        let Some(hit) = sensor.baits.classify(r.uri.as_bytes()) else {
            return;
        };
        let finding = sensor.baits.path_finding(&hit, captured.clone());
        let event = sensor.event(r, Kind::Decoy, Some(finding));
        if let Some(ctx) = request::ctx_or_create(r) {
            ctx.events.push(event);
        }
    }
    let Some(event) = request::ctx(r).and_then(|ctx| ctx.events.first_mut()) else {
        return;
    };
    if body.total > 0 {
        event.set_body(&body.bytes, limits);
        event.body_bytes = Some(body.total);
        let field = "http.request.body.content";
        if (body.bytes.len() as u64) < body.total && !event.truncated.iter().any(|f| f == field) {
            event.truncated.push(field.to_owned());
        }
    }
    if answer == Answer::DefaultPage {
        if let Some(captured) = &captured {
            baits::mark_credentials(event, captured, sensor.runtime);
        }
    }
}

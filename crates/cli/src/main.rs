//! `honeytrap`: the operator's and rule author's tool, built from the same crates as the nginx
//! module so that what it says about rules and events is what the module does.
//!
//! Each command lives in its own module: [`check`] and [`ruletest`] for SecLang, [`report`]
//! (with [`html`]) for events files, [`misp`] and [`es`] for the back ends.

mod check;
mod es;
mod html;
mod httpmsg;
mod misp;
mod progress;
mod report;
mod ruletest;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What went wrong, and the exit status that says so.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// The tool could not do its job (unreadable input, unreachable server): status 2.
    pub fn fatal(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    /// The job ran and found problems (rule errors): status 1.
    pub fn findings(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

pub type Outcome = Result<(), Failure>;

#[derive(Parser)]
#[command(
    name = "honeytrap",
    version,
    about = "Check and test SecLang rules, report on honeytrap events, push them to MISP, set up Elasticsearch",
    long_about = None,
    after_help = "Exit status: 0 success, 1 problems found (e.g. rule errors), 2 could not run."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SecLang rule files: check them, or test a request against them
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Events files (NDJSON, as the module's file sink writes them)
    #[command(subcommand)]
    Events(EventsCommand),
    /// MISP: push events files through the module's aggregation
    #[command(subcommand)]
    Misp(MispCommand),
    /// Elasticsearch and Kibana
    #[command(subcommand)]
    Es(EsCommand),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Parse and compile rule files exactly as the module does; errors name file:line
    #[command(
        after_help = "Each argument is loaded as `Include \"<arg>\"`, in order, so quoted \
        globs work as in honeytrap_rules_file. Exit status 1 when any file has an error.\n\n\
        Example: honeytrap rules check crs-setup.conf 'rules/*.conf'"
    )]
    Check(CheckArgs),
    /// Evaluate one raw HTTP request (and optionally its response) against rule files
    #[command(
        after_help = "The request file holds the request as sent on the wire: request \
        line, headers, blank line, body (chunked bodies are decoded). Lines may end in LF or \
        CRLF. Example:\n\n  printf 'GET /?id=1%%27%%20OR%%201=1 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' \
        | honeytrap rules test -r crs-setup.conf -r 'rules/*.conf' -"
    )]
    Test(TestArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Rule files or quoted globs, loaded in this order
    #[arg(required = true, value_name = "FILE|GLOB")]
    pub paths: Vec<String>,
    /// Print only errors (no summary)
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct TestArgs {
    /// Rule file or quoted glob; repeat for several, loaded in order
    #[arg(short = 'r', long = "rules", required = true, value_name = "FILE|GLOB")]
    pub rules: Vec<String>,
    /// Raw HTTP request file, or - for standard input
    #[arg(value_name = "REQUEST|-")]
    pub request: String,
    /// Raw HTTP response file (status line, headers, body) for phases 3 and 4
    #[arg(long, value_name = "FILE")]
    pub response: Option<PathBuf>,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Also list matches of nolog rules (CRS setup and scoring rules)
    #[arg(long)]
    pub all: bool,
    /// Client address the rules see as REMOTE_ADDR
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub remote_addr: String,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Summarise events files in one streaming pass: tables, and optionally an HTML page
    #[command(
        after_help = "Reads NDJSON (one ECS document per line); `-` reads standard \
        input. Lines that are not JSON objects are counted and skipped."
    )]
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// Events files (NDJSON), or - for standard input
    #[arg(required = true, value_name = "EVENTS.ndjson")]
    pub files: Vec<PathBuf>,
    /// Also write a self-contained HTML page with charts here
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// Rows in each top-N table
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// No progress bar, even on a terminal
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Subcommand)]
enum MispCommand {
    /// Push events files to MISP with the module's aggregation; re-running adds nothing new
    #[command(
        after_help = "Events are grouped, tagged and de-duplicated exactly as the \
        module's honeytrap_misp sink does. Records already pushed from this state file are \
        skipped, so a re-run (or a run over a grown file) sends only what is new; events and \
        attributes are also found again in MISP by their UUIDs."
    )]
    Push(MispArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MispMode {
    /// One MISP event per sensor per UTC day
    Daily,
    /// One MISP event per sensor, source IP and UTC day
    Attacker,
}

#[derive(Args)]
pub struct MispArgs {
    /// Events files (NDJSON)
    #[arg(required = true, value_name = "EVENTS.ndjson")]
    pub files: Vec<PathBuf>,
    /// Base URL of MISP, e.g. https://misp.example.org
    #[arg(long)]
    pub url: String,
    /// File holding the MISP API key (never pass the key itself)
    #[arg(long, value_name = "PATH")]
    pub key_file: PathBuf,
    #[arg(long, value_enum, default_value = "daily")]
    pub mode: MispMode,
    /// Event distribution, 0 (your organisation) to 5 (inherit)
    #[arg(long, default_value_t = 0, value_name = "0-5")]
    pub distribution: u8,
    /// auto (from the worst severity) or 1 (high) to 4 (undefined)
    #[arg(long, default_value = "auto", value_name = "auto|1-4")]
    pub threat_level: String,
    /// Publish the events that changed
    #[arg(long)]
    pub publish: bool,
    /// Extra tags on every event, comma-separated (one tlp: tag at most)
    #[arg(long, value_name = "a,b")]
    pub tags: Option<String>,
    /// Least severe event sent: 0-7 or emerg, alert, crit, error, warning, notice, info, debug
    #[arg(long, default_value = "debug", value_name = "SEVERITY")]
    pub min_severity: String,
    /// PEM file of CA certificates to trust for an https URL
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Timeout of one HTTP request, e.g. 10s
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: String,
    /// Records per delivery round
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub batch: usize,
    /// Where the ids of pushed records are kept [default: <first file>.misp-pushed]
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

#[derive(Subcommand)]
enum EsCommand {
    /// Install the events index template, and import Kibana saved objects if given
    #[command(
        after_help = "The template is the one the module installs (template=on), for \
        the data stream given by --index. Kibana objects are imported with overwrite, so \
        running setup again is harmless."
    )]
    Setup(EsArgs),
}

#[derive(Args)]
pub struct EsArgs {
    /// Elasticsearch base URL, e.g. https://es.example.org:9200
    #[arg(long)]
    pub url: String,
    /// Data stream the sensors write to (the module's index=)
    #[arg(long, default_value = "logs-honeytrap.events-default")]
    pub index: String,
    /// File holding an API key (encoded, or id:key)
    #[arg(long, value_name = "PATH", conflicts_with_all = ["user", "password_file"])]
    pub api_key_file: Option<PathBuf>,
    /// User for basic authentication (with --password-file)
    #[arg(long, requires = "password_file")]
    pub user: Option<String>,
    /// File holding the password of --user
    #[arg(long, value_name = "PATH", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for https URLs
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Kibana base URL, for --kibana-objects (same credentials)
    #[arg(long, requires = "kibana_objects")]
    pub kibana_url: Option<String>,
    /// Kibana saved objects export (NDJSON) to import
    #[arg(long, value_name = "NDJSON", requires = "kibana_url")]
    pub kibana_objects: Option<PathBuf>,
    /// Timeout of each HTTP request, in seconds
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Rules(RulesCommand::Check(a)) => check::run(&a),
        Command::Rules(RulesCommand::Test(a)) => ruletest::run(&a),
        Command::Events(EventsCommand::Report(a)) => report::run(&a),
        Command::Misp(MispCommand::Push(a)) => misp::run(&a),
        Command::Es(EsCommand::Setup(a)) => es::run(&a),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("honeytrap: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

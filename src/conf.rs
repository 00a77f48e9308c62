//! Directives and the configuration they build: `MainConf` (the `http` block: where events
//! go) and `LocConf` (per server/location: what the sensor does there).

use core::ffi::{c_char, c_void};
use core::mem::offset_of;
use core::ptr;
use std::path::PathBuf;

use std::sync::Arc;

use honeytrap_core::bait::{self, Baits, Origin, Secret, Selection};
use honeytrap_core::sink::elasticsearch::ElasticsearchSettings;
use honeytrap_core::sink::misp::MispSettings;
use honeytrap_core::sink::units::{parse_duration, parse_size};
use honeytrap_seclang::RuleSet;
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_command_t, ngx_conf_merge_path_value, ngx_conf_open_file, ngx_conf_post_t,
    ngx_conf_set_flag_slot, ngx_conf_t, ngx_flag_t, ngx_open_file_t, ngx_path_init_t, ngx_path_t,
    ngx_pool_t, ngx_str_t, ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_FLAG, NGX_CONF_NOARGS,
    NGX_CONF_TAKE1, NGX_CONF_UNSET, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};
use ngx::ffi::{ngx_conf_full_name, ngx_shm_zone_t, NGX_CONF_TAKE12, NGX_LOG_NOTICE, NGX_LOG_WARN};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};
use ngx::{ngx_conf_log_error, ngx_string};

use crate::pool::allocate;
use crate::rules::{RuleSets, Source};
use crate::zone::{self, Zone};
use crate::{guard, Honeytrap};

/// Events go here unless `honeytrap_events_file` says otherwise (relative to the prefix).
const DEFAULT_EVENTS_FILE: &str = "logs/honeytrap_events.ndjson";
/// Per-worker disk queues of the network sinks, created by nginx with the workers' owner.
const DEFAULT_SPOOL_PATH: &str = "honeytrap_spool";
const DEFAULT_QUEUE_SIZE: usize = 4096;

/// Configuration of one `http`, `server` or `location` block.
pub(crate) struct LocConf {
    /// `honeytrap on|off`; `NGX_CONF_UNSET` until set here or inherited by the merge.
    pub enabled: ngx_flag_t,
    /// `honeytrap_decoy on|off`: every request here is an event and gets a decoy answer.
    pub decoy: ngx_flag_t,
    /// `honeytrap_baits`: which baits this block lays (none unless asked for).
    pub baits: Option<Selection>,
    /// `honeytrap_rules_file` / `honeytrap_rules` written in this block.
    pub rule_sources: Vec<Source>,
    /// This block's and every enclosing block's sources, once merged.
    pub effective_rules: Option<Vec<Source>>,
    /// The compiled rule set those sources make, shared with every block naming the same.
    pub rules: Option<Arc<RuleSet>>,
    #[cfg(feature = "test-hooks")]
    pub test_panic: crate::test_hooks::PanicPoint,
}

impl Default for LocConf {
    fn default() -> Self {
        Self {
            enabled: NGX_CONF_UNSET as ngx_flag_t,
            decoy: NGX_CONF_UNSET as ngx_flag_t,
            baits: None,
            rule_sources: Vec::new(),
            effective_rules: None,
            rules: None,
            #[cfg(feature = "test-hooks")]
            test_panic: Default::default(),
        }
    }
}

impl LocConf {
    /// The sensor watches this block: `honeytrap on`, or a decoy (which implies it).
    pub fn is_enabled(&self) -> bool {
        self.enabled == 1 || self.is_decoy()
    }

    pub fn is_decoy(&self) -> bool {
        self.decoy == 1
    }

    pub fn baits(&self) -> Selection {
        self.baits.unwrap_or(Selection::NONE)
    }

    /// Inherit what this block did not set from the enclosing one.
    fn merge(&mut self, parent: &LocConf) {
        merge_flag(&mut self.enabled, parent.enabled);
        merge_flag(&mut self.decoy, parent.decoy);
        if self.baits.is_none() {
            self.baits = Some(parent.baits.unwrap_or(Selection::NONE));
        }
        // Rules add up: a block evaluates its enclosing blocks' rules, then its own.
        let inherited = parent
            .effective_rules
            .as_ref()
            .unwrap_or(&parent.rule_sources);
        let mut effective = inherited.clone();
        effective.extend(self.rule_sources.iter().cloned());
        self.effective_rules = Some(effective);
        #[cfg(feature = "test-hooks")]
        self.test_panic.merge(&parent.test_panic);
    }
}

fn merge_flag(child: &mut ngx_flag_t, parent: ngx_flag_t) {
    const UNSET: ngx_flag_t = NGX_CONF_UNSET as ngx_flag_t;
    if *child == UNSET {
        *child = if parent == UNSET { 0 } else { parent };
    }
}

/// `honeytrap_events_file`.
#[derive(Debug, Default)]
pub(crate) enum EventsFile {
    #[default]
    Default,
    Off,
    Path(String),
}

/// Configuration of the `http` block: the event pipeline every worker runs.
pub(crate) struct MainConf {
    /// Some block turned the sensor on: only then do workers open files and start a thread.
    pub used: bool,
    pub events_file: EventsFile,
    /// The events file as nginx opened it in the master (null when off or unused).
    pub events_open_file: *mut ngx_open_file_t,
    /// `honeytrap_audit_log`: events again, in ModSecurity's JSON audit log format.
    pub audit_log: Option<String>,
    pub audit_log_open_file: *mut ngx_open_file_t,
    pub elasticsearch: Option<ElasticsearchSettings>,
    pub misp: Option<MispSettings>,
    pub sensor: Option<String>,
    pub queue_size: Option<usize>,
    pub spool_path_name: Option<String>,
    /// Registered with nginx so that it creates it for the workers' user.
    pub spool_path: *mut ngx_path_t,
    pub secret_file: Option<String>,
    /// `honeytrap_decoy_paths`: decoy paths the operator chose, besides the generated ones.
    pub decoy_paths: Vec<String>,
    /// `honeytrap_tripwires`: None is the default list.
    pub tripwires: Option<Vec<String>>,
    /// Built once from the secret at configuration time, shared by every request.
    pub baits: Option<Arc<Baits>>,
    /// `honeytrap_zone`: the flagged-clients table, null when not configured.
    pub zone: *mut ngx_shm_zone_t,
    /// Every rule set compiled for this configuration, by source list.
    pub rule_sets: RuleSets,
}

impl MainConf {
    pub fn zone(&self) -> Option<&Zone> {
        // SAFETY: null, or the zone entry whose `data` is the Zone `set_zone` allocated.
        unsafe { self.zone.as_ref()?.data.cast::<Zone>().as_ref() }
    }
}

impl Default for MainConf {
    fn default() -> Self {
        MainConf {
            used: false,
            events_file: EventsFile::Default,
            events_open_file: ptr::null_mut(),
            audit_log: None,
            audit_log_open_file: ptr::null_mut(),
            elasticsearch: None,
            misp: None,
            sensor: None,
            queue_size: None,
            spool_path_name: None,
            spool_path: ptr::null_mut(),
            secret_file: None,
            decoy_paths: Vec::new(),
            tripwires: None,
            baits: None,
            zone: ptr::null_mut(),
            rule_sets: RuleSets::default(),
        }
    }
}

impl MainConf {
    pub fn queue_size(&self) -> usize {
        self.queue_size.unwrap_or(DEFAULT_QUEUE_SIZE)
    }

    pub fn spool_dir(&self) -> Option<PathBuf> {
        // SAFETY: set by ngx_conf_merge_path_value to a path whose name lives in the cycle pool.
        let path = unsafe { self.spool_path.as_ref()? };
        Some(PathBuf::from(
            String::from_utf8_lossy(path.name.as_bytes()).into_owned(),
        ))
    }

    pub fn events_path(&self) -> Option<PathBuf> {
        open_file_path(self.events_open_file)
    }

    pub fn audit_log_path(&self) -> Option<PathBuf> {
        open_file_path(self.audit_log_open_file)
    }
}

fn open_file_path(file: *mut ngx_open_file_t) -> Option<PathBuf> {
    // SAFETY: null or an open file nginx returned, alive as long as the cycle.
    let file = unsafe { file.as_ref()? };
    Some(PathBuf::from(
        String::from_utf8_lossy(file.name.as_bytes()).into_owned(),
    ))
}

impl MainConf {}

pub(crate) extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: nginx passes a valid configuration context to module callbacks.
    let (log, pool) = unsafe { ((*cf).log, (*cf).pool) };
    guard::run(log, "create_main_conf", ptr::null_mut, || {
        allocate(pool, MainConf::default()).cast()
    })
}

/// After the whole `http` block is read: open the events file and register the spool path,
/// in the master, as nginx does for its own logs and temp paths.
pub(crate) extern "C" fn init_main_conf(cf: *mut ngx_conf_t, conf: *mut c_void) -> *mut c_char {
    // SAFETY: nginx passes a valid configuration context to module callbacks.
    let log = unsafe { (*cf).log };
    guard::run(
        log,
        "init_main_conf",
        || NGX_CONF_ERROR,
        || {
            // SAFETY: `conf` is the MainConf `create_main_conf` allocated.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if !mcf.used {
                return NGX_CONF_OK;
            }
            let name = match &mcf.events_file {
                EventsFile::Off => None,
                EventsFile::Default => Some(DEFAULT_EVENTS_FILE),
                EventsFile::Path(path) => Some(path.as_str()),
            };
            if let Some(name) = name {
                // SAFETY: valid `cf`; nginx copies the name into the cycle pool.
                match unsafe { open_events_file(cf, name) } {
                    Ok(file) => mcf.events_open_file = file,
                    Err(reason) => {
                        ngx_conf_log_error!(NGX_LOG_EMERG, cf, "honeytrap_events_file: {reason}");
                        return NGX_CONF_ERROR;
                    }
                }
            }
            if let Some(name) = &mcf.audit_log {
                // SAFETY: valid `cf`; nginx copies the name into the cycle pool.
                match unsafe { open_events_file(cf, name) } {
                    Ok(file) => mcf.audit_log_open_file = file,
                    Err(reason) => {
                        ngx_conf_log_error!(NGX_LOG_EMERG, cf, "honeytrap_audit_log: {reason}");
                        return NGX_CONF_ERROR;
                    }
                }
            }
            // SAFETY: valid `cf`.
            match unsafe { build_baits(cf, mcf) } {
                Ok(baits) => mcf.baits = Some(Arc::new(baits)),
                Err(reason) => {
                    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{reason}");
                    return NGX_CONF_ERROR;
                }
            }
            if mcf.elasticsearch.is_some() || mcf.misp.is_some() {
                let name = mcf.spool_path_name.as_deref().unwrap_or(DEFAULT_SPOOL_PATH);
                // SAFETY: valid `cf`.
                match unsafe { register_path(cf, name) } {
                    Some(path) => mcf.spool_path = path,
                    None => return NGX_CONF_ERROR,
                }
            }
            NGX_CONF_OK
        },
    )
}

type FlushFn = unsafe extern "C" fn(*mut ngx_open_file_t, *mut ngx::ffi::ngx_log_t);

/// # Safety
/// `cf` must be a valid configuration context.
unsafe fn open_events_file(
    cf: *mut ngx_conf_t,
    name: &str,
) -> Result<*mut ngx_open_file_t, String> {
    let mut name = pool_str(unsafe { (*cf).pool }, name).ok_or("out of memory")?;
    // SAFETY: valid cycle; nginx opens the file in the master when the cycle starts.
    let file = unsafe { ngx_conf_open_file((*cf).cycle, &mut name) };
    // SAFETY: null or a live open-file entry of the cycle.
    let entry = unsafe { file.as_mut() }.ok_or("cannot register the file")?;
    let ours: FlushFn = crate::runtime::events_file_reopened;
    if entry.flush.is_some_and(|f| !ptr::fn_addr_eq(f, ours)) {
        return Err("the file is already used by another log".into());
    }
    // nginx calls `flush` on every open file right before it reopens them (`-s reopen`).
    entry.flush = Some(crate::runtime::events_file_reopened);
    Ok(file)
}

/// Where the installation secret is kept unless `honeytrap_secret_file` says otherwise
/// (relative to nginx's configuration directory, which the master can write to).
const DEFAULT_SECRET_FILE: &str = "honeytrap.secret";

/// Loads (or creates, on first start) the secret and derives this installation's baits.
///
/// # Safety
/// `cf` must be a valid configuration context.
unsafe fn build_baits(cf: *mut ngx_conf_t, mcf: &MainConf) -> Result<Baits, String> {
    let name = mcf.secret_file.as_deref().unwrap_or(DEFAULT_SECRET_FILE);
    let mut full = pool_str(unsafe { (*cf).pool }, name).ok_or("out of memory")?;
    // SAFETY: valid cycle; resolves a relative name against the configuration directory.
    if unsafe { ngx_conf_full_name((*cf).cycle, &mut full, 1) } != 0 {
        return Err(format!("honeytrap_secret_file: cannot resolve \"{name}\""));
    }
    let path = PathBuf::from(String::from_utf8_lossy(full.as_bytes()).into_owned());
    let (secret, origin) =
        Secret::load_or_generate(&path).map_err(|e| format!("honeytrap_secret_file: {e}"))?;
    match origin {
        Origin::Generated => {
            ngx_conf_log_error!(
                NGX_LOG_NOTICE,
                cf,
                "honeytrap: generated the installation secret {}",
                path.display()
            );
        }
        Origin::Loaded { loose: true } => {
            ngx_conf_log_error!(
                NGX_LOG_WARN,
                cf,
                "honeytrap: secret file {} is readable by others",
                path.display()
            );
        }
        Origin::Loaded { loose: false } => {}
    }
    let mut settings = bait::Settings {
        decoy_paths: mcf.decoy_paths.clone(),
        ..Default::default()
    };
    if let Some(tripwires) = &mcf.tripwires {
        settings.tripwires = tripwires.clone();
    }
    Baits::new(&secret, &settings).map_err(|e| format!("honeytrap_decoy_paths: {e}"))
}

/// # Safety
/// `cf` must be a valid configuration context.
unsafe fn register_path(cf: *mut ngx_conf_t, name: &str) -> Option<*mut ngx_path_t> {
    let mut init = ngx_path_init_t {
        name: pool_str(unsafe { (*cf).pool }, name)?,
        level: [0; 3],
    };
    let mut path: *mut ngx_path_t = ptr::null_mut();
    // SAFETY: valid `cf`; `init` outlives the call, which copies what it keeps.
    let rv = unsafe { ngx_conf_merge_path_value(cf, &mut path, ptr::null_mut(), &mut init) };
    (rv.is_null() && !path.is_null()).then_some(path)
}

/// A NUL-terminated copy of `s` in `pool`, as nginx's file functions want.
fn pool_str(pool: *mut ngx_pool_t, s: &str) -> Option<ngx_str_t> {
    // SAFETY: a fresh allocation of len + 1 bytes, filled before use.
    unsafe {
        let data = ngx::ffi::ngx_pnalloc(pool, s.len() + 1).cast::<u8>();
        if data.is_null() {
            return None;
        }
        ptr::copy_nonoverlapping(s.as_ptr(), data, s.len());
        *data.add(s.len()) = 0;
        Some(ngx_str_t { len: s.len(), data })
    }
}

pub(crate) extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: nginx passes a valid configuration context to module callbacks.
    let (log, pool) = unsafe { ((*cf).log, (*cf).pool) };
    guard::run(log, "create_loc_conf", ptr::null_mut, || {
        allocate(pool, LocConf::default()).cast()
    })
}

pub(crate) extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    parent: *mut c_void,
    child: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes a valid configuration context to module callbacks.
    let log = unsafe { (*cf).log };
    guard::run(
        log,
        "merge_loc_conf",
        || NGX_CONF_ERROR,
        || {
            // SAFETY: both pointers come from `create_loc_conf` of this module and are distinct.
            let (parent, child) =
                unsafe { (&*parent.cast::<LocConf>(), &mut *child.cast::<LocConf>()) };
            child.merge(parent);
            let sources = child.effective_rules.as_deref().unwrap_or_default();
            if sources.is_empty() {
                return NGX_CONF_OK;
            }
            // SAFETY: merging happens inside the `http` block.
            let mcf = unsafe { main_conf(cf) };
            match mcf.rule_sets.get(sources, &conf_dir(cf)) {
                Ok((rules, fresh)) => {
                    if fresh {
                        log_compiled(cf, &rules);
                    }
                    child.rules = Some(rules);
                    NGX_CONF_OK
                }
                Err(reason) => {
                    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "honeytrap rules: {reason}");
                    NGX_CONF_ERROR
                }
            }
        },
    )
}

/// The directive's arguments after its name, as UTF-8 (nginx config files are text).
///
/// # Safety
/// `cf` must be the context of a directive handler.
unsafe fn args<'a>(cf: *mut ngx_conf_t) -> Result<Vec<&'a str>, String> {
    // SAFETY: nginx fills `cf->args` with the directive's words, name first.
    let words = unsafe {
        let args = &*(*cf).args;
        core::slice::from_raw_parts(args.elts.cast::<ngx_str_t>(), args.nelts)
    };
    words[1..]
        .iter()
        .map(|w| core::str::from_utf8(w.as_bytes()).map_err(|_| "argument is not UTF-8".to_owned()))
        .collect()
}

/// Runs a directive handler body: its error becomes an `emerg` with the file and line.
fn directive(
    cf: *mut ngx_conf_t,
    name: &str,
    body: impl FnOnce(Vec<&str>) -> Result<(), String>,
) -> *mut c_char {
    // SAFETY: nginx passes a valid configuration context to directive handlers.
    let log = unsafe { (*cf).log };
    guard::run(
        log,
        name,
        || NGX_CONF_ERROR,
        || {
            // SAFETY: called from a directive handler.
            let result = unsafe { args(cf) }.and_then(body);
            match result {
                Ok(()) => NGX_CONF_OK,
                Err(reason) => {
                    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{name}: {reason}");
                    NGX_CONF_ERROR
                }
            }
        },
    )
}

/// The `http` block's MainConf while its directives are read.
///
/// # Safety
/// `cf` must be the context of an `http`-level directive handler or callback.
unsafe fn main_conf<'a>(cf: *mut ngx_conf_t) -> &'a mut MainConf {
    // SAFETY: the module's main conf exists as soon as the `http` block is entered.
    Honeytrap::main_conf_mut(unsafe { &*cf }).expect("honeytrap main conf")
}

fn cycle_prefix(cf: *mut ngx_conf_t) -> PathBuf {
    // SAFETY: the cycle of a configuration context is valid while it is read.
    let prefix = unsafe { (*(*cf).cycle).prefix };
    PathBuf::from(String::from_utf8_lossy(prefix.as_bytes()).into_owned())
}

extern "C" fn set_events_file(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_events_file", |args| {
        // SAFETY: http-level directive.
        let mcf = unsafe { main_conf(cf) };
        if !matches!(mcf.events_file, EventsFile::Default) {
            return Err("is duplicate".into());
        }
        mcf.events_file = match args[0] {
            "off" => EventsFile::Off,
            "" => return Err("empty path".into()),
            path => EventsFile::Path(path.to_owned()),
        };
        Ok(())
    })
}

extern "C" fn set_audit_log(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_audit_log", |args| {
        // SAFETY: http-level directive.
        let mcf = unsafe { main_conf(cf) };
        if mcf.audit_log.is_some() {
            return Err("is duplicate".into());
        }
        if args[0].is_empty() {
            return Err("empty path".into());
        }
        mcf.audit_log = Some(args[0].to_owned());
        Ok(())
    })
}

extern "C" fn set_elasticsearch(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_elasticsearch", |args| {
        // SAFETY: http-level directive.
        let mcf = unsafe { main_conf(cf) };
        if mcf.elasticsearch.is_some() {
            return Err("is duplicate".into());
        }
        mcf.elasticsearch = Some(ElasticsearchSettings::parse_relative_to(
            &args,
            &cycle_prefix(cf),
        )?);
        Ok(())
    })
}

extern "C" fn set_misp(cf: *mut ngx_conf_t, _: *mut ngx_command_t, _: *mut c_void) -> *mut c_char {
    directive(cf, "honeytrap_misp", |args| {
        // SAFETY: http-level directive.
        let mcf = unsafe { main_conf(cf) };
        if mcf.misp.is_some() {
            return Err("is duplicate".into());
        }
        mcf.misp = Some(MispSettings::parse_relative_to(&args, &cycle_prefix(cf))?);
        Ok(())
    })
}

extern "C" fn set_sensor(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_sensor", |args| {
        let name = args[0];
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err("name must be 1 to 128 printable characters".into());
        }
        // SAFETY: http-level directive.
        unsafe { main_conf(cf) }.sensor = Some(name.to_owned());
        Ok(())
    })
}

extern "C" fn set_queue_size(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_queue_size", |args| {
        let size = args[0]
            .parse::<usize>()
            .ok()
            .filter(|n| (16..=1 << 20).contains(n))
            .ok_or_else(|| {
                format!(
                    "invalid size \"{}\", expected 16 to 1048576 events",
                    args[0]
                )
            })?;
        // SAFETY: http-level directive.
        unsafe { main_conf(cf) }.queue_size = Some(size);
        Ok(())
    })
}

extern "C" fn set_spool_path(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_spool_path", |args| {
        if args[0].is_empty() {
            return Err("empty path".into());
        }
        // SAFETY: http-level directive.
        unsafe { main_conf(cf) }.spool_path_name = Some(args[0].to_owned());
        Ok(())
    })
}

extern "C" fn set_baits(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_baits", |args| {
        // SAFETY: `conf` is this block's LocConf (NGX_HTTP_LOC_CONF_OFFSET).
        let lcf = unsafe { &mut *conf.cast::<LocConf>() };
        if lcf.baits.is_some() {
            return Err("is duplicate".into());
        }
        lcf.baits = Some(Selection::parse(&args)?);
        Ok(())
    })
}

extern "C" fn set_rules_file(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_rules_file", |args| {
        add_rule_source(cf, conf, Source::File(args[0].to_owned()))
    })
}

extern "C" fn set_rules(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_rules", |args| {
        // SAFETY: nginx is reading a configuration file: `conf_file` is set.
        let (file, line) = unsafe {
            let f = &*(*cf).conf_file;
            (
                String::from_utf8_lossy(f.file.name.as_bytes()).into_owned(),
                f.line,
            )
        };
        let origin = format!("{file}:{line}");
        add_rule_source(
            cf,
            conf,
            Source::Text {
                text: args[0].to_owned(),
                origin,
            },
        )
    })
}

/// Compiles the source alone right away, so that a bad rule fails `nginx -t` pointing at its
/// own file and line (and at this directive); the merge reuses the result.
fn add_rule_source(cf: *mut ngx_conf_t, conf: *mut c_void, source: Source) -> Result<(), String> {
    // SAFETY: http-level context is reachable from any directive inside `http`.
    let mcf = unsafe { main_conf(cf) };
    let (rules, fresh) = mcf
        .rule_sets
        .get(std::slice::from_ref(&source), &conf_dir(cf))?;
    if fresh {
        log_compiled(cf, &rules);
    }
    // SAFETY: `conf` is this block's LocConf (NGX_HTTP_LOC_CONF_OFFSET).
    unsafe { &mut *conf.cast::<LocConf>() }
        .rule_sources
        .push(source);
    mcf.used = true;
    Ok(())
}

fn log_compiled(cf: *mut ngx_conf_t, rules: &RuleSet) {
    ngx_conf_log_error!(
        NGX_LOG_NOTICE,
        cf,
        "honeytrap rules: compiled {} rules",
        rules.rule_count()
    );
    for notice in rules.notices() {
        ngx_conf_log_error!(NGX_LOG_NOTICE, cf, "honeytrap rules: {notice}");
    }
}

/// nginx's configuration directory: relative rule paths start there, as `include` paths do.
fn conf_dir(cf: *mut ngx_conf_t) -> PathBuf {
    // SAFETY: the cycle of a configuration context is valid while it is read.
    let prefix = unsafe { (*(*cf).cycle).conf_prefix };
    PathBuf::from(String::from_utf8_lossy(prefix.as_bytes()).into_owned())
}

extern "C" fn set_secret_file(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_secret_file", |args| {
        // SAFETY: http-level directive.
        let mcf = unsafe { main_conf(cf) };
        if mcf.secret_file.is_some() {
            return Err("is duplicate".into());
        }
        mcf.secret_file = Some(args[0].to_owned());
        Ok(())
    })
}

extern "C" fn set_decoy_paths(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_decoy_paths", |args| {
        for path in &args {
            if !path.starts_with('/') {
                return Err(format!("\"{path}\" must start with /"));
            }
        }
        // SAFETY: http-level directive.
        unsafe { main_conf(cf) }
            .decoy_paths
            .extend(args.iter().map(|p| p.to_string()));
        Ok(())
    })
}

extern "C" fn set_tripwires(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_tripwires", |args| {
        // SAFETY: http-level directive.
        let mcf = unsafe { main_conf(cf) };
        if mcf.tripwires.is_some() {
            return Err("is duplicate".into());
        }
        let list = match args.as_slice() {
            ["off"] => Vec::new(),
            ["default", extra @ ..] => bait::DEFAULT_TRIPWIRES
                .iter()
                .map(|t| t.to_string())
                .chain(extra.iter().map(|t| t.to_string()))
                .collect(),
            paths => paths.iter().map(|p| p.to_string()).collect(),
        };
        if let Some(bad) = list.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("\"{bad}\" must start with /"));
        }
        mcf.tripwires = Some(list);
        Ok(())
    })
}

extern "C" fn set_zone(cf: *mut ngx_conf_t, _: *mut ngx_command_t, _: *mut c_void) -> *mut c_char {
    directive(cf, "honeytrap_zone", |args| {
        // SAFETY: http-level directive.
        let mcf = unsafe { main_conf(cf) };
        if !mcf.zone.is_null() {
            return Err("is duplicate".into());
        }
        let (name, size) = args[0]
            .split_once(':')
            .filter(|(n, s)| !n.is_empty() && !s.is_empty())
            .ok_or_else(|| format!("invalid zone \"{}\", expected name:size", args[0]))?;
        let size = parse_size("size", size)? as usize;
        if size < zone::MIN_SIZE {
            return Err(format!(
                "zone \"{name}\" is too small, at least {}k",
                zone::MIN_SIZE / 1024
            ));
        }
        let mut ttl = 24 * 3600;
        if let Some(arg) = args.get(1) {
            let value = arg
                .strip_prefix("ttl=")
                .ok_or_else(|| format!("invalid parameter \"{arg}\", expected ttl="))?;
            ttl = parse_duration("ttl", value)?.as_secs();
        }
        // SAFETY: valid `cf`.
        let pool = unsafe { (*cf).pool };
        let data = allocate(pool, Zone::new(ttl));
        let mut name = pool_str(pool, name).ok_or("out of memory")?;
        if data.is_null() {
            return Err("out of memory".into());
        }
        // SAFETY: valid `cf`; `data` lives as long as the configuration.
        mcf.zone = unsafe { zone::add(cf, &mut name, size, data) }?;
        Ok(())
    })
}

extern "C" fn set_status(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    _: *mut c_void,
) -> *mut c_char {
    directive(cf, "honeytrap_status", |_| {
        // SAFETY: location-level directive: the core module's location conf is current.
        let clcf = NgxHttpCoreModule::location_conf_mut(unsafe { &*cf }).ok_or("no location")?;
        clcf.handler = Some(crate::status::handler);
        // SAFETY: http-level context is reachable from any directive inside `http`.
        unsafe { main_conf(cf) }.used = true;
        Ok(())
    })
}

/// After `honeytrap on|off` or `honeytrap_decoy on|off` was stored: note that the pipeline
/// is needed.
extern "C" fn mark_used(cf: *mut ngx_conf_t, _post: *mut c_void, data: *mut c_void) -> *mut c_char {
    // SAFETY: `data` points to the ngx_flag_t the flag slot just set.
    if unsafe { *data.cast::<ngx_flag_t>() } == 1 {
        // SAFETY: called from within the `http` block.
        unsafe { main_conf(cf) }.used = true;
    }
    NGX_CONF_OK
}

static mut MARK_USED: ngx_conf_post_t = ngx_conf_post_t {
    post_handler: Some(mark_used),
};

const ANY_HTTP_BLOCK: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

const fn main_directive(
    name: ngx_str_t,
    args: u32,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: (NGX_HTTP_MAIN_CONF | args) as ngx_uint_t,
        set: Some(set),
        conf: NGX_HTTP_MAIN_CONF_OFFSET as ngx_uint_t,
        offset: 0,
        post: ptr::null_mut(),
    }
}

/// A directive kept in the location configuration, allowed where `contexts_and_args` says,
/// with a handler of its own.
const fn loc_directive(
    name: ngx_str_t,
    contexts_and_args: u32,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: contexts_and_args as ngx_uint_t,
        set: Some(set),
        conf: NGX_HTTP_LOC_CONF_OFFSET as ngx_uint_t,
        offset: 0,
        post: ptr::null_mut(),
    }
}

#[cfg(not(feature = "test-hooks"))]
const COMMAND_COUNT: usize = 18;
#[cfg(feature = "test-hooks")]
const COMMAND_COUNT: usize = 19;

// nginx keeps pointers into this table and writes nothing to it; `static mut` only because the
// C type wants `*mut` members.
pub(crate) static mut COMMANDS: [ngx_command_t; COMMAND_COUNT] = [
    ngx_command_t {
        name: ngx_string!("honeytrap"),
        type_: (ANY_HTTP_BLOCK | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ngx_conf_set_flag_slot),
        conf: NGX_HTTP_LOC_CONF_OFFSET as ngx_uint_t,
        offset: offset_of!(LocConf, enabled),
        // Only the address is taken; nginx reads the post handler from it.
        post: ptr::addr_of_mut!(MARK_USED).cast(),
    },
    ngx_command_t {
        name: ngx_string!("honeytrap_decoy"),
        type_: (NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ngx_conf_set_flag_slot),
        conf: NGX_HTTP_LOC_CONF_OFFSET as ngx_uint_t,
        offset: offset_of!(LocConf, decoy),
        post: ptr::addr_of_mut!(MARK_USED).cast(),
    },
    main_directive(
        ngx_string!("honeytrap_events_file"),
        NGX_CONF_TAKE1,
        set_events_file,
    ),
    main_directive(
        ngx_string!("honeytrap_elasticsearch"),
        NGX_CONF_1MORE,
        set_elasticsearch,
    ),
    main_directive(ngx_string!("honeytrap_misp"), NGX_CONF_1MORE, set_misp),
    main_directive(
        ngx_string!("honeytrap_audit_log"),
        NGX_CONF_TAKE1,
        set_audit_log,
    ),
    main_directive(ngx_string!("honeytrap_sensor"), NGX_CONF_TAKE1, set_sensor),
    main_directive(
        ngx_string!("honeytrap_queue_size"),
        NGX_CONF_TAKE1,
        set_queue_size,
    ),
    main_directive(
        ngx_string!("honeytrap_spool_path"),
        NGX_CONF_TAKE1,
        set_spool_path,
    ),
    main_directive(
        ngx_string!("honeytrap_secret_file"),
        NGX_CONF_TAKE1,
        set_secret_file,
    ),
    main_directive(
        ngx_string!("honeytrap_decoy_paths"),
        NGX_CONF_1MORE,
        set_decoy_paths,
    ),
    main_directive(
        ngx_string!("honeytrap_tripwires"),
        NGX_CONF_1MORE,
        set_tripwires,
    ),
    main_directive(ngx_string!("honeytrap_zone"), NGX_CONF_TAKE12, set_zone),
    loc_directive(
        ngx_string!("honeytrap_rules_file"),
        ANY_HTTP_BLOCK | NGX_CONF_TAKE1,
        set_rules_file,
    ),
    loc_directive(
        ngx_string!("honeytrap_rules"),
        ANY_HTTP_BLOCK | NGX_CONF_TAKE1,
        set_rules,
    ),
    loc_directive(
        ngx_string!("honeytrap_baits"),
        ANY_HTTP_BLOCK | NGX_CONF_1MORE,
        set_baits,
    ),
    loc_directive(
        ngx_string!("honeytrap_status"),
        NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
        set_status,
    ),
    #[cfg(feature = "test-hooks")]
    crate::test_hooks::PANIC_COMMAND,
    ngx_command_t::empty(),
];

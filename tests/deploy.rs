//! The container image and the stack, checked without Docker (none runs here): the Dockerfile
//! and compose file pin their images and agree on the nginx version, commit no secrets and
//! health-check every service; the Kibana saved objects are well-formed and every field they
//! use is mapped by the index template and present in events the module really emits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use honeytrap_core::event::{
    AnomalyScore, Attribution, Bait, Event, Kind, Limits, MitreRef, Observer, RuleMatch, RuleRef,
};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_file(path: &str) -> Json {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

/// The parts of a Dockerfile these checks need.
struct Dockerfile {
    /// `ARG name=default` before the first FROM (usable in FROM lines).
    global_args: HashMap<String, String>,
    stages: Vec<Stage>,
}

#[derive(Default)]
struct Stage {
    image: String,
    name: Option<String>,
    /// Instructions of the stage, continuation lines joined: (keyword upper-cased, rest).
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> {
        self.instructions
            .iter()
            .filter(move |(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
    }
}

impl Dockerfile {
    fn parse(text: &str) -> Dockerfile {
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if trimmed.starts_with('#') {
                continue; // a comment inside a continued instruction
            }
            match trimmed.strip_suffix('\\') {
                Some(part) => {
                    current.push_str(part);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    logical.push(std::mem::take(&mut current));
                }
            }
        }
        let mut global_args = HashMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for instruction in logical {
            let (keyword, rest) = instruction
                .split_once(char::is_whitespace)
                .unwrap_or((&instruction, ""));
            let (keyword, rest) = (keyword.to_ascii_uppercase(), rest.trim().to_owned());
            if keyword == "FROM" {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                    [_] => None,
                    _ => panic!("unexpected FROM {rest}"),
                };
                stages.push(Stage {
                    image: words[0].to_owned(),
                    name,
                    instructions: Vec::new(),
                });
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push((keyword, rest));
            } else if keyword == "ARG" {
                let (name, default) = rest.split_once('=').unwrap_or((&rest, ""));
                global_args.insert(name.to_owned(), default.to_owned());
            }
        }
        Dockerfile {
            global_args,
            stages,
        }
    }

    /// The image of a stage with `${ARG}` replaced by the global defaults.
    fn image(&self, stage: &Stage) -> String {
        let mut image = stage.image.clone();
        for (name, value) in &self.global_args {
            image = image.replace(&format!("${{{name}}}"), value);
        }
        assert!(
            !image.contains('$'),
            "{}: an ARG without a default",
            stage.image
        );
        image
    }

    fn arg(&self, name: &str) -> &str {
        self.global_args
            .get(name)
            .unwrap_or_else(|| panic!("no global ARG {name}"))
    }
}

fn dockerfile() -> Dockerfile {
    Dockerfile::parse(&read("Dockerfile"))
}

/// `a.b.c` with every part a number.
fn is_exact_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// An image reference is pinned when it has a tag that is not `latest` and starts with an exact
/// version (`1.28.3-trixie`, `v2.5.31`, `9.4.6`).
fn assert_pinned(image: &str) {
    let (_, tag) = image
        .rsplit_once(':')
        .filter(|(name, _)| !name.is_empty() && !image.ends_with('/'))
        .unwrap_or_else(|| panic!("{image}: no tag"));
    assert!(!tag.contains('/'), "{image}: no tag");
    let version = tag.trim_start_matches('v');
    let version = version.split('-').next().unwrap();
    assert!(
        tag != "latest" && is_exact_version(version),
        "{image}: the tag must start with an exact version (x.y.z)"
    );
}

/// The nginx version the nginx-src crate vendors: its version is `<crate>+<nginx>`.
fn vendored_nginx() -> String {
    let lock = read("Cargo.lock");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"nginx-src\"" {
            let version = lines.next().unwrap();
            let version = version
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .unwrap();
            return version.split_once('+').unwrap().1.to_owned();
        }
    }
    panic!("nginx-src not in Cargo.lock");
}

#[test]
fn dockerfile_pins_its_images_and_builds_for_the_runtime_nginx() {
    let d = dockerfile();
    assert_eq!(d.stages.len(), 2, "a builder and a runtime stage");
    for stage in &d.stages {
        assert_pinned(&d.image(stage));
    }
    let nginx = d.arg("NGINX_VERSION");
    let debian = d.arg("DEBIAN_RELEASE");
    assert!(is_exact_version(nginx), "NGINX_VERSION={nginx}");
    assert!(is_exact_version(d.arg("RUST_VERSION")));

    let (builder, runtime) = (&d.stages[0], &d.stages[1]);
    // Same nginx, same Debian release (the module links against the runtime's glibc).
    assert_eq!(d.image(runtime), format!("nginx:{nginx}-{debian}"));
    assert_eq!(
        d.image(builder),
        format!("rust:{}-{debian}", d.arg("RUST_VERSION"))
    );
    assert_eq!(builder.name.as_deref(), Some("build"));
    // The builder builds for that version, with the script CI runs.
    assert!(builder.all("ARG").any(|a| a == "NGINX_VERSION"));
    assert!(
        builder
            .all("RUN")
            .any(|r| r.contains("NGINX_VERSION=${NGINX_VERSION}")
                && r.contains("docker/build-module.sh")),
        "the builder must run docker/build-module.sh with NGINX_VERSION"
    );
    // CI (no network) builds the vendored nginx: the image must ship that same version, or CI
    // would not be checking what the image runs.
    assert_eq!(
        nginx,
        vendored_nginx(),
        "NGINX_VERSION must be the nginx vendored by nginx-src (Cargo.lock)"
    );
    let build_script = read("docker/build-module.sh");
    assert!(build_script.contains("ARG NGINX_VERSION="));
    assert!(build_script.contains("cargo build --locked --release --lib"));
    assert!(
        build_script.contains("-t -q -p"),
        "the script runs nginx -t"
    );

    // Runtime: the module where load_module finds it, unprivileged, checked by nginx -t.
    assert!(runtime.all("COPY").any(|c| c.starts_with("--from=build")
        && c.ends_with("/usr/lib/nginx/modules/ngx_http_honeytrap_module.so")));
    assert!(read("docker/nginx.conf")
        .lines()
        .any(|l| l.trim() == "load_module modules/ngx_http_honeytrap_module.so;"));
    assert!(runtime
        .all("COPY")
        .any(|c| c == "docker/nginx.conf /etc/nginx/nginx.conf"));
    assert!(runtime
        .all("COPY")
        .any(|c| c == "rules/ /etc/nginx/honeytrap/rules.d/"));
    assert_eq!(runtime.all("USER").collect::<Vec<_>>(), ["nginx"]);
    let user_at = runtime
        .instructions
        .iter()
        .position(|(k, _)| k == "USER")
        .unwrap();
    assert!(
        runtime.instructions[user_at..]
            .iter()
            .any(|(k, r)| k == "RUN" && r.contains("nginx -t")),
        "nginx -t must run as the nginx user, after USER"
    );
    assert!(
        runtime
            .all("RUN")
            .any(|r| r.contains("rm -f /var/lib/honeytrap/honeytrap.secret")),
        "the secret nginx -t generates must not stay in the image"
    );
    assert_eq!(runtime.all("HEALTHCHECK").count(), 1);
}

#[test]
fn the_crs_is_pinned_file_by_file() {
    let d = dockerfile();
    let version = d.arg("CRS_VERSION");
    assert!(is_exact_version(version));
    let manifest_path = format!("docker/crs-v{version}.sha256");
    let manifest = read(&manifest_path);
    let mut names = BTreeSet::new();
    for line in manifest.lines() {
        let (digest, name) = line.split_once("  ").expect("sha256sum format");
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{line}"
        );
        names.insert(name);
    }
    assert!(names.contains("crs-setup.conf.example") && names.contains("LICENSE"));
    let rules = names.iter().filter(|n| n.starts_with("rules/")).count();
    assert!(
        names.contains("rules/REQUEST-901-INITIALIZATION.conf") && rules > 40,
        "{rules} rule files"
    );
    let fetch = read("docker/fetch-crs.sh");
    assert!(fetch.contains("sha256sum --quiet --strict -c \"$manifest\""));
    assert!(fetch.contains(
        "https://github.com/coreruleset/coreruleset/archive/refs/tags/v$CRS_VERSION.tar.gz"
    ));
    assert!(read("Dockerfile").contains("docker/fetch-crs.sh /out/crs"));

    // Against the release itself, where the shared copy is present.
    let shared = repo().join(format!("../shared/crs/v{version}"));
    if !shared.is_dir() {
        eprintln!("SKIPPED digest check: {} is absent", shared.display());
        return;
    }
    let status = Command::new("sha256sum")
        .args(["--quiet", "--strict", "-c"])
        .arg(repo().join(&manifest_path))
        .current_dir(&shared)
        .status()
        .expect("sha256sum");
    assert!(
        status.success(),
        "{manifest_path} does not match {shared:?}"
    );
    let on_disk = fs::read_dir(shared.join("rules")).unwrap().count();
    assert_eq!(on_disk, rules, "the manifest must list every rules/ file");
}

// ---------------------------------------------------------------------------------------------
// Compose

fn compose() -> Yaml {
    serde_yaml::from_str(&read("deploy/compose.yaml")).expect("deploy/compose.yaml")
}

fn services(compose: &Yaml) -> Vec<(String, &Yaml)> {
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v))
        .collect()
}

/// `environment:` as pairs, whether written as a map or a list of `K=V`.
fn environment(service: &Yaml) -> Vec<(String, String)> {
    let scalar = |v: &Yaml| match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => String::new(),
        other => panic!("environment value {other:?}"),
    };
    match &service["environment"] {
        Yaml::Mapping(m) => m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Yaml::Sequence(items) => items
            .iter()
            .map(|i| {
                let s = scalar(i);
                let (k, v) = s.split_once('=').unwrap_or((&s, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Yaml::Null => Vec::new(),
        other => panic!("environment {other:?}"),
    }
}

/// Names that hold credentials.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "ENCRYPTION"]
        .iter()
        .any(|w| upper.contains(w))
        && !upper.ends_with("_FILE")
}

#[test]
fn compose_pins_images_and_health_checks_every_service() {
    let c = compose();
    let services = services(&c);
    let names: BTreeSet<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        "honeytrap",
        "app",
        "elasticsearch",
        "kibana",
        "setup",
        "misp-core",
    ] {
        assert!(names.contains(wanted), "no {wanted} service");
    }
    let mut images = BTreeMap::new();
    for (name, service) in &services {
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        assert!(!image.contains('$'), "{name}: {image} is not a literal");
        assert_pinned(image);
        images.insert(name.as_str(), image);
        let test = &service["healthcheck"]["test"];
        let present = match test {
            Yaml::Sequence(words) => words.len() > 1,
            Yaml::String(s) => !s.trim().is_empty(),
            _ => false,
        };
        assert!(present, "{name}: no health check");
    }
    // The sensor is built here and waits for nothing: its sinks spool.
    let sensor = &c["services"]["honeytrap"];
    assert_eq!(sensor["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    assert!(
        sensor.get("depends_on").is_none(),
        "the honeypot must not wait for other services"
    );
    // Elasticsearch and Kibana on one version; the demo app on the sensor's nginx.
    let version = |image: &str| image.rsplit_once(':').unwrap().1.to_owned();
    assert_eq!(version(images["elasticsearch"]), version(images["kibana"]));
    assert!(images["elasticsearch"].starts_with("docker.elastic.co/elasticsearch/elasticsearch:"));
    assert!(images["kibana"].starts_with("docker.elastic.co/kibana/kibana:"));
    let d = dockerfile();
    assert_eq!(
        images["app"],
        format!(
            "nginx:{}-{}",
            d.arg("NGINX_VERSION"),
            d.arg("DEBIAN_RELEASE")
        )
    );
    // Security on, and every sink the image can configure is configured.
    let es = environment(&c["services"]["elasticsearch"]);
    assert!(es.contains(&("xpack.security.enabled".into(), "true".into())));
    let sensor_env: BTreeMap<_, _> = environment(sensor).into_iter().collect();
    for key in [
        "HONEYTRAP_UPSTREAM",
        "HONEYTRAP_ES_URL",
        "HONEYTRAP_ES_USER",
        "HONEYTRAP_ES_PASSWORD",
        "HONEYTRAP_MISP_URL",
        "HONEYTRAP_MISP_KEY",
    ] {
        assert!(sensor_env.contains_key(key), "honeytrap: no {key}");
        assert!(
            read("docker/40-honeytrap-config.sh").contains(key),
            "{key} is not read by the start-up script"
        );
    }
}

#[test]
fn no_secrets_are_committed() {
    let c = compose();
    for (name, service) in services(&c) {
        for (key, value) in environment(service) {
            if is_secret_name(&key) {
                // Only `${VAR:?...}` / `${VAR}`: the value comes from deploy/.env.
                assert!(
                    value.starts_with("${") && value.ends_with('}') && !value.contains(":-"),
                    "{name}: {key} must come from deploy/.env, not {value:?}"
                );
            }
        }
    }
    // The example holds placeholders only.
    for line in read("deploy/.env.example").lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').expect("KEY=value");
        if is_secret_name(key) {
            assert!(
                value.starts_with("CHANGE-ME"),
                "{key}: placeholder expected"
            );
        }
    }
    assert!(read("deploy/.gitignore")
        .lines()
        .any(|l| l.trim() == ".env"));
    // Nothing named .env (or a key file) is tracked, wherever it is.
    let Ok(output) = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo())
        .output()
    else {
        eprintln!("SKIPPED tracked-file check: no git");
        return;
    };
    if !output.status.success() {
        eprintln!("SKIPPED tracked-file check: not a git checkout");
        return;
    }
    for path in String::from_utf8_lossy(&output.stdout).split('\0') {
        let file = path.rsplit('/').next().unwrap();
        assert!(
            file != ".env" && !file.ends_with(".pem") && !file.ends_with(".key"),
            "{path} must not be committed"
        );
    }
    // No credential-looking literal in what configures the image and the stack.
    for path in [
        "Dockerfile",
        "deploy/compose.yaml",
        "docker/nginx.conf",
        "docker/40-honeytrap-config.sh",
    ] {
        for line in read(path).lines() {
            let lower = line.to_ascii_lowercase();
            for marker in ["password=", "password:", "api_key=", "apikey", "authkey"] {
                if let Some(at) = lower.find(marker) {
                    let value = line[at + marker.len()..].trim();
                    // A variable, or the `:-`/`:?` of a `${NAME:-...}` expansion.
                    assert!(
                        value.is_empty()
                            || value.starts_with('$')
                            || value.starts_with("\"$")
                            || value.starts_with('-')
                            || value.starts_with('?'),
                        "{path}: literal credential? {line}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kibana saved objects, index template, events

const SAVED_OBJECTS: &str = "deploy/kibana/honeytrap.ndjson";

fn saved_objects() -> Vec<Json> {
    read(SAVED_OBJECTS)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{SAVED_OBJECTS}: {e}: {l}")))
        .collect()
}

/// An attribute Kibana stores as a JSON string.
fn embedded(object: &Json, pointer: &str) -> Json {
    let text = object
        .pointer(pointer)
        .and_then(Json::as_str)
        .unwrap_or_else(|| panic!("{}: no {pointer}", object["id"]));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{}{pointer}: {e}", object["id"]))
}

fn semver(v: &str) -> (u32, u32, u32) {
    let parts: Vec<u32> = v
        .split('.')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("version {v}")))
        .collect();
    assert_eq!(parts.len(), 3, "version {v}");
    (parts[0], parts[1], parts[2])
}

fn kibana_version() -> (u32, u32, u32) {
    let c = compose();
    let image = c["services"]["kibana"]["image"].as_str().unwrap();
    semver(image.rsplit_once(':').unwrap().1)
}

#[test]
fn saved_objects_are_valid_kibana_exports() {
    let objects = saved_objects();
    let kibana = kibana_version();
    let mut ids = BTreeSet::new();
    for o in &objects {
        let (id, kind) = (o["id"].as_str().unwrap(), o["type"].as_str().unwrap());
        assert!(ids.insert((kind, id)), "duplicate {kind} {id}");
        assert!(o["attributes"]["title"].is_string(), "{id}: no title");
        assert!(o["references"].is_array(), "{id}: no references");
        // Migrations only run forward: nothing may claim a version newer than the Kibana.
        for key in ["coreMigrationVersion", "typeMigrationVersion"] {
            let v = o[key].as_str().unwrap_or_else(|| panic!("{id}: no {key}"));
            assert!(semver(v) <= kibana, "{id}: {key} {v} is newer than Kibana");
        }
        assert!(matches!(
            kind,
            "index-pattern" | "lens" | "map" | "search" | "dashboard"
        ));
    }
    let resolve = |kind: &str, id: &str| ids.contains(&(kind, id));
    for o in &objects {
        let id = o["id"].as_str().unwrap();
        let refs: HashMap<&str, (&str, &str)> = o["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let (name, kind, target) = (
                    r["name"].as_str().unwrap(),
                    r["type"].as_str().unwrap(),
                    r["id"].as_str().unwrap(),
                );
                assert!(
                    resolve(kind, target),
                    "{id}: reference {name} to a missing {kind} {target}"
                );
                (name, (kind, target))
            })
            .collect();
        match o["type"].as_str().unwrap() {
            "index-pattern" => {
                assert_eq!(o["attributes"]["title"], "logs-honeytrap-*");
                assert_eq!(o["attributes"]["timeFieldName"], "@timestamp");
            }
            "lens" => {
                let layers = o
                    .pointer("/attributes/state/datasourceStates/formBased/layers")
                    .and_then(Json::as_object)
                    .unwrap_or_else(|| panic!("{id}: no formBased layers"));
                for (layer, spec) in layers {
                    let name = format!("indexpattern-datasource-layer-{layer}");
                    assert_eq!(refs.get(name.as_str()).map(|r| r.0), Some("index-pattern"));
                    let columns = spec["columns"].as_object().unwrap();
                    let order: BTreeSet<&str> = spec["columnOrder"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap())
                        .collect();
                    assert_eq!(order, columns.keys().map(String::as_str).collect());
                    for column in columns.values() {
                        if let Some(by) = column.pointer("/params/orderBy/columnId") {
                            assert!(columns.contains_key(by.as_str().unwrap()), "{id}: {by}");
                        }
                    }
                }
                assert!(o["attributes"]["visualizationType"]
                    .as_str()
                    .unwrap()
                    .starts_with("lns"));
            }
            "map" => {
                embedded(o, "/attributes/mapStateJSON");
                let layers = embedded(o, "/attributes/layerListJSON");
                for layer in layers.as_array().unwrap() {
                    if let Some(name) = layer.pointer("/sourceDescriptor/indexPatternRefName") {
                        assert!(refs.contains_key(name.as_str().unwrap()), "{id}: {name}");
                    }
                }
            }
            "search" => {
                let source = embedded(o, "/attributes/kibanaSavedObjectMeta/searchSourceJSON");
                let name = source["indexRefName"].as_str().unwrap();
                assert!(refs.contains_key(name));
            }
            "dashboard" => {
                embedded(o, "/attributes/optionsJSON");
                let panels = embedded(o, "/attributes/panelsJSON");
                let panels = panels.as_array().unwrap();
                assert_eq!(refs.len(), panels.len(), "{id}: one reference per panel");
                for p in panels {
                    let index = p["panelIndex"].as_str().unwrap();
                    let name = format!("{index}:{}", p["panelRefName"].as_str().unwrap());
                    let (kind, _) = refs
                        .get(name.as_str())
                        .unwrap_or_else(|| panic!("{id}: panel {index} has no reference {name}"));
                    assert_eq!(p["type"].as_str(), Some(*kind));
                    assert_eq!(p["gridData"]["i"].as_str(), Some(index));
                }
            }
            _ => unreachable!(),
        }
    }
}

/// A field a saved object reads, and what it does with it.
#[derive(Debug)]
struct Use {
    object: String,
    field: String,
    how: &'static str,
}

/// Every field the saved objects read: Lens columns and KQL queries, map layers, Discover
/// columns, the data view's time field.
fn field_uses(objects: &[Json]) -> Vec<Use> {
    let mut uses = Vec::new();
    let mut add = |object: &Json, field: &str, how: &'static str| {
        uses.push(Use {
            object: object["id"].as_str().unwrap().to_owned(),
            field: field.to_owned(),
            how,
        })
    };
    for o in objects {
        match o["type"].as_str().unwrap() {
            "index-pattern" => add(
                o,
                o["attributes"]["timeFieldName"].as_str().unwrap(),
                "date",
            ),
            "lens" => {
                let layers = &o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"];
                for layer in layers.as_object().unwrap().values() {
                    for column in layer["columns"].as_object().unwrap().values() {
                        let field = column["sourceField"].as_str().unwrap();
                        let how = match column["operationType"].as_str().unwrap() {
                            "count" => continue,
                            "date_histogram" => "date",
                            "terms" | "unique_count" => "aggregate",
                            other => panic!("operation {other} not checked"),
                        };
                        add(o, field, how);
                    }
                }
                // `field : *` / `field : value` clauses.
                let query = o["attributes"]["state"]["query"]["query"].as_str().unwrap();
                for clause in query.split(" and ").filter(|c| !c.trim().is_empty()) {
                    let field = clause.split(':').next().unwrap().trim();
                    add(o, field, "query");
                }
            }
            "map" => {
                for layer in embedded(o, "/attributes/layerListJSON").as_array().unwrap() {
                    let source = &layer["sourceDescriptor"];
                    if let Some(geo) = source["geoField"].as_str() {
                        add(o, geo, "geo");
                    }
                    for metric in source["metrics"].as_array().into_iter().flatten() {
                        // Kibana Maps' aggregation types (AGG_TYPE).
                        let kind = metric["type"].as_str().unwrap();
                        assert!(
                            [
                                "avg",
                                "count",
                                "max",
                                "min",
                                "sum",
                                "terms",
                                "unique_count",
                                "percentile"
                            ]
                            .contains(&kind),
                            "map metric {kind}"
                        );
                        if let Some(field) = metric["field"].as_str() {
                            add(o, field, "aggregate");
                        }
                    }
                }
            }
            "search" => {
                for column in o["attributes"]["columns"].as_array().unwrap() {
                    add(o, column.as_str().unwrap(), "show");
                }
            }
            _ => {}
        }
    }
    uses
}

/// The index template as deploy/setup installs it: the module's own with the overlay merged.
fn installed_template() -> Json {
    fn merge(base: &mut Json, overlay: &Json) {
        match (base, overlay) {
            (Json::Object(b), Json::Object(o)) => {
                for (k, v) in o {
                    match b.get_mut(k) {
                        Some(existing) if existing.is_object() && v.is_object() => {
                            merge(existing, v)
                        }
                        _ => {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            (b, o) => *b = o.clone(),
        }
    }
    let mut template = json_file("crates/honeytrap-core/assets/elasticsearch-index-template.json");
    merge(
        &mut template,
        &json_file("deploy/elasticsearch/template-overlay.json"),
    );
    template
}

/// The mapping of a dotted field, walking `properties`.
fn mapping<'a>(template: &'a Json, field: &str) -> Option<&'a Json> {
    let mut node = &template["template"]["mappings"];
    for part in field.split('.') {
        node = node["properties"].get(part)?;
    }
    node.get("type").is_some().then_some(node)
}

/// Events as the module writes them: a decoy hit with captured credentials, a bait touched
/// from another address, CRS rules with ATT&CK techniques.
fn real_events() -> Vec<Json> {
    let limits = Limits::default();
    let observer = Arc::new(Observer::new("sensor-1"));
    let request = |kind: Kind| {
        let mut e = Event::new(kind, observer.clone());
        e.source = Some("203.0.113.7:51234".parse().unwrap());
        e.destination = Some("192.0.2.10:8080".parse().unwrap());
        e.set_method(b"POST");
        e.set_host(b"shop.example", &limits);
        e.set_user_agent(b"sqlmap/1.8.3#stable", &limits);
        e.http_version = Some("1.1".into());
        e.status_code = Some(401);
        e.add_header(b"Host", b"shop.example", &limits);
        e
    };

    let mut decoy = request(Kind::Decoy);
    decoy.set_url(b"/wp-admin/");
    decoy.set_credentials(Some(b"admin"), Some(b"hunter2"), &limits);
    decoy.techniques = vec![MitreRef::new("T1110", "Brute Force")];
    decoy.tactics = vec![MitreRef::new("TA0006", "Credential Access")];

    let mut bait = request(Kind::Bait);
    bait.set_url(b"/account/login");
    bait.bait = Some(Bait {
        kind: "field".into(),
        name: "form-field".into(),
        token: Some("tok".into()),
    });
    bait.attribution = Some(Attribution {
        served_to_ip: Some("198.51.100.9".parse().unwrap()),
        served_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        token_id: Some("t-1".into()),
        valid: true,
    });
    bait.flagged = true;

    let mut rules = request(Kind::Rules);
    rules.set_url(b"/products?id=1%27%20OR%201%3D1--");
    rules.denied = true;
    rules.rule = Some(RuleRef {
        id: Some("942100".into()),
        name: Some("SQL Injection Attack Detected via libinjection".into()),
        category: Some("attack-sqli".into()),
    });
    for (id, msg) in [
        (942100, "SQL Injection Attack Detected via libinjection"),
        (949110, "Inbound Anomaly Score Exceeded"),
    ] {
        rules.add_rule(RuleMatch {
            id,
            msg: Some(msg.into()),
            tags: ["attack-sqli".to_owned()].into(),
            severity: Some(2),
            matched_var: Some("ARGS:id".into()),
            matched_data: Some("1' OR 1=1--".into()),
        });
    }
    rules.anomaly_score = Some(AnomalyScore {
        inbound: 10,
        outbound: 0,
    });
    rules.techniques = vec![MitreRef::new("T1190", "Exploit Public-Facing Application")];
    rules.tactics = vec![MitreRef::new("TA0001", "Initial Access")];

    [decoy, bait, rules]
        .iter()
        .map(|e| serde_json::from_str(&e.to_record().json).unwrap())
        .collect()
}

/// Dotted paths of every leaf of a document (arrays stand for their elements).
fn leaf_paths(doc: &Json, prefix: &str, out: &mut BTreeSet<String>) {
    match doc {
        Json::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &path, out);
            }
        }
        Json::Array(items) => items.iter().for_each(|i| leaf_paths(i, prefix, out)),
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn every_field_the_dashboard_uses_is_mapped_and_emitted() {
    let objects = saved_objects();
    let uses = field_uses(&objects);
    let template = installed_template();
    let mut emitted = BTreeSet::new();
    for event in real_events() {
        leaf_paths(&event, "", &mut emitted);
    }
    // source.geo is added in Elasticsearch by the GeoIP pipeline, from source.ip.
    let pipeline = json_file("deploy/elasticsearch/geoip-pipeline.json");
    let geoip = &pipeline["processors"][0]["geoip"];
    let (geo_from, geo_to) = (
        geoip["field"].as_str().unwrap(),
        geoip["target_field"].as_str().unwrap(),
    );
    assert!(
        emitted.contains(geo_from),
        "the GeoIP pipeline reads {geo_from}"
    );

    for Use { object, field, how } in &uses {
        let mapped = mapping(&template, field)
            .unwrap_or_else(|| panic!("{object}: {field} is not mapped by the index template"));
        let kind = mapped["type"].as_str().unwrap();
        let ok = match *how {
            "date" => kind == "date",
            "geo" => kind == "geo_point",
            // Aggregations need doc values: no text fields.
            "aggregate" => matches!(kind, "keyword" | "ip" | "long" | "boolean" | "date"),
            "query" | "show" => true,
            _ => unreachable!(),
        };
        assert!(
            ok,
            "{object}: {field} is mapped as {kind}, cannot serve as {how}"
        );
        if let Some(rest) = field.strip_prefix(&format!("{geo_to}.")) {
            assert!(!rest.is_empty());
        } else {
            assert!(
                emitted.contains(field.as_str()),
                "{object}: {field} is in no event the module emits"
            );
        }
    }

    // The dashboard shows what the issue asks for.
    let used: BTreeSet<&str> = uses.iter().map(|u| u.field.as_str()).collect();
    for field in [
        "@timestamp",
        "source.ip",
        "honeytrap.bait.name",
        "rule.id",
        "threat.technique.id",
        "source.geo.location",
    ] {
        assert!(used.contains(field), "no visualization uses {field}");
    }
}

#[test]
fn setup_installs_what_the_sensors_write_to() {
    let overlay = json_file("deploy/elasticsearch/template-overlay.json");
    let pipeline_name = overlay["template"]["settings"]["index"]["default_pipeline"]
        .as_str()
        .unwrap();
    let setup = read("deploy/setup/setup.py");
    assert!(setup.contains(&format!("PIPELINE = \"{pipeline_name}\"")));
    // The data view covers the data stream every sensor writes to by default.
    let c = compose();
    let stream = environment(&c["services"]["setup"])
        .into_iter()
        .find(|(k, _)| k == "HONEYTRAP_INDEX")
        .map(|(_, v)| v)
        .unwrap();
    assert_eq!(stream, honeytrap_core::sink::elasticsearch::DEFAULT_INDEX);
    assert!(stream.starts_with("logs-honeytrap-"));
    // The files the setup container mounts exist.
    for volume in c["services"]["setup"]["volumes"].as_sequence().unwrap() {
        let host = volume.as_str().unwrap().split(':').next().unwrap();
        let path = repo().join("deploy").join(host);
        assert!(Path::new(&path).exists(), "setup mounts missing {host}");
    }
}

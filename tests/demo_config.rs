//! The demo configuration in nginx-conf/ stays valid as the module changes.

mod harness;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

#[test]
fn demo_config_passes_nginx_t() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = fs::read_to_string(repo.join("nginx-conf/nginx.conf")).unwrap();
    let load = demo
        .lines()
        .find(|l| l.starts_with("load_module"))
        .expect("load_module line");
    // Same config, but with the module this test run built, in a scratch prefix.
    let conf = demo.replace(
        load,
        &format!("load_module {};", harness::module_path().display()),
    );

    let prefix = tempfile::tempdir().unwrap();
    let conf_dir = prefix.path().join("conf");
    fs::create_dir(&conf_dir).unwrap();
    for entry in fs::read_dir(repo.join("nginx-conf")).unwrap() {
        let entry = entry.unwrap();
        symlink(entry.path(), conf_dir.join(entry.file_name())).unwrap();
    }
    symlink(repo.join("nginx-conf"), prefix.path().join("nginx-conf")).unwrap();
    fs::remove_file(conf_dir.join("nginx.conf")).unwrap();
    fs::write(conf_dir.join("nginx.conf"), conf).unwrap();
    for dir in ["var/log/honeytrap", "var/run", "var/tmp", "var/spool"] {
        fs::create_dir_all(prefix.path().join(dir)).unwrap();
    }

    let output = Command::new(harness::nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(format!("{}/", prefix.path().display()))
        .arg("-e")
        .arg(prefix.path().join("var/log/error.log"))
        .arg("-c")
        .arg(conf_dir.join("nginx.conf"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo config rejected:\n{stderr}");
    assert!(stderr.contains("test is successful"), "{stderr}");
}

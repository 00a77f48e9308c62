//! The installation secret: the one key every bait value is derived from or signed with.
//!
//! Operators either point `honeytrap_secret_file` at a file they manage, or let the module
//! generate 32 random bytes on first start and keep them (mode 0600), so that decoy paths and
//! tokens survive restarts and reloads. The file's bytes are never used directly: an HMAC
//! extraction turns any content of at least [`MIN_LEN`] bytes into a uniform 32-byte key, and
//! each use gets its own sub-key ([`Secret::derive`]), so a token key can never be confused
//! with the seed that picks decoy paths.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Fewer bytes than this is not a secret (a hex-printed 128-bit value still passes).
pub const MIN_LEN: usize = 32;

/// Files larger than this are a wrong path (a log, a binary), not a key.
const MAX_LEN: u64 = 64 * 1024;

/// Domain separation for the extraction step, so this key is ours alone even if the file is
/// shared with another tool.
const EXTRACT_SALT: &[u8] = b"ngx-honeytrap/secret/v1";

/// The installation secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: [u8; 32],
}

/// Where a loaded secret came from, for the log line at startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Read from an existing file; `loose` when group or others may read it.
    Loaded { loose: bool },
    /// Generated now and written to the file.
    Generated,
}

#[derive(Debug)]
pub enum SecretError {
    Read { path: PathBuf, source: io::Error },
    TooShort { path: PathBuf, len: usize },
    TooLong { path: PathBuf, len: u64 },
    Random(getrandom::Error),
    Write { path: PathBuf, source: io::Error },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Read { path, source } => {
                write!(
                    f,
                    "cannot read secret file \"{}\": {source}",
                    path.display()
                )
            }
            SecretError::TooShort { path, len } => write!(
                f,
                "secret file \"{}\" holds {len} bytes, at least {MIN_LEN} are needed \
                 (e.g. `head -c 32 /dev/urandom > {}`)",
                path.display(),
                path.display()
            ),
            SecretError::TooLong { path, len } => write!(
                f,
                "secret file \"{}\" is {len} bytes, more than {MAX_LEN}: is it the right file?",
                path.display()
            ),
            SecretError::Random(e) => write!(f, "cannot draw random bytes for a secret: {e}"),
            SecretError::Write { path, source } => {
                write!(
                    f,
                    "cannot create secret file \"{}\": {source}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for SecretError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretError::Read { source, .. } | SecretError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from key material held elsewhere (tests, a config value).
    pub fn from_material(material: &[u8]) -> Secret {
        let mut mac = Hmac::<Sha256>::new_from_slice(EXTRACT_SALT).expect("HMAC takes any key");
        mac.update(material);
        Secret {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// Reads the secret from `path`, which must exist. Trailing whitespace is ignored, so a
    /// file written by `openssl rand -hex 32 > file` works.
    pub fn load(path: &Path) -> Result<(Secret, Origin), SecretError> {
        let read_err = |source| SecretError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_LEN {
            return Err(SecretError::TooLong {
                path: path.to_owned(),
                len: meta.len(),
            });
        }
        let bytes = fs::read(path).map_err(read_err)?;
        let material = trim_trailing_whitespace(&bytes);
        if material.len() < MIN_LEN {
            return Err(SecretError::TooShort {
                path: path.to_owned(),
                len: material.len(),
            });
        }
        let loose = meta.permissions().mode() & 0o077 != 0;
        Ok((Secret::from_material(material), Origin::Loaded { loose }))
    }

    /// Reads the secret from `path`, or creates the file with 32 fresh random bytes (as hex)
    /// when it does not exist yet.
    ///
    /// Creation is atomic: the bytes go to a private temporary file that is then hard-linked to
    /// `path`, which fails if the name already exists. So a concurrent start never sees a
    /// half-written file, and when two processes race, both end up with the winner's secret.
    pub fn load_or_generate(path: &Path) -> Result<(Secret, Origin), SecretError> {
        match fs::symlink_metadata(path) {
            Ok(_) => return Secret::load(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SecretError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(SecretError::Random)?;
        // Hex, not raw bytes: raw ones may end in what `load` trims as whitespace, and the
        // secret would change at the next start.
        let material: String = random.iter().map(|b| format!("{b:02x}")).collect();
        match persist_new(path, format!("{material}\n").as_bytes()) {
            Ok(()) => Ok((
                Secret::from_material(material.as_bytes()),
                Origin::Generated,
            )),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Secret::load(path),
            Err(source) => Err(SecretError::Write {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// A 32-byte sub-key for one purpose; distinct labels give independent keys.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn trim_trailing_whitespace(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Writes `material` to a new 0600 file at `path`; `AlreadyExists` if the name is taken.
fn persist_new(path: &Path, material: &[u8]) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let mut tmp_name = file_name.to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    // A leftover from a crash of a process with our pid would make `create_new` fail.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(material)?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    // The temporary name is gone whatever happened; a failure here changes nothing.
    let _ = fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let (first, origin) = Secret::load_or_generate(&path).unwrap();
        assert_eq!(origin, Origin::Generated);
        let on_disk = fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), 65);
        assert!(on_disk[..64].iter().all(u8::is_ascii_hexdigit));
        assert_eq!(on_disk[64], b'\n');
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (second, origin) = Secret::load_or_generate(&path).unwrap();
        assert_eq!(origin, Origin::Loaded { loose: false });
        assert_eq!(first, second);
        assert_eq!(first, Secret::from_material(&on_disk[..64]));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn two_installations_get_different_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = Secret::load_or_generate(&dir.path().join("a")).unwrap();
        let (b, _) = Secret::load_or_generate(&dir.path().join("b")).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn operator_file_with_trailing_newline_is_accepted_and_loose_mode_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let hex = "3f".repeat(32);
        fs::write(&path, format!("{hex}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let (secret, origin) = Secret::load(&path).unwrap();
        assert_eq!(origin, Origin::Loaded { loose: true });
        assert_eq!(secret, Secret::from_material(hex.as_bytes()));
    }

    #[test]
    fn short_missing_and_oversized_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        fs::write(&short, b"tooshort\n").unwrap();
        let err = Secret::load(&short).unwrap_err();
        assert!(
            matches!(err, SecretError::TooShort { len: 8, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("at least 32"), "{err}");

        let missing = dir.path().join("missing");
        let err = Secret::load(&missing).unwrap_err();
        assert!(matches!(err, SecretError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");

        let huge = dir.path().join("huge");
        fs::write(&huge, vec![7u8; MAX_LEN as usize + 1]).unwrap();
        assert!(matches!(
            Secret::load(&huge),
            Err(SecretError::TooLong { .. })
        ));
    }

    #[test]
    fn generation_into_a_missing_directory_fails_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/secret");
        let err = Secret::load_or_generate(&path).unwrap_err();
        assert!(matches!(err, SecretError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("no/such/dir/secret"), "{err}");
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        // Raw bytes, some of them whitespace, in the middle.
        let mut raw = [0xa5u8; 40];
        raw[7] = b'\n';
        raw[8] = b' ';
        fs::write(&path, raw).unwrap();
        let (secret, origin) = Secret::load_or_generate(&path).unwrap();
        assert!(matches!(origin, Origin::Loaded { .. }));
        assert_eq!(secret, Secret::from_material(&raw));
        assert_eq!(fs::read(&path).unwrap(), raw);
    }

    #[test]
    fn derived_keys_depend_on_label_and_secret_and_debug_hides_them() {
        let a = Secret::from_material(&[1u8; 32]);
        let b = Secret::from_material(&[2u8; 32]);
        assert_ne!(a.derive("token"), a.derive("paths"));
        assert_ne!(a.derive("token"), b.derive("token"));
        assert_eq!(a.derive("token"), a.clone().derive("token"));
        assert_eq!(format!("{a:?}"), "Secret(..)");
    }
}

#![allow(dead_code)]

use std::path::Path;

use l2tp_config::{Config, ConfigError, ConfigErrors};

pub(crate) const FILE: &str = "/etc/l2tpd/test.toml";

pub(crate) fn parse(text: &str) -> Config {
    match Config::from_str(text, Path::new(FILE)) {
        Ok(c) => c,
        Err(e) => panic!("config rejected:\n{e}"),
    }
}

pub(crate) fn errors(text: &str) -> ConfigErrors {
    match Config::from_str(text, Path::new(FILE)) {
        Ok(_) => panic!("config accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The one error whose key is `key`.
pub(crate) fn error_for<'a>(errs: &'a ConfigErrors, key: &str) -> &'a ConfigError {
    let found: Vec<_> = errs
        .iter()
        .filter(|e| e.key.as_deref() == Some(key))
        .collect();
    assert_eq!(found.len(), 1, "expected one error for {key}, got:\n{errs}");
    found[0]
}

/// 1-based line of the first line of `text` containing `needle`.
pub(crate) fn line_of(text: &str, needle: &str) -> u32 {
    let i = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    u32::try_from(i + 1).unwrap()
}

/// A directory under the system temporary directory, removed on drop.
pub(crate) struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A new empty directory whose name contains `tag`.
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("l2tp-config-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// `rel` below the directory.
    pub(crate) fn path(&self, rel: &str) -> std::path::PathBuf {
        self.0.join(rel)
    }

    /// Writes `text` to `rel` (creating parent directories) with `mode`.
    pub(crate) fn write_mode(&self, rel: &str, text: &str, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// Writes `text` to `rel` (creating parent directories), mode 0600.
    pub(crate) fn write(&self, rel: &str, text: &str) -> std::path::PathBuf {
        self.write_mode(rel, text, 0o600)
    }

    /// Makes `rel` a symbolic link to `/dev/null`.
    pub(crate) fn mask_with_dev_null(&self, rel: &str) -> std::path::PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/dev/null", &p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

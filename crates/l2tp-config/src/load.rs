//! Finding the configuration files on disk: the main file, its drop-ins,
//! masking and the precedence between directories (systemd.netdev(5)
//! style).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ErrorKind};

/// Where [`crate::Config::load`] looks for configuration files.
///
/// Two layouts:
///
/// - [`ConfigPaths::system`]: the main file `l2tpd.toml` is the first that
///   exists of `/etc/l2tpd/l2tpd.toml`, `/run/l2tpd/l2tpd.toml` and
///   `/usr/lib/l2tpd/l2tpd.toml` (a file in `/etc` replaces the one in
///   `/run`, which replaces the one in `/usr/lib`). Drop-ins are the
///   `*.toml` files of `/etc/l2tpd/l2tpd.toml.d`, `/run/l2tpd/l2tpd.toml.d`
///   and `/usr/lib/l2tpd/l2tpd.toml.d`; for each file name the file of the
///   highest-priority directory is used (same order). An empty file or a
///   symbolic link to `/dev/null` masks: the main file, or every drop-in of
///   that name, is then not used at all. The drop-ins are merged after the
///   main file in lexical (byte) order of their file names, later keys
///   replacing earlier ones. There may be drop-ins without a main file, but
///   finding no file at all is an error.
/// - [`ConfigPaths::explicit`] (`l2tpd --config FILE`): `FILE` itself, which
///   must exist (an empty `FILE` is an empty configuration, not a mask),
///   then the `*.toml` drop-ins of the directory `FILE.d` beside it (an
///   empty one is skipped). No other directory is searched.
///
/// File names starting with `.` are ignored in drop-in directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPaths {
    main: Vec<PathBuf>,
    dropin_dirs: Vec<PathBuf>,
    explicit: bool,
}

/// The directories searched by [`ConfigPaths::system`], highest priority
/// first.
pub const SEARCH_DIRS: [&str; 3] = ["/etc/l2tpd", "/run/l2tpd", "/usr/lib/l2tpd"];

/// File name of the main configuration file in each of [`SEARCH_DIRS`].
pub const MAIN_FILE_NAME: &str = "l2tpd.toml";

/// Name of the drop-in directory in each of [`SEARCH_DIRS`].
pub const DROPIN_DIR_NAME: &str = "l2tpd.toml.d";

impl ConfigPaths {
    /// The system layout: [`SEARCH_DIRS`], `l2tpd.toml` and
    /// `l2tpd.toml.d/*.toml` (see [`ConfigPaths`]).
    pub fn system() -> Self {
        Self::system_under(Path::new("/"))
    }

    /// The system layout below `root` instead of `/` (for tests and
    /// images): `ROOT/etc/l2tpd/l2tpd.toml`, and so on.
    pub fn system_under(root: &Path) -> Self {
        let dirs: Vec<PathBuf> = SEARCH_DIRS
            .iter()
            .map(|d| root.join(d.trim_start_matches('/')))
            .collect();
        Self {
            main: dirs.iter().map(|d| d.join(MAIN_FILE_NAME)).collect(),
            dropin_dirs: dirs.iter().map(|d| d.join(DROPIN_DIR_NAME)).collect(),
            explicit: false,
        }
    }

    /// One given file (`--config FILE`) and the drop-ins of `FILE.d/`.
    pub fn explicit(file: impl Into<PathBuf>) -> Self {
        let file = file.into();
        let mut dir = file.clone().into_os_string();
        dir.push(".d");
        Self {
            main: vec![file],
            dropin_dirs: vec![PathBuf::from(dir)],
            explicit: true,
        }
    }

    /// Exactly one file, without drop-ins ([`crate::Config::from_file`]).
    pub(crate) fn single(file: &Path) -> Self {
        Self {
            main: vec![file.to_path_buf()],
            dropin_dirs: Vec::new(),
            explicit: true,
        }
    }

    /// The places the main file is looked for, highest priority first.
    pub fn main_candidates(&self) -> &[PathBuf] {
        &self.main
    }

    /// The drop-in directories, highest priority first.
    pub fn dropin_dirs(&self) -> &[PathBuf] {
        &self.dropin_dirs
    }

    /// True for [`ConfigPaths::explicit`]: the main file must exist and is
    /// never a mask.
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// Finds and reads the files to merge, in merge order.
    pub(crate) fn discover(&self) -> Discovered {
        let mut d = Discovered::default();
        if self.explicit {
            for path in &self.main {
                match read_source(path) {
                    Ok(f) => d.files.push(f),
                    Err(e) => d.errors.push(e),
                }
            }
        } else if let Some(path) = self.main.iter().find(|p| p.symlink_metadata().is_ok()) {
            d.take(path);
        }

        // For each drop-in name, the file of the highest-priority directory.
        let mut names: BTreeMap<OsString, PathBuf> = BTreeMap::new();
        for dir in &self.dropin_dirs {
            let entries = match fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    d.errors.push(io_error(
                        dir,
                        format!("cannot read the drop-in directory: {e}"),
                    ));
                    continue;
                }
            };
            for entry in entries {
                match entry {
                    Ok(entry) => {
                        let name = entry.file_name();
                        if is_dropin_name(&name) {
                            names.entry(name).or_insert_with(|| entry.path());
                        }
                    }
                    Err(e) => d.errors.push(io_error(
                        dir,
                        format!("cannot read the drop-in directory: {e}"),
                    )),
                }
            }
        }
        for path in names.values() {
            d.take(path);
        }

        if !self.explicit && d.files.is_empty() && d.errors.is_empty() {
            let looked = self
                .main
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let dirs = self
                .dropin_dirs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let mut message =
                format!("no configuration file found (looked for {looked} and drop-ins in {dirs})");
            if !d.masked.is_empty() {
                let masked = d
                    .masked
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                message.push_str(&format!("; masked: {masked}"));
            }
            let first = self.main.first().cloned().unwrap_or_default();
            d.errors.push(io_error(&first, message));
        }
        d
    }
}

/// A drop-in file name: `*.toml`, not hidden.
fn is_dropin_name(name: &OsString) -> bool {
    let path = Path::new(name);
    !name.as_encoded_bytes().starts_with(b".") && path.extension().is_some_and(|e| e == "toml")
}

/// A configuration file read from disk.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Permission bits (`st_mode & 0o7777`), when known.
    pub mode: Option<u32>,
}

/// What [`ConfigPaths::discover`] found.
#[derive(Debug, Default)]
pub(crate) struct Discovered {
    /// The files to merge, in order.
    pub files: Vec<SourceFile>,
    /// Files that were empty or links to `/dev/null`.
    pub masked: Vec<PathBuf>,
    /// Files or directories that could not be read.
    pub errors: Vec<ConfigError>,
}

impl Discovered {
    /// Reads `path`: used, masked (empty) or an error.
    fn take(&mut self, path: &Path) {
        match read_source(path) {
            Ok(f) if f.text.is_empty() => self.masked.push(f.path),
            Ok(f) => self.files.push(f),
            Err(e) => self.errors.push(e),
        }
    }
}

pub(crate) fn io_error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        position: None,
        key: None,
        kind: ErrorKind::Io,
        message,
    }
}

/// Reads one file (following symbolic links: a link to `/dev/null` reads
/// as empty).
pub(crate) fn read_source(path: &Path) -> Result<SourceFile, ConfigError> {
    let bytes = fs::read(path).map_err(|e| io_error(path, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        io_error(
            path,
            format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()),
        )
    })?;
    let mode = fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777);
    Ok(SourceFile {
        path: path.to_path_buf(),
        text,
        mode,
    })
}

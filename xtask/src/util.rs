//! Small helpers shared by the subcommands: paths, running commands, quoting.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a subdirectory of the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()
                    .map(|cwd| cwd.join(&dir))
                    .unwrap_or(dir)
            }
        }
        _ => project_root().join("target"),
    }
}

/// The cargo that runs us (`$CARGO`), so a rustup toolchain override sticks.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_root());
    cmd
}

/// Render a command line for humans (and for copy-paste).
pub(crate) fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| shell_quote(&s.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run `cmd` with inherited stdio, echoing it first; error unless it succeeds.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Run `cmd` with inherited stdio, echoing it first; return its exit status.
pub(crate) fn status(cmd: &mut Command) -> Result<ExitStatus> {
    eprintln!("$ {}", display(cmd));
    cmd.status()
        .with_context(|| format!("cannot run `{}`", display(cmd)))
}

/// Run `cmd` quietly and return its stdout if it succeeds, `None` otherwise
/// (including when the program does not exist).
pub(crate) fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program` is found on `$PATH` (or is an existing path).
pub(crate) fn have_program(program: &str) -> bool {
    which(program).is_some()
}

/// Locate `program` on `$PATH` like `command -v`.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether we run as root (apt-get and the VM's namespaces need it).
pub(crate) fn is_root() -> bool {
    probe(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

/// Quote `s` for a POSIX shell (unchanged when it is plainly safe).
pub(crate) fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Join words into one shell command line, each quoted as needed.
pub(crate) fn shell_join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    words
        .into_iter()
        .map(|w| shell_quote(&w.as_ref().to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `YYYYmmdd-HHMMSS` (UTC) for result directory names.
pub(crate) fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    format_timestamp(secs)
}

fn format_timestamp(secs: u64) -> String {
    // humantime's `YYYY-mm-ddTHH:MM:SSZ`, without its separators.
    let rfc3339 = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
    let digits: String = rfc3339
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{}-{}", &digits[..8], &digits[8..])
}

/// Print a banner line so phases stand out in long logs.
pub(crate) fn banner(text: &str) {
    eprintln!("\n==> {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("plain/path-1.sh"), "plain/path-1.sh");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_join(["echo", "a;b", "$x"]), "echo 'a;b' '$x'");
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "19700101-000000");
        assert_eq!(format_timestamp(951_782_400), "20000229-000000");
        assert_eq!(format_timestamp(1_763_717_045), "20251121-092405");
    }
}

#![allow(dead_code)]

use std::path::Path;

use l2tp_config::{Config, ConfigError, ConfigErrors};

pub const FILE: &str = "/etc/l2tpd/test.toml";

pub fn parse(text: &str) -> Config {
    match Config::from_str(text, Path::new(FILE)) {
        Ok(c) => c,
        Err(e) => panic!("config rejected:\n{e}"),
    }
}

pub fn errors(text: &str) -> ConfigErrors {
    match Config::from_str(text, Path::new(FILE)) {
        Ok(_) => panic!("config accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The one error whose key is `key`.
pub fn error_for<'a>(errs: &'a ConfigErrors, key: &str) -> &'a ConfigError {
    let found: Vec<_> = errs
        .iter()
        .filter(|e| e.key.as_deref() == Some(key))
        .collect();
    assert_eq!(found.len(), 1, "expected one error for {key}, got:\n{errs}");
    found[0]
}

/// 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> u32 {
    let i = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    u32::try_from(i + 1).unwrap()
}

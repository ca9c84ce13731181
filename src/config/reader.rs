//! Reading variables: trimmed, empty as unset, and every malformed value an error naming its
//! variable.

use std::collections::HashMap;
use std::str::FromStr;

use ipnet::IpNet;

use super::ConfigError;

pub(super) struct Reader<'a> {
    pub(super) vars: &'a HashMap<String, String>,
}

impl Reader<'_> {
    /// The trimmed value; empty counts as unset.
    pub(super) fn raw(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The value, or `default` when unset.
    pub(super) fn text(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_string())
    }

    /// A base URL, without its trailing slashes.
    pub(super) fn base_url(&self, name: &str, default: &str) -> String {
        self.text(name, default).trim_end_matches('/').to_string()
    }

    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.raw(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn parse<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError(format!("{name} has an invalid value: {v:?}"))),
        }
    }

    pub(super) fn positive(&self, name: &str, default: i64) -> Result<i64, ConfigError> {
        let v: i64 = self.parse(name, default)?;
        if v <= 0 || v > i64::from(u32::MAX) {
            return Err(ConfigError(format!(
                "{name} must be a positive whole number (got {v})"
            )));
        }
        Ok(v)
    }

    /// One of the named values; `default` when unset.
    pub(super) fn one_of<T: Copy>(
        &self,
        name: &str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(v) = self.raw(name) else {
            return Ok(default);
        };
        if let Some((_, t)) = choices.iter().find(|(word, _)| *word == v) {
            return Ok(*t);
        }
        let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
        let (last, rest) = words.split_last().expect("at least one choice");
        Err(ConfigError(format!(
            "{name} must be {} or {last} (got {v:?})",
            rest.join(", ")
        )))
    }

    /// `on` or `off`.
    pub(super) fn switch(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        self.one_of(name, default, &[("on", true), ("off", false)])
    }

    /// Comma-separated IP addresses or CIDR ranges.
    pub(super) fn networks(&self, name: &str) -> Result<Vec<IpNet>, ConfigError> {
        self.list(name)
            .into_iter()
            .map(|s| {
                IpNet::from_str(&s)
                    .or_else(|_| std::net::IpAddr::from_str(&s).map(IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!("{name}: {s:?} is not an IP address or CIDR range"))
                    })
            })
            .collect()
    }
}

//! `Profile*` calls, and the trace flags tunnels and sessions inherit from profiles.

use std::sync::Arc;

use l2tp_api::ApiError;
use l2tp_api::types::{self as t, Settings};
use l2tp_config::LocalSession;
use l2tp_proto::wire::{SessionId, TunnelId};
use serde_json::Value;

use super::super::Daemon;
use super::{empty, flags, quote_key, reply, settings_table, to_object};
use crate::api::overlay::{self, profile_table};
use crate::api::trace::{self, TraceFlags};

impl Daemon {
    /// Names of the profiles of a table (sorted, peer profiles in configuration order).
    pub(super) fn profile_names(&self, table: &str) -> Vec<String> {
        if table == "peer_profile" {
            return self
                .config
                .peer_profiles()
                .iter()
                .map(|p| p.name.clone())
                .collect();
        }
        // The files and the runtime changes are where profiles come from,
        // plus the built-in `default`; not the effective dump, which would
        // cost as much as the whole configuration (every tunnel) per call.
        let mut names = self.api.overlay.names(table);
        names.insert("default".to_owned());
        names
            .into_iter()
            .filter(|n| self.profile_exists(table, n))
            .collect()
    }

    /// Whether the profile `name` of `table` exists.
    pub(super) fn profile_exists(&self, table: &str, name: &str) -> bool {
        match table {
            "tunnel_profile" => self.config.tunnel_profile(name).is_some(),
            "session_profile" => self.config.session_profile(name).is_some(),
            "ppp_profile" => self.config.ppp_profile(name).is_some(),
            _ => self.config.peer_profile(name).is_some(),
        }
    }

    /// Where a profile comes from: `config`, `api`, `config+api` or `builtin`.
    pub(super) fn profile_origin(&self, table: &str, name: &str) -> &'static str {
        let files =
            self.api.overlay.files_define(table, name) && !self.api.overlay.is_deleted(table, name);
        match (files, self.api.overlay.defines(table, name)) {
            (true, true) => "config+api",
            (true, false) => "config",
            (false, true) => "api",
            (false, false) => "builtin",
        }
    }

    /// The trace flags set on a profile.
    pub(super) fn profile_trace(&self, table: &str, name: &str) -> TraceFlags {
        self.api
            .profile_trace
            .get(&(table.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// `ProfileList`.
    pub(super) fn profile_list(&self, kind: Option<&str>) -> Result<Value, ApiError> {
        let kinds: Vec<&str> = match kind {
            Some(k) => vec![k],
            None => l2tp_api::PROFILE_KINDS.to_vec(),
        };
        let mut profiles = Vec::new();
        for k in kinds {
            let table = profile_table(k)?;
            for name in self.profile_names(table) {
                profiles.push(t::ProfileSummary {
                    kind: k.to_owned(),
                    origin: self.profile_origin(table, &name).to_owned(),
                    trace_flags: self.profile_trace(table, &name).names(),
                    name,
                });
            }
        }
        reply(t::ProfileListReply { profiles })
    }

    /// The `NoSuchProfile` error.
    pub(super) fn no_such_profile(kind: &str, name: &str) -> ApiError {
        ApiError::NoSuchProfile {
            kind: kind.to_owned(),
            name: name.to_owned(),
            description: format!("no {kind} profile `{name}`"),
        }
    }

    /// `ProfileShow`.
    pub(super) fn profile_show(&mut self, kind: &str, name: &str) -> Result<Value, ApiError> {
        let table = profile_table(kind)?;
        let effective = match table {
            "tunnel_profile" => self
                .config
                .tunnel_profile(name)
                .map(|p| to_object(&p.to_settings())),
            "session_profile" => self
                .config
                .session_profile(name)
                .map(|p| to_object(&p.to_settings())),
            "ppp_profile" => self
                .config
                .ppp_profile(name)
                .map(|p| to_object(&p.to_settings())),
            _ => self
                .config
                .peer_profile(name)
                .map(|p| to_object(&p.params.to_settings())),
        }
        .ok_or_else(|| Self::no_such_profile(kind, name))?;
        let settings = if table == "peer_profile" {
            effective.clone()
        } else {
            let doc = self.effective_doc();
            match doc.get(table).and_then(|t| t.get(name)) {
                Some(toml::Value::Table(t)) => {
                    match overlay::toml_to_json(&toml::Value::Table(t.clone())) {
                        Value::Object(o) => o,
                        _ => Settings::new(),
                    }
                }
                _ => Settings::new(),
            }
        };
        reply(t::ProfileShowReply {
            profile: t::Profile {
                kind: kind.to_owned(),
                name: name.to_owned(),
                origin: self.profile_origin(table, name).to_owned(),
                settings,
                effective,
                trace_flags: self.profile_trace(table, name).names(),
            },
        })
    }

    /// The effective configuration as TOML (secrets redacted), made once per
    /// configuration: it costs as much as the whole configuration (every
    /// tunnel), so it is not made again for each `ProfileShow`.
    fn effective_doc(&mut self) -> Arc<toml::Table> {
        let config = self.config.arc();
        if let Some((c, doc)) = &self.api.effective
            && Arc::ptr_eq(c, &config)
        {
            return doc.clone();
        }
        let doc: Arc<toml::Table> =
            Arc::new(config.to_toml_effective().parse().unwrap_or_default());
        self.api.effective = Some((config, doc.clone()));
        doc
    }

    /// `ProfileCreate`.
    pub(super) fn profile_create(&mut self, p: t::ProfileCreateParams) -> Result<Value, ApiError> {
        let table = profile_table(&p.kind)?;
        if p.name.is_empty() {
            return Err(ApiError::invalid("name", "missing: the profile's name"));
        }
        if self.profile_exists(table, &p.name) {
            return Err(ApiError::ProfileExists {
                description: format!("a {} profile `{}` exists already", p.kind, p.name),
                kind: p.kind,
                name: p.name,
            });
        }
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        let settings = settings_table(p.settings.as_ref(), "settings", &[])?;
        let prefix = format!("{table}.{}", quote_key(&p.name));
        let name = p.name.clone();
        self.change_overlay(&prefix, "settings", |o| {
            *o.table_mut(&[table, &name]) = settings;
            Ok(())
        })?;
        if let Some(f) = new_flags {
            self.api.profile_trace.insert((table.to_owned(), p.name), f);
        }
        empty()
    }

    /// `ProfileModify`.
    pub(super) fn profile_modify(&mut self, p: t::ProfileModifyParams) -> Result<Value, ApiError> {
        let table = profile_table(&p.kind)?;
        if !self.profile_exists(table, &p.name) {
            return Err(Self::no_such_profile(&p.kind, &p.name));
        }
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        let settings = settings_table(p.settings.as_ref(), "settings", &[])?;
        let unset = p.unset.unwrap_or_default();
        let name = p.name.clone();
        let prefix = format!("{table}.{}", quote_key(&name));
        // A profile only the runtime changes define must keep its (maybe empty) table.
        let keep_empty = !self.api.overlay.files_define(table, &name)
            || self.api.overlay.is_deleted(table, &name);
        self.change_overlay(&prefix, "settings", |o| {
            let t = o.table_mut(&[table, &name]);
            for k in &unset {
                if t.remove(k).is_none() {
                    return Err(ApiError::invalid(
                        "unset",
                        format!("`{k}` was not set at run time"),
                    ));
                }
            }
            t.extend(settings);
            if t.is_empty() && !keep_empty {
                o.remove(table, &name);
            }
            Ok(())
        })?;
        if let Some(f) = new_flags {
            if f.is_empty() {
                self.api.profile_trace.remove(&(table.to_owned(), name));
            } else {
                self.api.profile_trace.insert((table.to_owned(), name), f);
            }
        }
        empty()
    }

    /// `ProfileDelete`.
    pub(super) fn profile_delete(&mut self, kind: &str, name: &str) -> Result<Value, ApiError> {
        let table = profile_table(kind)?;
        if name == l2tp_config::DEFAULT_PROFILE {
            return Err(ApiError::invalid(
                "name",
                "the default profiles cannot be deleted",
            ));
        }
        if !self.profile_exists(table, name) {
            return Err(Self::no_such_profile(kind, name));
        }
        let prefix = format!("{table}.{}", quote_key(name));
        self.change_overlay(&prefix, "name", |o| {
            o.delete_profile(table, name);
            Ok(())
        })
        .map_err(|e| {
            let errors = match e {
                ApiError::ConfigInvalid { errors, .. } => errors,
                ApiError::InvalidParameter {
                    parameter,
                    description,
                } => vec![format!("{parameter}: {description}")],
                other => return other,
            };
            ApiError::ConfigInvalid {
                errors,
                description: format!("the {kind} profile `{name}` is in use"),
            }
        })?;
        self.api
            .profile_trace
            .remove(&(table.to_owned(), name.to_owned()));
        empty()
    }

    // ---- trace flags inherited from profiles ------------------------------

    /// A tunnel takes the trace flags of the default tunnel profile, its
    /// peer profile and that peer profile's tunnel profile.
    pub(super) fn inherit_tunnel_trace(&self, id: TunnelId) {
        if self.api.profile_trace.is_empty() {
            return;
        }
        let Some(tun) = self.ep.tunnel(id) else {
            return;
        };
        let m = self
            .config
            .match_peer(tun.peer.ip(), Some(&tun.peer_host_name));
        let mut f = self
            .profile_trace("tunnel_profile", l2tp_config::DEFAULT_PROFILE)
            .union(self.profile_trace("peer_profile", &m.profile.name))
            .union(self.profile_trace("tunnel_profile", &m.profile.params.tunnel_profile_name));
        // A tunnel of ours may name its own tunnel profile.
        if let Some(n) = self
            .reg
            .tunnel(id)
            .filter(|c| c.local)
            .and_then(|c| self.config.local_tunnel(&c.name))
            .and_then(|lt| lt.tunnel_profile.as_deref())
        {
            f = f.union(self.profile_trace("tunnel_profile", n));
        }
        if !f.is_empty() {
            trace::set_tunnel(id.0, trace::tunnel(id.0).union(f));
        }
    }

    /// A session takes the trace flags of the default session and PPP
    /// profiles, its tunnel's peer profile's, and the ones it names.
    pub(super) fn inherit_session_trace(
        &self,
        tid: TunnelId,
        sid: SessionId,
        ls: Option<&LocalSession>,
    ) {
        if self.api.profile_trace.is_empty() {
            return;
        }
        let Some(tun) = self.ep.tunnel(tid) else {
            return;
        };
        let m = self
            .config
            .match_peer(tun.peer.ip(), Some(&tun.peer_host_name));
        let mut f = self
            .profile_trace("session_profile", l2tp_config::DEFAULT_PROFILE)
            .union(self.profile_trace("ppp_profile", l2tp_config::DEFAULT_PROFILE))
            .union(self.profile_trace("session_profile", &m.profile.params.session_profile_name))
            .union(self.profile_trace("ppp_profile", &m.profile.params.ppp_profile_name));
        if let Some(ls) = ls
            && let Some(n) = &ls.params.ppp_profile_name
        {
            f = f.union(self.profile_trace("ppp_profile", n));
        }
        if !f.is_empty() {
            trace::set_session(tid.0, sid.0, trace::session(tid.0, sid.0).union(f));
        }
    }
}

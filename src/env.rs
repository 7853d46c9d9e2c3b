//! The process environment as keyshift reads it: collected once by `main.rs` (or built by
//! tests and `demo`), with the `NAME_FILE` convention for secrets. Below every other module
//! that reads settings, so none of them needs the command context for it.

use anyhow::Result;
use secrecy::SecretString;
use std::collections::HashMap;

use crate::errors::KeyshiftError;

/// Environment variables, with the `NAME_FILE` convention for secrets.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Env {
        Env {
            vars: pairs.into_iter().collect(),
        }
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.into(), value.into());
    }

    /// `NAME`, else the contents of the file named by `NAME_FILE` (trimmed).
    pub fn get(&self, name: &str) -> Result<Option<String>> {
        if let Some(v) = self.vars.get(name).filter(|v| !v.is_empty()) {
            return Ok(Some(v.clone()));
        }
        let file_var = format!("{name}_FILE");
        if let Some(path) = self.vars.get(&file_var).filter(|v| !v.is_empty()) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| KeyshiftError::unreadable(file_var.clone(), path, &e, None))?;
            return Ok(Some(text.trim().to_string()));
        }
        Ok(None)
    }

    pub fn secret(&self, name: &str) -> Result<Option<SecretString>> {
        Ok(self.get(name)?.map(SecretString::from))
    }

    /// [`get`](Self::get) a setting the command cannot do without; `fix` says how to set it.
    pub fn require(&self, name: &'static str, fix: &'static str) -> Result<String> {
        Ok(self
            .get(name)?
            .ok_or(KeyshiftError::MissingSetting { name, fix })?)
    }

    /// [`require`](Self::require) a secret.
    pub fn require_secret(&self, name: &'static str, fix: &'static str) -> Result<SecretString> {
        Ok(self
            .secret(name)?
            .ok_or(KeyshiftError::MissingSetting { name, fix })?)
    }
}

//! Corporate networks: proxies and extra CA certificates, taken from keyshift's [`Env`]
//! (never from process globals, so a test or `demo` sets them per run).
//!
//! - `https_proxy` / `HTTPS_PROXY` for `https://` hosts, `http_proxy` / `HTTP_PROXY` for
//!   `http://` hosts, `all_proxy` / `ALL_PROXY` for both when the specific one is unset (the
//!   lowercase name wins, as curl reads them); `no_proxy` / `NO_PROXY` lists hosts, domains
//!   (`.corp.example` or `corp.example`), IPs and CIDR ranges that go direct, `*` for all.
//! - `KEYSHIFT_CA_FILE` and `SSL_CERT_FILE`: PEM files whose certificates are trusted in
//!   addition to the built-in roots (e.g. a TLS-inspecting proxy's CA, a private CA).

use anyhow::Result;
use std::path::PathBuf;

use crate::env::Env;
use crate::errors::KeyshiftError;

/// Proxy and CA settings for every client keyshift builds.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// `(variable, proxy URL)` for `https://` hosts.
    pub https_proxy: Option<(String, String)>,
    /// `(variable, proxy URL)` for `http://` hosts.
    pub http_proxy: Option<(String, String)>,
    /// `(variable, list)` of hosts that go direct.
    pub no_proxy: Option<(String, String)>,
    /// `(variable, path)` of PEM files with extra trusted CAs.
    pub ca_files: Vec<(String, PathBuf)>,
}

/// The first of `names` that is set, with its name.
fn first(env: &Env, names: &[&str]) -> Result<Option<(String, String)>> {
    for name in names {
        if let Some(v) = env.get(name)? {
            return Ok(Some((name.to_string(), v)));
        }
    }
    Ok(None)
}

impl NetConfig {
    pub fn from_env(env: &Env) -> Result<NetConfig> {
        let https_proxy = first(
            env,
            &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        )?;
        let http_proxy = first(env, &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])?;
        let no_proxy = first(env, &["no_proxy", "NO_PROXY"])?;
        let mut ca_files = Vec::new();
        for name in ["KEYSHIFT_CA_FILE", "SSL_CERT_FILE"] {
            if let Some(path) = env.get(name)? {
                ca_files.push((name.to_string(), PathBuf::from(path)));
            }
        }
        Ok(NetConfig {
            https_proxy,
            http_proxy,
            no_proxy,
            ca_files,
        })
    }

    /// A reqwest builder with exactly these proxies (reqwest's own reading of the process
    /// environment is switched off) and the extra CAs added to the built-in roots.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder> {
        let mut b = reqwest::Client::builder().use_rustls_tls().no_proxy();
        let no_proxy = self
            .no_proxy
            .as_ref()
            .and_then(|(_, list)| reqwest::NoProxy::from_string(list));
        if let Some((name, url)) = &self.https_proxy {
            b = b.proxy(reqwest::Proxy::https(proxy_url(name, url)?)?.no_proxy(no_proxy.clone()));
        }
        if let Some((name, url)) = &self.http_proxy {
            b = b.proxy(reqwest::Proxy::http(proxy_url(name, url)?)?.no_proxy(no_proxy));
        }
        for cert in self.extra_roots()? {
            b = b.add_root_certificate(cert);
        }
        Ok(b)
    }

    /// The certificates of every CA file; a file that cannot be read or holds none is an
    /// error naming the variable and the file.
    pub fn extra_roots(&self) -> Result<Vec<reqwest::Certificate>> {
        let mut out = Vec::new();
        for (name, path) in &self.ca_files {
            let pem = std::fs::read(path).map_err(|e| {
                KeyshiftError::unreadable(
                    name.clone(),
                    path,
                    &e,
                    Some("point it at a PEM file of CA certificates"),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    KeyshiftError::Config(format!(
                        "{name}={}: no PEM certificate in it — it must hold one or more \
                         `-----BEGIN CERTIFICATE-----` blocks",
                        path.display()
                    ))
                })?;
            out.extend(certs);
        }
        Ok(out)
    }

    /// The proxy a request to `url` goes through, as `(variable, URL without password)`,
    /// for messages. NO_PROXY entries are matched as reqwest does for names and IPs (`*`, an
    /// exact host, a domain and its subdomains); CIDR ranges are not evaluated here.
    pub fn proxy_for(&self, url: &str) -> Option<(String, String)> {
        let u = url::Url::parse(url).ok()?;
        let proxy = match u.scheme() {
            "https" => self.https_proxy.as_ref(),
            _ => self.http_proxy.as_ref(),
        }?;
        let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
        if let Some((_, list)) = &self.no_proxy {
            let direct = list.split(',').map(str::trim).any(|entry| {
                let entry = entry.trim_start_matches('.');
                entry == "*"
                    || (!entry.is_empty()
                        && (host == entry || host.ends_with(&format!(".{entry}"))))
            });
            if direct {
                return None;
            }
        }
        Some((proxy.0.clone(), redact(&proxy.1)))
    }

    /// For `doctor`: which proxies and CAs are in effect (proxy credentials hidden).
    pub fn describe(&self) -> Result<String> {
        let proxy = |p: &Option<(String, String)>| match p {
            Some((name, url)) => format!("{} (from {name})", redact(url)),
            None => "direct".to_string(),
        };
        let mut parts = vec![
            format!("https via {}", proxy(&self.https_proxy)),
            format!("http via {}", proxy(&self.http_proxy)),
        ];
        if let Some((name, list)) = &self.no_proxy {
            parts.push(format!("direct for {list} (from {name})"));
        }
        let roots = self.extra_roots()?;
        if self.ca_files.is_empty() {
            parts.push("built-in CA roots only".into());
        } else {
            let files: Vec<String> = self
                .ca_files
                .iter()
                .map(|(name, path)| format!("{name}={}", path.display()))
                .collect();
            parts.push(format!(
                "built-in CA roots + {} certificate(s) from {}",
                roots.len(),
                files.join(", ")
            ));
        }
        Ok(parts.join("; "))
    }
}

/// A proxy URL, checked; a bare `host:port` means `http://host:port` (as curl reads it).
fn proxy_url(name: &str, value: &str) -> Result<String> {
    let url = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    match url::Url::parse(&url) {
        Ok(u) if u.host_str().is_some() => Ok(url),
        _ => Err(KeyshiftError::Config(format!(
            "{name}={:?} is not a proxy URL — write e.g. http://proxy.corp.example:3128",
            redact(value)
        ))
        .into()),
    }
}

/// A proxy URL without its password.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() || !u.username().is_empty() => {
            let _ = u.set_password(None);
            let _ = u.set_username("***");
            u.to_string().trim_end_matches('/').to_string()
        }
        Ok(_) => url.trim_end_matches('/').to_string(),
        Err(_) => {
            // Not a URL: keep only what follows an `@`, if any.
            url.rsplit_once('@')
                .map_or(url.to_string(), |(_, host)| format!("***@{host}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn lowercase_wins_and_all_proxy_is_the_fallback() {
        let n = NetConfig::from_env(&env(&[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:1"),
            ("ALL_PROXY", "http://all:1"),
            ("NO_PROXY", "127.0.0.1,.corp"),
        ]))
        .unwrap();
        assert_eq!(n.https_proxy.unwrap().0, "https_proxy");
        assert_eq!(n.http_proxy.unwrap().1, "http://all:1");
        assert_eq!(n.no_proxy.unwrap().1, "127.0.0.1,.corp");
        assert!(NetConfig::from_env(&env(&[]))
            .unwrap()
            .https_proxy
            .is_none());
    }

    #[test]
    fn proxy_passwords_never_shown() {
        assert_eq!(
            redact("http://alice:s3cret@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(redact("http://proxy:3128/"), "http://proxy:3128");
        let n = NetConfig::from_env(&env(&[("HTTPS_PROXY", "http://bob:hunter2@p:8080")])).unwrap();
        let d = n.describe().unwrap();
        assert!(!d.contains("hunter2") && d.contains("p:8080"), "{d}");
        assert_eq!(
            n.proxy_for("https://www.workato.com/api"),
            Some(("HTTPS_PROXY".into(), "http://***@p:8080".into()))
        );
        assert_eq!(n.proxy_for("http://127.0.0.1:1/x"), None);
        let n = NetConfig::from_env(&env(&[
            ("HTTPS_PROXY", "http://p:8080"),
            ("NO_PROXY", "localhost, .corp.example,127.0.0.1"),
        ]))
        .unwrap();
        assert_eq!(n.proxy_for("https://vault.corp.example/x"), None);
        assert_eq!(n.proxy_for("https://corp.example/x"), None);
        assert_eq!(n.proxy_for("https://127.0.0.1:9/x"), None);
        assert!(n.proxy_for("https://www.workato.com").is_some());
        let err = proxy_url("HTTPS_PROXY", "http://bob:hunter2@").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(proxy_url("x", "proxy:3128").unwrap(), "http://proxy:3128");
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let n = NetConfig::from_env(&env(&[("KEYSHIFT_CA_FILE", bad.to_str().unwrap())])).unwrap();
        let err = n.client_builder().err().unwrap().to_string();
        assert!(
            err.contains("KEYSHIFT_CA_FILE") && err.contains("no PEM"),
            "{err}"
        );
        let n = NetConfig::from_env(&env(&[("SSL_CERT_FILE", "/nonexistent/ca.pem")])).unwrap();
        let err = n.client_builder().err().unwrap().to_string();
        assert!(
            err.contains("SSL_CERT_FILE") && err.contains("cannot read"),
            "{err}"
        );
    }
}

//! `keyshift doctor`: is everything in place? One read call per vendor, the state file, the
//! secret sink's directory, the network settings (proxies, extra CAs), the clock. Prints a
//! line per check; exit 1 if any failed. Each vendor gets one short attempt (no retries), so
//! an unreachable vendor is reported in seconds.

use anyhow::Result;
use serde_json::json;

use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::state::StateDb;

pub async fn run(ctx: &Ctx, secrets_vault: Option<&str>) -> Result<ExitCode> {
    let p = &ctx.printer;
    let mut ok = true;
    let mut check = |name: &str, result: Result<String>| {
        match &result {
            Ok(detail) => p.line(format!("ok    {name}: {detail}")),
            Err(e) => {
                ok = false;
                p.line(format!("FAIL  {name}: {}", crate::errors::one_line(e)));
            }
        }
        p.event(
            "doctor.check",
            json!({ "check": name, "ok": result.is_ok(),
                    "detail": match &result { Ok(d) => d.clone(), Err(e) => crate::errors::one_line(e) } }),
        );
    };

    // State file: open it only if it exists (doctor never creates one).
    let state = if ctx.state_path.exists() {
        StateDb::open(&ctx.state_path, false).and_then(|db| {
            db.check_integrity()?;
            Ok(format!(
                "{} (export {}, plan {})",
                ctx.state_path.display(),
                db.meta("export.at")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "not yet".into()),
                db.meta("plan.at")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "not yet".into())
            ))
        })
    } else {
        Ok(format!(
            "{} does not exist yet (export creates it)",
            ctx.state_path.display()
        ))
    };
    check("state file", state);

    let sink = ctx.sink_path().map(|path| {
        let dir_exists = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .is_none_or(|d| d.is_dir());
        if dir_exists {
            format!("{} (directory exists)", path.display())
        } else {
            format!("{} (its directory will be created 0700)", path.display())
        }
    });
    check("secret sink", sink);

    let signing = ctx.signing_secrets().map(|s| match s {
        Some(s) => format!(
            "{} HMAC secret(s), {} probe key(s)",
            s.hmac.len(),
            s.probe_keys.len()
        ),
        None => "not set (HMAC JWT groups will be blocked; RSA/OIDC keys unverifiable live)".into(),
    });
    check("signing secrets", signing);

    // Proxies and extra CAs, as every client below uses them.
    check("network", ctx.net().and_then(|n| n.describe()));

    // Each vendor: one read proves URL, credential and rights (the others only when
    // configured).
    let (vendors, server_now) = crate::registry::doctor(ctx).await?;
    for (name, result) in vendors {
        check(name, result);
    }

    // The vault sink: the token's capabilities on the path (sys/capabilities-self), no write.
    if let Some(v) = secrets_vault {
        let vault = async {
            let target = crate::secrets::vault::VaultTarget::parse(v)?;
            let client = crate::secrets::vault::VaultClient::from_env(
                &ctx.env,
                ctx.net()?,
                ctx.allow_insecure_http,
            )?
            .one_short_attempt();
            client.check_access(&target).await
        }
        .await;
        check("vault", vault);
    }

    let clock = match server_now {
        Some(server) => {
            let skew = (server - chrono::Utc::now()).num_seconds();
            Ok(format!(
                "vendor clock {} (skew {skew:+} s){}",
                server.format("%Y-%m-%d %H:%M:%S UTC"),
                if ctx.now_override.is_some() {
                    "; --now overrides it for deadlines"
                } else {
                    ""
                }
            ))
        }
        None => Ok(format!(
            "machine clock {} (no vendor Date header seen)",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        )),
    };
    check("clock", clock);
    Ok(if ok { ExitCode::Ok } else { ExitCode::Error })
}

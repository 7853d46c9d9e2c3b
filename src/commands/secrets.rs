//! `keyshift secrets show|export`: read the sink back for the hand-over. The last record per
//! key is its usable secret (later records supersede earlier ones).

use anyhow::Result;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;

use crate::cli::{SecretsAction, SecretsArgs};
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::secrets::write_private;
use crate::secrets::{read_sink, SinkRecord};

pub async fn run(ctx: &Ctx, args: &SecretsArgs) -> Result<ExitCode> {
    let path = ctx.sink_path()?;
    let records = read_sink(&path, ctx.age_identity()?.as_ref())?;
    let mut usable: BTreeMap<String, SinkRecord> = BTreeMap::new();
    for r in records {
        usable.insert(r.op_id.clone(), r);
    }
    // Vault receipts: read each usable secret from the store (only the last per key).
    ctx.fetch_vault_secrets(usable.values_mut()).await?;
    match &args.action {
        SecretsAction::Show { reveal } => {
            ctx.printer.line(format!(
                "{} usable secret(s) in {}",
                usable.len(),
                path.display()
            ));
            for r in usable.values() {
                let value = match (&r.secret, reveal) {
                    (Some(s), true) => s.expose_secret().to_string(),
                    (Some(_), false) => "(hidden; --reveal to print)".into(),
                    (None, _) => "(not readable here: age-encrypted — set \
                                   KEYSHIFT_AGE_IDENTITY_FILE — or delivered to a command)"
                        .into(),
                };
                let place = r
                    .vault
                    .as_ref()
                    .map(|v| format!("\tvault {} version {}", v.location(), v.vault_version))
                    .unwrap_or_default();
                ctx.printer.raw(format!(
                    "{}\tkey {} {:?} in client {}\t{}\t{}{place}",
                    r.source,
                    r.key_id.as_ref().map(|k| k.to_string()).unwrap_or_default(),
                    r.key_name,
                    r.client_id.map(|k| k.to_string()).unwrap_or_default(),
                    r.kind,
                    value
                ));
            }
        }
        SecretsAction::Export { out } => {
            let unreadable = usable.values().filter(|r| r.secret.is_none()).count();
            if unreadable > 0 {
                return Err(crate::errors::KeyshiftError::Config(format!(
                    "{unreadable} secret(s) in {} are not readable here — for an age-encrypted \
                     sink set KEYSHIFT_AGE_IDENTITY_FILE to the identity; secrets handed to \
                     --secrets-cmd are only where that command put them",
                    path.display()
                ))
                .into());
            }
            let mut text = String::new();
            for r in usable.values() {
                text.push_str(&serde_json::to_string(r)?);
                text.push('\n');
            }
            write_private(out, &text)?;
            ctx.printer.line(format!(
                "{} usable secret(s) written to {} (0600)",
                usable.len(),
                out.display()
            ));
        }
    }
    Ok(ExitCode::Ok)
}

//! `keyshift secrets show|export`: read the sink back for the hand-over. The last record per
//! key is its usable secret (later records supersede earlier ones).

use anyhow::Result;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;

use super::report::write_private;
use crate::cli::{SecretsAction, SecretsArgs};
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::secrets::{read_sink, SinkRecord};

pub fn run(ctx: &Ctx, args: &SecretsArgs) -> Result<ExitCode> {
    let path = ctx.sink_path()?;
    let records = read_sink(&path)?;
    let mut usable: BTreeMap<String, SinkRecord> = BTreeMap::new();
    for r in records {
        usable.insert(r.op_id.clone(), r);
    }
    match &args.action {
        SecretsAction::Show { reveal } => {
            ctx.printer.line(format!(
                "{} usable secret(s) in {}",
                usable.len(),
                path.display()
            ));
            for r in usable.values() {
                let value = if *reveal {
                    r.secret.expose_secret().to_string()
                } else {
                    "(hidden; --reveal to print)".into()
                };
                ctx.printer.raw(format!(
                    "{}\tkey {} {:?} in client {}\t{}\t{}",
                    r.source,
                    r.key_id.map(|k| k.to_string()).unwrap_or_default(),
                    r.key_name,
                    r.client_id.map(|k| k.to_string()).unwrap_or_default(),
                    r.kind,
                    value
                ));
            }
        }
        SecretsAction::Export { out } => {
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

//! `udaconnect admin erase PERSON_ID`: erases a person (their key, account, pings and person
//! row, and an erasure record on the log for its readers), as `DELETE /api/persons/{id}`
//! does, from the command line.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use udaconnect_server::persons::erase::Eraser;
use udaconnect_server::wiring::backends::{
    open_account_stores, open_log, open_stores, LogUrl, StoreUrl,
};
use udaconnect_server::wiring::embedded::EmbeddedStack;

use crate::admin::AccountStoreArgs;

#[derive(Args, Debug)]
pub struct EraseArgs {
    #[command(flatten)]
    pub store: AccountStoreArgs,
    /// With --store: the log whose readers are told of the erasure, `kafka://host:port[,...]`.
    /// Without it, a connection-api following the topic keeps the person's pings it has read
    /// until it starts again.
    #[arg(long, env = "UDACONNECT_LOG", requires = "store")]
    pub log: Option<String>,
    /// The person to erase. Cannot be undone.
    pub person: i64,
}

pub async fn erase(args: EraseArgs) -> anyhow::Result<()> {
    // Kept open until the erasure is done: the data directory's lock.
    let mut _stack = None;
    let eraser = match &args.store.store {
        None => {
            let dir = args.store.data_dir.clone();
            let stack = EmbeddedStack::open(&dir).context(
                "failed to open the data directory (while `udaconnect serve` runs on it, erase \
                 through DELETE /api/persons/{id} instead)",
            )?;
            let accounts = open_account_stores(&StoreUrl::Embedded(dir))
                .await?
                .accounts;
            let eraser = Eraser {
                persons: stack.persons.clone(),
                locations: stack.locations.clone(),
                accounts,
                keys: stack.keys.clone(),
                log: Some(stack.log.clone()),
            };
            _stack = Some(stack);
            eraser
        }
        Some(store) => {
            let url: StoreUrl = store
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--store: {e}"))?;
            let (_keep, mut never) = tokio::sync::watch::channel(false);
            let stores = open_stores(&url, &mut never)
                .await?
                .context("the store did not open")?;
            let accounts = open_account_stores(&url).await?.accounts;
            let log = match &args.log {
                Some(l) => {
                    let url: LogUrl = l
                        .parse()
                        .map_err(|e: String| anyhow::anyhow!("--log: {e}"))?;
                    Some(open_log(&url)?)
                }
                None => {
                    eprintln!(
                        "warning: no --log: readers of the location topic are not told of the \
                         erasure (the person's sealed records are unreadable all the same)"
                    );
                    None
                }
            };
            Eraser {
                persons: stores.persons.clone(),
                locations: stores.locations.clone(),
                accounts,
                keys: Arc::clone(&stores.keys),
                log,
            }
        }
    };
    eraser
        .check_known(args.person)
        .await
        .with_context(|| format!("failed to erase person {}", args.person))?;
    let erased = eraser
        .erase(args.person)
        .await
        .with_context(|| format!("failed to erase person {}", args.person))?;
    println!(
        "person {} erased: key {}, account {}, {} locations deleted",
        args.person,
        if erased.key_destroyed {
            "destroyed"
        } else {
            "destroyed before (or none made)"
        },
        erased
            .account
            .map_or_else(|| "none".to_string(), |a| format!("{a} deleted")),
        erased.locations,
    );
    Ok(())
}

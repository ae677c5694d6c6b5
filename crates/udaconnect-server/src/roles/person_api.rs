//! person-api: persons, over the person store it owns, and their erasure; sign-in, over the
//! account store (accounts belong to persons), its mails on the log; `/api/me`, the caller's
//! tokens, sessions and addresses; the admins' list of accounts.

use std::sync::Arc;

use crate::access::me::{self, MeApi};
use crate::http::ops;
use crate::mail::MailLog;
use crate::persons::erase::Eraser;
use crate::persons::http::{routes, PersonApi};
use crate::persons::{DynPersonDirectory, LocalPersons};
use crate::roles::{Readiness, Role, RunningRole};
use crate::signin::email::{self, AddressApi};
use crate::signin::http::{self as signin_http, SignInApi};
use crate::wiring::context::Context;

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::PersonApi;
    let Some(stores) = ctx.stores(ROLE).await? else {
        return Ok(None);
    };
    // The roles started after it in this process call it directly.
    let directory: DynPersonDirectory = Arc::new(LocalPersons::new(stores.persons.clone()));
    ctx.persons = Some(directory.clone());
    let accounts = ctx.account_store().await?;
    let settings = ctx.options.signin.clone();
    let log = if settings.mails {
        Some(ctx.log(ROLE)?)
    } else {
        tracing::warn!(
            "no --log: sign-in and welcome mails are off (persons with an email are refused)"
        );
        None
    };
    let public_url = settings.public_url.clone().unwrap_or_default();
    let eraser = Arc::new(Eraser {
        persons: stores.persons.clone(),
        locations: stores.locations.clone(),
        accounts: accounts.clone(),
        keys: stores.keys.clone(),
        log: log.clone(),
    });
    let (signin, worker) = SignInApi::start(
        accounts,
        stores.persons.clone(),
        log.map(|log| MailLog {
            log,
            keys: stores.keys.clone(),
        }),
        settings,
        public_url,
        ctx.auth.clone(),
        ctx.stop.clone(),
    );
    let api = Arc::new(PersonApi {
        store: stores.persons.clone(),
        metrics: ctx.metrics.clone(),
        signin: signin.clone(),
        eraser: eraser.clone(),
        directory: directory.clone(),
        auth: ctx.auth.clone(),
    });
    let me = Arc::new(MeApi {
        auth: ctx.auth.clone(),
        persons: stores.persons.clone(),
        eraser,
        directory,
    });
    let mut role = RunningRole::new(
        routes(api)
            .merge(me::routes(me))
            .merge(email::routes(AddressApi::new(signin.clone())))
            .merge(signin_http::routes(signin)),
    );
    role.checks
        .push((Readiness::PersonStore, ops::ping_check(&stores.persons)));
    role.tasks.push(worker);
    Ok(Some(role))
}

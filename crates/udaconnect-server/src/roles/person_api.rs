//! person-api: persons, over the person store it owns; `/api/me` and the caller's tokens.

use std::sync::Arc;

use crate::access::me::{self, MeApi};
use crate::http::ops;
use crate::persons::http::{routes, PersonApi};
use crate::persons::{DynPersonDirectory, LocalPersons};
use crate::roles::{Readiness, Role, RunningRole};
use crate::wiring::context::Context;

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    let Some(stores) = ctx.stores(Role::PersonApi).await? else {
        return Ok(None);
    };
    // The roles started after it in this process call it directly.
    let directory: DynPersonDirectory = Arc::new(LocalPersons::new(stores.persons.clone()));
    ctx.persons = Some(directory);
    let api = Arc::new(PersonApi {
        store: stores.persons.clone(),
        metrics: ctx.metrics.clone(),
    });
    let me = Arc::new(MeApi {
        auth: ctx.auth.clone(),
        persons: stores.persons.clone(),
    });
    let mut role = RunningRole::new(routes(api).merge(me::routes(me)));
    role.checks
        .push((Readiness::PersonStore, ops::ping_check(&stores.persons)));
    Ok(Some(role))
}

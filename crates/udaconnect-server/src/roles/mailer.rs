//! mailer: reads mail requests from `notification` and sends them over SMTP (or writes them
//! as `.eml` files under the data directory when no SMTP server is given), dead-lettering to
//! `notification.dlq` what cannot be sent; serves only /health, /ready and /metrics. It makes
//! the token of each sign-in link it sends, so it opens the account store too, and opens the
//! requests sealed with a person's key, so the key store.

use std::sync::Arc;

use udaconnect_core::mail::{DynMailSender, NOTIFICATION_DLQ_TOPIC, NOTIFICATION_TOPIC};

use crate::consume::poll;
use crate::http::ops;
use crate::mail::files::FileSender;
use crate::mail::mailer::{self, Mailer, SmtpHealth};
use crate::mail::smtp::SmtpSender;
use crate::roles::{Readiness, Role, RunningRole};
use crate::signin::LinkingSender;
use crate::wiring::context::Context;

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::Mailer;
    let log = ctx.log(ROLE)?;
    let Some(sent) = ctx.sent_mail(ROLE).await? else {
        return Ok(None);
    };
    // Persons' keys open the requests sealed for them.
    let Some(stores) = ctx.stores(ROLE).await? else {
        return Ok(None);
    };
    let settings = ctx.options.mail.clone();
    let mut role = RunningRole::new(axum::Router::new());
    role.checks.push((Readiness::Log, ops::ping_check(&log)));
    let (sender, health): (DynMailSender, _) = match &settings.smtp {
        Some(url) => {
            tracing::info!(smtp = %url, "sending mail over SMTP");
            let sender: DynMailSender = Arc::new(SmtpSender::new(url, &settings.from)?);
            let health = SmtpHealth::new(settings.unreachable_grace);
            let (s, h) = (sender.clone(), health.clone());
            role.checks.push((
                Readiness::Smtp,
                ops::check(move || {
                    let (s, h) = (s.clone(), h.clone());
                    async move { h.check(&s).await }
                }),
            ));
            (sender, Some(health))
        }
        None => {
            let dir = match (&settings.dir, ctx.local_dir()) {
                (Some(dir), _) => dir.clone(),
                (None, Some(data)) => data.join("mail"),
                (None, None) => anyhow::bail!(
                    "the mailer has no --smtp and nowhere to write mail files: give --smtp URL, \
                     or --mail-dir DIR"
                ),
            };
            tracing::info!(dir = %dir.display(), "no --smtp: mail is written as .eml files");
            (
                Arc::new(FileSender::new(dir, &settings.from)?) as DynMailSender,
                None,
            )
        }
    };
    // Each sign-in and welcome mail gets its link's token here, at the last moment: the log
    // carries none (see `signin`).
    let sender: DynMailSender = Arc::new(LinkingSender {
        inner: sender,
        accounts: ctx.account_store().await?,
        clock: ctx.options.signin.clock.clone(),
        log_links: settings.smtp.is_none(),
    });
    let mut worker = Mailer {
        log: log.clone(),
        requests: NOTIFICATION_TOPIC,
        keys: stores.keys,
        dead_letters: NOTIFICATION_DLQ_TOPIC,
        sender,
        sent,
        settings,
        metrics: ctx.metrics.clone(),
        health,
        stop: ctx.stop.clone(),
    };
    let stop = ctx.stop.clone();
    role.tasks.push(tokio::spawn(async move {
        poll::read(
            &log,
            &mailer::reader(NOTIFICATION_TOPIC, mailer::MAILER_GROUP),
            &mut worker,
            stop,
        )
        .await?;
        Ok(())
    }));
    Ok(Some(role))
}

//! `udaconnect admin invite EMAIL --role ROLE`: an account for an address, and a mail with a
//! sign-in link to it. Offline, like the other admin commands: it writes the account to the
//! store and sends the mail itself (over `--smtp`, or as an `.eml` file in the data
//! directory's `mail/`), so it works whether or not the server runs, and needs no log.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use udaconnect_core::auth::{Account, Email, NewAccount, Role};
use udaconnect_core::clock::SystemClock;
use udaconnect_core::mail::{DynMailSender, MailKind, MailSender, SendOutcome};
use udaconnect_server::mail::files::FileSender;
use udaconnect_server::mail::smtp::SmtpSender;
use udaconnect_server::mail::SmtpUrl;
use udaconnect_server::signin::{self, LinkingSender};

use crate::admin::AccountStoreArgs;

#[derive(Args, Debug)]
pub struct InviteArgs {
    /// The address to invite.
    pub email: String,
    /// The account's role: admin, organizer or attendee (an attendee is one person: --person).
    #[arg(long, value_parser = parse_invite_role)]
    pub role: Role,
    /// The person an attendee account is (required for attendee).
    #[arg(long)]
    pub person: Option<i64>,
    #[command(flatten)]
    pub store: AccountStoreArgs,
    /// The SMTP server to send the invitation through (as `serve --smtp`). Without it the mail
    /// is written as an .eml file into --mail-dir (default DIR/mail/ of --data-dir).
    #[arg(long, env = "UDACONNECT_SMTP")]
    pub smtp: Option<String>,
    /// Without --smtp: where the .eml file goes.
    #[arg(long, env = "UDACONNECT_MAIL_DIR")]
    pub mail_dir: Option<std::path::PathBuf>,
    #[arg(
        long,
        env = "UDACONNECT_MAIL_FROM",
        default_value = "UdaConnect <noreply@localhost>"
    )]
    pub mail_from: String,
    /// Where the link points: the address people open UdaConnect at.
    #[arg(long, env = "UDACONNECT_PUBLIC_URL", default_value = "http://127.0.0.1:30000", value_parser = signin::parse_public_url)]
    pub public_url: String,
}

fn parse_invite_role(s: &str) -> Result<Role, String> {
    match s.parse()? {
        Role::Device => Err("a device signs in with a token, not by mail: use create-token".into()),
        role => Ok(role),
    }
}

pub async fn invite(args: InviteArgs) -> anyhow::Result<()> {
    let email = Email::parse(&args.email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let role = args.role;
    if role.needs_person() && args.person.is_none() {
        anyhow::bail!("an {role} account is one person's: name it with --person ID");
    }
    if !role.needs_person() && args.person.is_some() {
        anyhow::bail!("an {role} account is no person's: leave out --person");
    }
    let stores = args.store.open().await?;
    if let Some(person) = args.person {
        let known = match &stores.persons {
            Some(persons) => persons.get(person).await?.is_some(),
            None => false,
        };
        if !known {
            anyhow::bail!("no person {person}: create the person first");
        }
    }
    let account = match stores.accounts.account_by_email(&email).await? {
        // Inviting again sends a new link.
        Some(a) if a.role == role && a.person == args.person => a,
        Some(a) => anyhow::bail!(
            "{email} already has an account ({}, {}): not changed",
            a.role,
            a.person
                .map(|p| format!("person {p}"))
                .unwrap_or_else(|| "no person".into())
        ),
        None => create(&stores.accounts, &email, role, args.person).await?,
    };
    let (inner, place): (DynMailSender, String) =
        match args.smtp.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(url) => {
                let url: SmtpUrl = url.parse().map_err(|e| anyhow::anyhow!("--smtp: {e}"))?;
                let place = format!("sent over SMTP ({url})");
                (Arc::new(SmtpSender::new(&url, &args.mail_from)?), place)
            }
            None => {
                let dir = args
                    .mail_dir
                    .clone()
                    .unwrap_or_else(|| args.store.data_dir.join("mail"));
                let place = format!("written to {}", dir.display());
                (Arc::new(FileSender::new(dir, &args.mail_from)?), place)
            }
        };
    let sender = LinkingSender {
        inner,
        accounts: stores.accounts.clone(),
        clock: Arc::new(SystemClock),
        log_links: false,
    };
    let key = signin::mail_key(MailKind::Welcome)?;
    let mail = signin::link_mail(&key, &email, MailKind::Welcome, &args.public_url)?;
    match sender.send(&mail).await {
        SendOutcome::Sent => {}
        SendOutcome::Transient(why) | SendOutcome::Permanent(why) => {
            anyhow::bail!("the invitation to {email} was not sent: {why}")
        }
    }
    println!(
        "invited {email} as {role} (account {}); the sign-in mail was {place}",
        account.id
    );
    Ok(())
}

async fn create(
    accounts: &udaconnect_core::ports::DynAccountStore,
    email: &Email,
    role: Role,
    person: Option<i64>,
) -> anyhow::Result<Account> {
    accounts
        .create_account(
            NewAccount {
                person,
                email: Some(email.clone()),
                email_verified: false,
                secondary_email: None,
                role,
            },
            Utc::now(),
        )
        .await
        .with_context(|| format!("failed to create the account of {email}"))
}

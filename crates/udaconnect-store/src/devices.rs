//! Tracker devices in the account store, written once over the two engines as the rest of
//! [`Accounts`]: a device is a row of `device` beside its device token in `account_token`,
//! and is live while neither is revoked.

use chrono::{DateTime, Utc};
use udaconnect_core::auth::{NewToken, Role, Scope, Scopes, TokenKind, TokenSecret};
use udaconnect_core::ports::AccountStore;
use udaconnect_core::time::truncate_to_micros;
use udaconnect_core::tracker::{DeviceId, DeviceInfo, IssuedDevice, NewDevice, OsmAndId, Seen};
use udaconnect_core::Result;

use crate::accounts::{hash, AccountDb, Accounts, Arg, LAST_USED_STEP};

/// Read by `crate::rows::device` in this order.
const DEVICE_COLUMNS: &str = "d.id, d.account_id, d.person_id, d.name, d.token_id, \
     d.created_at, d.revoked_at, d.last_seen_at, d.last_app, d.battery_pct";

const INSERT_DEVICE: &str = "INSERT INTO device
       (account_id, person_id, name, token_id, osmand_hash, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING id";
/// The token first: once it is revoked the device can post nothing, whatever happens next.
const REVOKE_DEVICE_TOKEN: &str = "UPDATE account_token SET revoked_at = $2
     WHERE id = (SELECT token_id FROM device WHERE id = $1) AND revoked_at IS NULL";
const REVOKE_DEVICE: &str =
    "UPDATE device SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const DEVICE_SEEN: &str = "UPDATE device
     SET last_seen_at = $2, last_app = $3, battery_pct = COALESCE($4, battery_pct)
     WHERE id = $1";

/// Devices matching `filter`, a clause over `d` (the device) and `t` (its token).
pub(crate) fn select_devices(filter: &str) -> String {
    format!(
        "SELECT {DEVICE_COLUMNS} FROM device d JOIN account_token t ON t.id = d.token_id {filter}"
    )
}

/// Only devices that may still post.
const LIVE: &str = "d.revoked_at IS NULL AND t.revoked_at IS NULL";

impl<D: AccountDb> Accounts<D> {
    async fn device_where(&self, filter: &str, args: Vec<Arg>) -> Result<Option<DeviceInfo>> {
        Ok(self.0.rows(&select_devices(filter), args).await?.pop())
    }

    pub(crate) async fn insert_device(
        &self,
        new: NewDevice,
        now: DateTime<Utc>,
    ) -> Result<IssuedDevice> {
        let created = truncate_to_micros(now);
        let token = NewToken {
            account: new.account,
            name: format!("device: {}", new.name),
            role: Role::Device,
            scopes: Scopes::only(Scope::Ingest),
            person: Some(new.person),
            expires: None,
        };
        let issued = self.create_token(token, created).await?;
        let osmand_id = OsmAndId::generate()?;
        let args = vec![
            Arg::Int(new.account),
            Arg::Int(new.person),
            Arg::Text(new.name.clone()),
            Arg::Int(issued.item.id),
            Arg::Bytes(osmand_id.hash().as_bytes().to_vec()),
            Arg::Time(created),
        ];
        let id = match self.0.insert(INSERT_DEVICE, args).await {
            Ok(id) => id,
            Err(e) => {
                // The token's secret was never shown; revoked, it can never be used either.
                let _ = self.revoke_token(issued.item.id, created).await;
                return Err(e);
            }
        };
        Ok(IssuedDevice {
            device: DeviceInfo {
                id,
                account: new.account,
                person: new.person,
                name: new.name,
                token: issued.item.id,
                created,
                revoked: None,
                last_seen: None,
                app: None,
                battery_pct: None,
            },
            token: issued.secret,
            osmand_id,
        })
    }

    pub(crate) async fn find_device(&self, id: DeviceId) -> Result<Option<DeviceInfo>> {
        self.device_where("WHERE d.id = $1", vec![Arg::Int(id)])
            .await
    }

    pub(crate) async fn account_devices(&self, account: i64) -> Result<Vec<DeviceInfo>> {
        let sql = select_devices(&format!("WHERE d.account_id = $1 AND {LIVE} ORDER BY d.id"));
        self.0.rows(&sql, vec![Arg::Int(account)]).await
    }

    pub(crate) async fn live_device_by_osmand_id(&self, sent: &str) -> Result<Option<DeviceInfo>> {
        let hash = OsmAndId::hash_of(sent).as_bytes().to_vec();
        let filter = format!("WHERE d.osmand_hash = $1 AND {LIVE}");
        self.device_where(&filter, vec![Arg::Bytes(hash)]).await
    }

    pub(crate) async fn live_device_by_token(
        &self,
        secret: &TokenSecret,
    ) -> Result<Option<DeviceInfo>> {
        let hash = hash(secret, TokenKind::Api);
        let filter = format!("WHERE t.hash = $1 AND {LIVE}");
        self.device_where(&filter, vec![Arg::Bytes(hash)]).await
    }

    pub(crate) async fn revoke_one_device(&self, id: DeviceId, now: DateTime<Utc>) -> Result<bool> {
        let at = truncate_to_micros(now);
        self.0
            .execute(REVOKE_DEVICE_TOKEN, vec![Arg::Int(id), Arg::Time(at)])
            .await?;
        Ok(self
            .0
            .execute(REVOKE_DEVICE, vec![Arg::Int(id), Arg::Time(at)])
            .await?
            > 0)
    }

    pub(crate) async fn record_device_seen(&self, device: &DeviceInfo, seen: Seen) -> Result<()> {
        let (app, now) = (seen.app, truncate_to_micros(seen.at));
        let battery = seen
            .battery_pct
            .filter(|b| (0.0..=100.0).contains(b))
            .map(|b| b.round() as i64);
        let stale = device.last_seen.is_none_or(|t| now - t >= LAST_USED_STEP);
        if !stale && device.app == Some(app) && (battery.is_none() || battery == device.battery_pct)
        {
            return Ok(());
        }
        let args = vec![
            Arg::Int(device.id),
            Arg::Time(now),
            Arg::Text(app.as_str().to_string()),
            Arg::MaybeInt(battery),
        ];
        self.0.execute(DEVICE_SEEN, args).await?;
        Ok(())
    }
}

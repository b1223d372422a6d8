//! The hub's side of joining, in its SQLite database: the token table (ids
//! and hashes only), the transition log every state change is appended to
//! before its effect, and the devices with the hashes of their credentials.
//! Every method runs on the hub's one connection, so redeems of one token
//! are serialized and exactly one of them can win.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;

use super::lifecycle::{apply, fold, Invalid, State, Transition};
use super::token::{hash, Claims, HubSecret, Scope, TokenError};
use crate::{HubError, HubStore};

/// Tables of the join registry (created with the op table).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS join_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    label      TEXT NOT NULL,
    scope      TEXT NOT NULL,
    expires    INTEGER NOT NULL,
    created    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS join_log (
    seq        INTEGER PRIMARY KEY,
    token_id   TEXT NOT NULL,
    transition TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS join_log_token ON join_log (token_id, seq);
CREATE TABLE IF NOT EXISTS devices (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    label           TEXT NOT NULL,
    scope           TEXT NOT NULL,
    device_key_hash TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    created         INTEGER NOT NULL,
    last_seen       INTEGER,
    revoked         INTEGER
);
";

/// An in-flight redeem older than this is presumed dead (its hub crashed
/// or its request was cut off) and is settled by the next redeem.
pub const STALE_IN_FLIGHT_MS: u64 = 60_000;

/// Why a redeem is refused.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// The token text itself is refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Past its expiry.
    #[error("the join token expired; create a new one with `heph hub join-token create`")]
    Expired,
    /// Cancelled by the owner.
    #[error("the join token was cancelled by the hub's owner")]
    Aborted,
    /// Another device used it.
    #[error("the join token was already used by another device")]
    Used,
    /// This device redeemed it, and was then removed.
    #[error("this device was removed from the hub; ask the owner for a new join token")]
    Revoked,
    /// The request is not usable.
    #[error("{0}")]
    BadRequest(String),
    /// The hub failed.
    #[error(transparent)]
    Hub(#[from] HubError),
}

impl From<rusqlite::Error> for RedeemError {
    fn from(e: rusqlite::Error) -> Self {
        RedeemError::Hub(HubError::Db(e))
    }
}

/// What a successful redeem gives the device.
#[derive(Debug, Clone, Serialize)]
pub struct Redeemed {
    /// The device's bearer credential.
    pub credential: String,
    /// Its id on the hub (for `heph hub revoke`).
    pub device_id: String,
    /// What it may do.
    pub scope: Scope,
    /// The owner's label.
    pub label: String,
}

/// What cancelling a join token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aborted {
    /// It could be used until now.
    Now,
    /// It had expired already: nobody could use it.
    Expired,
    /// It was cancelled before.
    Already,
}

/// One token, as `heph hub join-token list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    /// Its id.
    pub id: String,
    /// The owner's label.
    pub label: String,
    /// `full` or `capture`.
    pub scope: String,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// Its state's name.
    pub state: String,
}

/// One device, as `heph hub devices` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRow {
    /// Its id (the id of the token it joined with).
    pub id: String,
    /// The name the device gave.
    pub name: String,
    /// The owner's label.
    pub label: String,
    /// `full` or `capture`.
    pub scope: String,
    /// When it joined, unix ms.
    pub created: u64,
    /// When it last made a request, unix ms.
    pub last_seen: Option<u64>,
    /// When it was removed, unix ms.
    pub revoked: Option<u64>,
}

/// Test seam: the hub dies right after the named step of a redeem is
/// committed (`begin`, `credential`, `consumed`), as a crash would.
fn crash_point(step: &str) {
    if std::env::var("HEPH_TEST_JOIN_CRASH").as_deref() == Ok(step) {
        std::process::abort();
    }
}

fn state_of(conn: &Connection, token_id: &str) -> Result<State, HubError> {
    let mut stmt =
        conn.prepare_cached("SELECT transition FROM join_log WHERE token_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([token_id], |r| r.get::<_, String>(0))?;
    let mut log = Vec::new();
    for row in rows {
        let text = row?;
        match serde_json::from_str::<Transition>(&text) {
            Ok(t) => log.push(t),
            Err(e) => {
                tracing::error!(token = token_id, error = %e, "unreadable join log entry skipped")
            }
        }
    }
    Ok(fold(&log))
}

/// Appends `transition` when it applies and changes the state; returns the
/// new state or why it does not apply (logged, never a panic).
fn append(
    tx: &Transaction<'_>,
    token_id: &str,
    transition: &Transition,
    now: u64,
) -> Result<Result<State, Invalid>, HubError> {
    let state = state_of(tx, token_id)?;
    match apply(&state, transition) {
        Ok(next) if next == state => Ok(Ok(next)),
        Ok(next) => {
            let text =
                serde_json::to_string(transition).map_err(|e| HubError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO join_log (token_id, transition, at) VALUES (?1, ?2, ?3)",
                params![token_id, text, now as i64],
            )?;
            Ok(Ok(next))
        }
        Err(invalid) => {
            tracing::warn!(
                token = token_id,
                transition = transition.name(),
                state = state.name(),
                %invalid,
                "join transition refused"
            );
            Ok(Err(invalid))
        }
    }
}

fn register(
    tx: &Transaction<'_>,
    claims: &Claims,
    token_hash: &str,
    now: u64,
) -> Result<(), HubError> {
    tx.execute(
        "INSERT OR IGNORE INTO join_tokens (id, token_hash, label, scope, expires, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            claims.id,
            token_hash,
            claims.label,
            claims.scope.as_str(),
            claims.exp as i64,
            now as i64
        ],
    )?;
    let _ = append(tx, &claims.id, &Transition::Register, now)?;
    Ok(())
}

/// Settles an in-flight redeem whose request is gone: forward to Consumed
/// when its credential was stored, back to Issued when not.
fn settle(tx: &Transaction<'_>, token_id: &str, device: &str, now: u64) -> Result<State, HubError> {
    let stored: bool = tx
        .query_row(
            "SELECT 1 FROM devices WHERE id = ?1 AND device_key_hash = ?2",
            params![token_id, device],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    let transition = if stored {
        Transition::MarkConsumed {
            device: device.to_owned(),
            at: now,
        }
    } else {
        Transition::RevertInFlight {
            device: device.to_owned(),
        }
    };
    let state = append(tx, token_id, &transition, now)?;
    Ok(state.unwrap_or(State::Issued))
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, HubError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.map(|v| v.max(0) as u64)
}

impl HubStore {
    /// Records a token the owner just created, so it can be listed and
    /// aborted before it is ever presented.
    pub fn register_token(&self, claims: &Claims, token: &str, now: u64) -> Result<(), HubError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        register(&tx, claims, &hash(token), now)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether join tokens exist: from then on every device needs a
    /// credential.
    pub fn join_active(&self) -> Result<bool, HubError> {
        Ok(self
            .lock()
            .query_row("SELECT EXISTS (SELECT 1 FROM join_tokens)", [], |r| {
                r.get(0)
            })?)
    }

    /// Redeems `token` for the device with key `device_key` (its own
    /// random secret, so that its retry is recognised): register on first
    /// sight → in flight → credential → consumed. A retry by the same
    /// device gets the same credential; any other device is refused.
    pub fn redeem(
        &self,
        secret: &HubSecret,
        token: &str,
        device_key: &str,
        device_name: &str,
        now: u64,
    ) -> Result<Redeemed, RedeemError> {
        if device_key.len() < 16 || device_key.len() > 256 {
            return Err(RedeemError::BadRequest(
                "device_key must be 16 to 256 characters".into(),
            ));
        }
        let claims = secret.verify(token)?;
        let device = hash(device_key);
        let name: String = device_name.chars().take(100).collect();
        let redeemed = |claims: &Claims| Redeemed {
            credential: secret.credential(&claims.id, device_key),
            device_id: claims.id.clone(),
            scope: claims.scope,
            label: claims.label.clone(),
        };
        let mut conn = self.lock();
        // 1. Register on first sight, then begin (or resume) this device's
        //    redeem.
        {
            let tx = immediate(&mut conn)?;
            register(&tx, &claims, &hash(token), now)?;
            let mut state = state_of(&tx, &claims.id)?;
            if let State::InFlight {
                device: other,
                since,
            } = &state
            {
                if other != &device && since.saturating_add(STALE_IN_FLIGHT_MS) <= now {
                    state = settle(&tx, &claims.id, &other.clone(), now)?;
                }
            }
            match &state {
                State::Consumed { device: d, .. } if d == &device => {
                    let revoked: Option<i64> = tx
                        .query_row(
                            "SELECT revoked FROM devices WHERE id = ?1",
                            [&claims.id],
                            |r| r.get(0),
                        )
                        .optional()?
                        .flatten();
                    tx.commit()?;
                    if revoked.is_some() {
                        return Err(RedeemError::Revoked);
                    }
                    // The reply was lost: the same credential again.
                    return Ok(redeemed(&claims));
                }
                State::Issued | State::InFlight { .. }
                    if claims.exp.saturating_mul(1000) <= now =>
                {
                    let _ = append(&tx, &claims.id, &Transition::Expire, now)?;
                    tx.commit()?;
                    return Err(RedeemError::Expired);
                }
                _ => {}
            }
            let begin = Transition::BeginInFlight {
                device: device.clone(),
                at: now,
            };
            let outcome = append(&tx, &claims.id, &begin, now)?;
            tx.commit()?;
            match outcome {
                Ok(_) => {}
                Err(Invalid::Expired) => return Err(RedeemError::Expired),
                Err(Invalid::Aborted) => return Err(RedeemError::Aborted),
                Err(_) => return Err(RedeemError::Used),
            }
        }
        crash_point("begin");
        // 2. The credential: only its hash is stored.
        let credential = secret.credential(&claims.id, device_key);
        let stored = (|| -> Result<(), HubError> {
            conn.execute(
                "INSERT OR IGNORE INTO devices
                     (id, name, label, scope, device_key_hash, credential_hash, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    claims.id,
                    name,
                    claims.label,
                    claims.scope.as_str(),
                    device,
                    hash(&credential),
                    now as i64
                ],
            )?;
            Ok(())
        })();
        if let Err(e) = stored {
            // Usable again: revert before answering.
            let tx = immediate(&mut conn)?;
            let revert = Transition::RevertInFlight {
                device: device.clone(),
            };
            let _ = append(&tx, &claims.id, &revert, now)?;
            tx.commit()?;
            return Err(e.into());
        }
        crash_point("credential");
        // 3. Consumed.
        {
            let tx = immediate(&mut conn)?;
            let done = Transition::MarkConsumed {
                device: device.clone(),
                at: now,
            };
            let outcome = append(&tx, &claims.id, &done, now)?;
            tx.commit()?;
            if outcome.is_err() {
                return Err(RedeemError::Used);
            }
        }
        crash_point("consumed");
        tracing::info!(device = %claims.id, label = %claims.label, scope = claims.scope.as_str(), "device joined");
        Ok(redeemed(&claims))
    }

    /// Settles every in-flight redeem begun at least `older_than_ms` ago
    /// (at startup: all of them, as none can still be running). Returns
    /// how many were settled.
    pub fn settle_in_flight(&self, now: u64, older_than_ms: u64) -> Result<usize, HubError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare("SELECT id FROM join_tokens")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut settled = 0;
        for id in ids {
            if let State::InFlight { device, since } = state_of(&tx, &id)? {
                if since.saturating_add(older_than_ms) <= now {
                    let state = settle(&tx, &id, &device, now)?;
                    tracing::warn!(token = %id, now = state.name(), "settled a redeem cut off by a crash");
                    settled += 1;
                }
            }
        }
        tx.commit()?;
        Ok(settled)
    }

    /// The state of token `id`.
    pub fn token_state(&self, id: &str) -> Result<State, HubError> {
        state_of(&self.lock(), id)
    }

    /// Every token the hub knows, oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenRow>, HubError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT id, label, scope, expires FROM join_tokens ORDER BY created, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenRow {
                id: r.get(0)?,
                label: r.get(1)?,
                scope: r.get(2)?,
                expires: r.get::<_, i64>(3)?.max(0) as u64,
                state: String::new(),
            })
        })?;
        let mut tokens: Vec<TokenRow> = rows.collect::<Result<_, _>>()?;
        let now_secs = super::now_ms() / 1000;
        for token in &mut tokens {
            let state = state_of(&conn, &token.id)?;
            // Past its expiry and never used: shown as expired (the log
            // records Expire when the token is next presented).
            token.state = match state {
                State::Issued if token.expires <= now_secs => "expired",
                other => other.name(),
            }
            .to_owned();
        }
        Ok(tokens)
    }

    /// Cancels token `id`. Errors say why not (unknown, already used).
    pub fn abort_token(&self, id: &str, now: u64) -> Result<Result<Aborted, String>, HubError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let expires: Option<i64> = tx
            .query_row("SELECT expires FROM join_tokens WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(expires) = expires else {
            return Ok(Err(format!(
                "no join token with id {id:?} (see `heph hub join-token list`)"
            )));
        };
        // Cancelling a token that cannot be used any more changes nothing:
        // said as it is, not as a cancel.
        let before = state_of(&tx, id)?;
        let outcome = append(&tx, id, &Transition::Abort, now)?;
        tx.commit()?;
        Ok(outcome
            .map(|_| match before {
                State::Aborted => Aborted::Already,
                State::Expired => Aborted::Expired,
                State::Issued if expires <= (now / 1000) as i64 => Aborted::Expired,
                _ => Aborted::Now,
            })
            .map_err(|_| {
                format!(
                    "token {id} was already used; remove its device with `heph hub revoke {id}`"
                )
            }))
    }

    /// Every device that joined, oldest first.
    pub fn devices(&self) -> Result<Vec<DeviceRow>, HubError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, name, label, scope, created, last_seen, revoked FROM devices
             ORDER BY created, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceRow {
                id: r.get(0)?,
                name: r.get(1)?,
                label: r.get(2)?,
                scope: r.get(3)?,
                created: r.get::<_, i64>(4)?.max(0) as u64,
                last_seen: opt_u64(r.get(5)?),
                revoked: opt_u64(r.get(6)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes a device (by id, or by label when one device has it): its
    /// next request gets 401. Returns its id, and whether it was removed
    /// before.
    pub fn revoke(
        &self,
        which: &str,
        now: u64,
    ) -> Result<Result<(String, bool), String>, HubError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare("SELECT id FROM devices WHERE id = ?1 OR label = ?1")?;
            let rows = stmt.query_map([which], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let id = match ids.as_slice() {
            [] => return Ok(Err(format!("no device {which:?} (see `heph hub devices`)"))),
            [one] => one.clone(),
            _ if ids.iter().any(|i| i == which) => which.to_owned(),
            _ => {
                return Ok(Err(format!(
                    "several devices are labelled {which:?}: name one by id ({})",
                    ids.join(", ")
                )))
            }
        };
        let removed = tx.execute(
            "UPDATE devices SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            params![id, now as i64],
        )?;
        tx.commit()?;
        Ok(Ok((id, removed == 0)))
    }

    /// The device holding `credential`: `Ok(Some((scope, revoked)))`.
    /// Notes when it was last seen (at most once a minute).
    pub fn device_for(
        &self,
        credential: &str,
        now: u64,
    ) -> Result<Option<(Scope, bool)>, HubError> {
        let conn = self.lock();
        let row: Option<(String, String, Option<i64>, Option<i64>)> = conn
            .query_row(
                "SELECT id, scope, revoked, last_seen FROM devices WHERE credential_hash = ?1",
                [hash(credential)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((id, scope, revoked, last_seen)) = row else {
            return Ok(None);
        };
        if revoked.is_none() && opt_u64(last_seen).is_none_or(|t| t + 60_000 <= now) {
            conn.execute(
                "UPDATE devices SET last_seen = ?2 WHERE id = ?1",
                params![id, now as i64],
            )?;
        }
        let scope = Scope::parse(&scope).unwrap_or(Scope::Capture);
        Ok(Some((scope, revoked.is_some())))
    }
}

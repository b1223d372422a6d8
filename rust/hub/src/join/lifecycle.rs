//! The life of one join token, as a pure state machine:
//!
//! ```text
//!   (unseen) --Register--> Issued --BeginInFlight(d)--> InFlight(d) --MarkConsumed(d)--> Consumed(d)
//!                            ^                             |
//!                            +------RevertInFlight(d)------+
//!   Issued | InFlight --Expire--> Expired        any but Consumed --Abort--> Aborted
//! ```
//!
//! The hub appends every transition to its `join_log` before the effect is
//! visible, and a token's state is the fold of its log. Applying is
//! deterministic and idempotent: a transition whose target state already
//! holds is a no-op, so replaying a log (or a log with duplicated entries)
//! after a crash converges to the same state. An invalid transition is an
//! error value, never a panic, and leaves the state as it was.

use serde::{Deserialize, Serialize};

/// Where a token stands. `device` is the hash of the redeeming device's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Never presented to this hub and not created on it.
    Unseen,
    /// Valid and unused.
    Issued,
    /// A device is redeeming it (since `since`, unix ms).
    InFlight {
        /// The redeeming device.
        device: String,
        /// When the redeem began.
        since: u64,
    },
    /// Used by `device`, which holds a credential.
    Consumed {
        /// The device that redeemed it.
        device: String,
        /// When (unix ms).
        at: u64,
    },
    /// Past its expiry before anyone used it.
    Expired,
    /// Cancelled by the hub's owner.
    Aborted,
}

/// One entry of the transition log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Transition {
    /// The hub sees a validly signed token for the first time.
    Register,
    /// `device` starts redeeming.
    BeginInFlight {
        /// The redeeming device.
        device: String,
        /// When (unix ms).
        at: u64,
    },
    /// Issuing the credential failed (or the hub died before): usable again.
    RevertInFlight {
        /// The device whose redeem is undone.
        device: String,
    },
    /// `device` holds its credential: the token is used.
    MarkConsumed {
        /// The device.
        device: String,
        /// When (unix ms).
        at: u64,
    },
    /// The token's expiry passed before it was used.
    Expire,
    /// The owner cancelled it.
    Abort,
}

/// Why a transition does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The token must be registered first.
    #[error("the token is not registered")]
    Unseen,
    /// Another device used the token (or is using it).
    #[error("the token was already used by another device")]
    Used,
    /// The token expired.
    #[error("the token expired")]
    Expired,
    /// The owner cancelled the token.
    #[error("the token was cancelled by the hub's owner")]
    Aborted,
    /// The transition makes no sense from here (e.g. revert a consumed token).
    #[error("{transition} does not apply to a token that is {state}")]
    Illegal {
        /// The transition's name.
        transition: &'static str,
        /// The state's name.
        state: &'static str,
    },
}

impl State {
    /// The state's name, as logs and `join-token list` show it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Unseen => "unseen",
            State::Issued => "issued",
            State::InFlight { .. } => "in_flight",
            State::Consumed { .. } => "consumed",
            State::Expired => "expired",
            State::Aborted => "aborted",
        }
    }
}

impl Transition {
    /// The transition's name.
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Register => "register",
            Transition::BeginInFlight { .. } => "begin_in_flight",
            Transition::RevertInFlight { .. } => "revert_in_flight",
            Transition::MarkConsumed { .. } => "mark_consumed",
            Transition::Expire => "expire",
            Transition::Abort => "abort",
        }
    }
}

/// The state after `transition`, or why it does not apply.
pub fn apply(state: &State, transition: &Transition) -> Result<State, Invalid> {
    use State as S;
    use Transition as T;
    let illegal = || Invalid::Illegal {
        transition: transition.name(),
        state: state.name(),
    };
    // The refusal a redeem hears when the token is past use.
    let closed = |s: &State| match s {
        S::Consumed { .. } => Invalid::Used,
        S::Expired => Invalid::Expired,
        S::Aborted => Invalid::Aborted,
        _ => Invalid::Unseen,
    };
    match (state, transition) {
        (S::Unseen, T::Register) => Ok(S::Issued),
        (_, T::Register) => Ok(state.clone()),

        (S::Issued, T::BeginInFlight { device, at }) => Ok(S::InFlight {
            device: device.clone(),
            since: *at,
        }),
        (S::InFlight { device: d, .. }, T::BeginInFlight { device, .. }) if d == device => {
            Ok(state.clone())
        }
        (S::InFlight { .. }, T::BeginInFlight { .. }) => Err(Invalid::Used),
        (S::Unseen | S::Consumed { .. } | S::Expired | S::Aborted, T::BeginInFlight { .. }) => {
            Err(closed(state))
        }

        (S::InFlight { device: d, .. }, T::RevertInFlight { device }) if d == device => {
            Ok(S::Issued)
        }
        (S::Issued, T::RevertInFlight { .. }) => Ok(S::Issued),
        (_, T::RevertInFlight { .. }) => Err(illegal()),

        (S::InFlight { device: d, .. }, T::MarkConsumed { device, at }) if d == device => {
            Ok(S::Consumed {
                device: device.clone(),
                at: *at,
            })
        }
        (S::Consumed { device: d, .. }, T::MarkConsumed { device, .. }) if d == device => {
            Ok(state.clone())
        }
        (_, T::MarkConsumed { .. }) => Err(illegal()),

        (S::Issued | S::InFlight { .. } | S::Expired, T::Expire) => Ok(S::Expired),
        (_, T::Expire) => Err(illegal()),

        // A used token is not cancelled: its device is revoked instead.
        (S::Consumed { .. }, T::Abort) => Err(illegal()),
        (_, T::Abort) => Ok(S::Aborted),
    }
}

/// The state a log leads to. Entries that do not apply are skipped (they
/// were refused when appended, or are duplicates of a crash's replay).
pub fn fold<'a>(log: impl IntoIterator<Item = &'a Transition>) -> State {
    log.into_iter()
        .fold(State::Unseen, |state, t| apply(&state, t).unwrap_or(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn transition() -> impl Strategy<Value = Transition> {
        let device = prop::sample::select(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]);
        prop_oneof![
            Just(Transition::Register),
            (device.clone(), 0u64..100)
                .prop_map(|(device, at)| Transition::BeginInFlight { device, at }),
            device
                .clone()
                .prop_map(|device| Transition::RevertInFlight { device }),
            (device, 0u64..100).prop_map(|(device, at)| Transition::MarkConsumed { device, at }),
            Just(Transition::Expire),
            Just(Transition::Abort),
        ]
    }

    /// What the hub appends: only transitions that apply (refusals are
    /// answered, not logged as state changes).
    fn accepted(candidates: &[Transition]) -> Vec<Transition> {
        let mut state = State::Unseen;
        let mut log = Vec::new();
        for t in candidates {
            if let Ok(next) = apply(&state, t) {
                state = next;
                log.push(t.clone());
            }
        }
        log
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Replaying any prefix of a log, with any entries duplicated,
        /// gives the same state as the prefix itself; applying twice is
        /// applying once.
        #[test]
        fn replay_with_duplicates_converges(
            candidates in prop::collection::vec(transition(), 0..40),
            crash in any::<prop::sample::Index>(),
            dups in prop::collection::vec(any::<bool>(), 40),
        ) {
            let log = accepted(&candidates);
            let cut = if log.is_empty() { 0 } else { crash.index(log.len() + 1) };
            let prefix = &log[..cut];
            let mut replayed = Vec::new();
            for (i, t) in prefix.iter().enumerate() {
                replayed.push(t.clone());
                if dups[i % dups.len()] {
                    replayed.push(t.clone());
                }
            }
            prop_assert_eq!(fold(&replayed), fold(prefix));
            for t in &candidates {
                let s = fold(prefix);
                if let Ok(once) = apply(&s, t) {
                    prop_assert_eq!(apply(&once, t), Ok(once.clone()));
                }
            }
        }

        /// No sequence of transitions, raw (invalid ones included), makes a
        /// token consumed twice or moves it out of Consumed; nothing panics.
        #[test]
        fn a_token_is_used_at_most_once(
            candidates in prop::collection::vec(transition(), 0..60),
        ) {
            let mut state = State::Unseen;
            let mut consumed_by: Option<String> = None;
            for t in &candidates {
                let next = apply(&state, t).unwrap_or_else(|_| state.clone());
                if let State::Consumed { device, .. } = &next {
                    match &consumed_by {
                        None => consumed_by = Some(device.clone()),
                        Some(first) => prop_assert_eq!(first, device),
                    }
                }
                if consumed_by.is_some() {
                    prop_assert!(matches!(next, State::Consumed { .. }), "left Consumed: {next:?}");
                    if let Transition::BeginInFlight { .. } = t {
                        prop_assert!(apply(&state, t).is_err() || state == next);
                    }
                }
                state = next;
            }
            prop_assert_eq!(fold(&accepted(&candidates)), {
                let mut s = State::Unseen;
                for t in &candidates { s = apply(&s, t).unwrap_or(s); }
                s
            });
        }
    }

    #[test]
    fn an_invalid_transition_is_an_error_not_a_panic() {
        let consumed = State::Consumed {
            device: "a".into(),
            at: 1,
        };
        assert_eq!(
            apply(
                &consumed,
                &Transition::BeginInFlight {
                    device: "b".into(),
                    at: 2
                }
            ),
            Err(Invalid::Used)
        );
        assert!(apply(
            &consumed,
            &Transition::RevertInFlight { device: "a".into() }
        )
        .is_err());
        assert_eq!(
            apply(
                &State::Issued,
                &Transition::MarkConsumed {
                    device: "a".into(),
                    at: 1
                }
            )
            .map_err(|e| e.to_string()),
            Err("mark_consumed does not apply to a token that is issued".into())
        );
    }
}

//! Pulled ops that cannot be applied are quarantined, in the transaction
//! that moves the cursor; they are retried later; local writes too large
//! for a hub are refused before they are recorded.

use heph_core::hlc::MAX_COUNTER;
use heph_core::{Hlc, NewNode, Op};
use heph_store::{RawOp, Replica};

const HUB: &str = "http://127.0.0.1:1";
const DAY: i64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The ops of a task made on another replica, as pulled JSON.
fn remote_task(title: &str, skew_ms: i64) -> Vec<String> {
    let mut other = Replica::open_in_memory().unwrap();
    other.clock_mut().set_offset_ms(skew_ms);
    other
        .create(NewNode {
            title: title.into(),
            ..NewNode::default()
        })
        .unwrap();
    other
        .export_ops()
        .unwrap()
        .iter()
        .map(|op| serde_json::to_string(op).unwrap())
        .collect()
}

fn page(first_seq: i64, raws: &[String]) -> Vec<RawOp> {
    raws.iter()
        .enumerate()
        .map(|(i, raw)| RawOp {
            seq: first_seq + i as i64,
            raw: raw.clone(),
        })
        .collect()
}

/// A replica with a node of its own and another device's task pulled from
/// HUB (its ops from hub sequence `first_seq`, the cursor then at `cursor`,
/// or at their end when 0); its first own op refused with `code`, the
/// others pushed. Returns it and the pulled ops' text.
fn synced(first_seq: i64, cursor: i64, code: &str) -> (Replica, Vec<String>) {
    let mut r = Replica::open_in_memory().unwrap();
    r.create(NewNode {
        title: "mine".into(),
        ..NewNode::default()
    })
    .unwrap();
    let theirs = remote_task("theirs", 0);
    let cursor = if cursor == 0 {
        theirs.len() as i64
    } else {
        cursor
    };
    r.apply_pulled(HUB, &page(first_seq, &theirs), cursor, None)
        .unwrap();
    let ops = r.unpushed_ops(usize::MAX).unwrap();
    r.mark_refused(&[(
        ops[0].op_id.clone(),
        code.into(),
        "refused by the hub".into(),
    )])
    .unwrap();
    let sent: Vec<String> = ops[1..].iter().map(|op| op.op_id.clone()).collect();
    r.mark_pushed(&sent).unwrap();
    assert_eq!(r.pending_count().unwrap(), 0);
    (r, theirs)
}

#[test]
fn bad_ops_are_quarantined_with_the_cursor_in_one_transaction() {
    let mut r = Replica::open_in_memory().unwrap();
    let mut raws = remote_task("good", 0);
    let good = raws.len();
    let hostile = [
        r#"{"op_id":"h1","node":"n1","action":"delete"}"#.to_owned(),
        r#"{"op_id":"h2","hlc":"ééééééééé-aa","node":"n1","action":"delete"}"#.to_owned(),
        r#"{"op_id":"h3","hlc":"000000000001000000-aa","node":"a/b","action":"delete"}"#
            .to_owned(),
        r#"{"op_id":"h4","hlc":"000000000001000000-aa","node":"n1","action":"explode"}"#
            .to_owned(),
        r#"{"op_id":"h5","hlc":"000000000001000000-aa","node":"n1","action":"set","field":"status","value":" done "}"#
            .to_owned(),
        "not json at all".to_owned(),
    ];
    raws.extend(hostile.iter().cloned());
    raws.extend(remote_task("future", 3 * DAY));
    let pulled = page(10, &raws);
    let last = pulled.last().unwrap().seq;
    let outcome = r.apply_pulled(HUB, &pulled, last, None).unwrap();
    assert_eq!(outcome.applied.new_ops, good);
    assert_eq!(outcome.quarantined, raws.len() - good);
    assert_eq!(r.sync_cursor(HUB).unwrap(), last, "the cursor moved on");
    assert_eq!(r.op_count().unwrap() as usize, good);
    let kept = r.quarantined().unwrap();
    assert_eq!(kept.len(), raws.len() - good);
    assert_eq!(kept[0].seq, 10 + good as i64);
    assert_eq!(kept[0].raw, hostile[0]);
    assert_eq!(kept[0].op_id.as_deref(), Some("h1"));
    assert!(kept[0].reason.contains("unreadable"), "{}", kept[0].reason);
    assert!(kept[2].reason.contains("a/b"), "{}", kept[2].reason);
    assert!(kept[4].reason.contains("canonical"), "{}", kept[4].reason);
    assert!(kept.last().unwrap().reason.contains("future"));
    let summary = r.quarantine_summary(Some(HUB)).unwrap();
    assert_eq!(summary.count as usize, raws.len() - good);
    assert!(summary.newest_reason.is_some());
    // The same page again (a crash before the reply was seen): no duplicates.
    r.apply_pulled(HUB, &pulled, last, None).unwrap();
    assert_eq!(r.quarantined().unwrap().len(), raws.len() - good);
    assert_eq!(r.op_count().unwrap() as usize, good);
    // Local writes still work.
    r.create(NewNode {
        title: "local".into(),
        ..NewNode::default()
    })
    .unwrap();
}

#[test]
fn a_future_op_applies_once_its_time_comes() {
    let mut r = Replica::open_in_memory().unwrap();
    // This device's clock is two days behind.
    r.clock_mut().set_offset_ms(-2 * DAY);
    let raws = remote_task("from the present", 0);
    let outcome = r
        .apply_pulled(HUB, &page(1, &raws), raws.len() as i64, Some(now_ms()))
        .unwrap();
    assert_eq!(outcome.quarantined, raws.len());
    assert_eq!(r.node_count().unwrap(), 0);
    let reason = r.quarantine_summary(None).unwrap().newest_reason.unwrap();
    assert!(
        reason.contains("this device's clock seems to be behind"),
        "{reason}"
    );
    assert!(!reason.contains("sending device"), "{reason}");
    // Still behind: stays.
    assert_eq!(r.retry_quarantine(HUB, None).unwrap().released, 0);
    // The clock catches up.
    r.clock_mut().set_offset_ms(0);
    let retried = r.retry_quarantine(HUB, None).unwrap();
    assert_eq!(retried.released, raws.len());
    assert_eq!(retried.applied.new_ops, raws.len());
    assert_eq!(r.quarantine_summary(None).unwrap().count, 0);
    assert_eq!(r.node_count().unwrap(), 1);
    assert_eq!(
        r.pending_count().unwrap(),
        0,
        "pulled ops are not pushed back"
    );
}

#[test]
fn a_body_too_large_as_json_is_refused_when_written() {
    let mut r = Replica::open_in_memory().unwrap();
    // Under the 1 MiB body limit as text, about 6 MB as JSON.
    let body = "\u{1}".repeat(1_000_000);
    let err = r
        .create(NewNode {
            title: "control".into(),
            body,
            ..NewNode::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("JSON"), "{err}");
    assert_eq!(r.op_count().unwrap(), 0, "nothing was recorded");
    assert_eq!(r.pending_count().unwrap(), 0);
}

#[test]
fn a_remote_counter_at_its_maximum_does_not_block_local_writes() {
    let mut r = Replica::open_in_memory().unwrap();
    let hlc = Hlc {
        millis: now_ms() + 60_000,
        counter: MAX_COUNTER,
        origin: "zz".into(),
    };
    let op = Op {
        op_id: "full-counter".into(),
        hlc: hlc.clone(),
        node: "n1".into(),
        action: heph_core::Action::Create {
            kind: heph_core::Kind::Note,
        },
    };
    r.apply_ops(&[op]).unwrap();
    for i in 0..3 {
        r.create(NewNode {
            title: format!("after {i}"),
            ..NewNode::default()
        })
        .unwrap();
    }
    let newest = r
        .export_ops()
        .unwrap()
        .into_iter()
        .map(|o| o.hlc)
        .max()
        .unwrap();
    assert!(newest.millis > hlc.millis);
}

#[test]
fn refused_local_ops_are_set_aside_and_do_not_block() {
    let mut r = Replica::open_in_memory().unwrap();
    for t in ["a", "b"] {
        r.create(NewNode {
            title: t.into(),
            ..NewNode::default()
        })
        .unwrap();
    }
    let ops = r.unpushed_ops(usize::MAX).unwrap();
    assert_eq!(ops.len(), 6);
    r.mark_refused(&[(
        ops[0].op_id.clone(),
        "clock_ahead".into(),
        "this device's clock is wrong".into(),
    )])
    .unwrap();
    let next = r.unpushed_ops(usize::MAX).unwrap();
    assert_eq!(next.len(), 5);
    assert_eq!(next[0].op_id, ops[1].op_id);
    assert_eq!(r.pending_count().unwrap(), 5);
    let refused = r.refused_summary().unwrap();
    assert_eq!(refused.count, 1);
    assert_eq!(
        refused.newest_reason.as_deref(),
        Some("this device's clock is wrong")
    );
    assert_eq!(r.requeue_refused("clock_ahead").unwrap(), 1);
    assert_eq!(r.pending_count().unwrap(), 6);
    assert_eq!(r.refused_summary().unwrap().count, 0);
}

#[test]
fn another_hub_database_at_the_same_url_gets_every_op_again() {
    // Pulled from the hub: another device's ops, the cursor at their end.
    let (mut r, _) = synced(10, 20, "invalid");
    // The first id heard is recorded; hearing it again changes nothing.
    assert!(!r.note_hub_instance(HUB, "one").unwrap());
    assert!(!r.note_hub_instance(HUB, "one").unwrap());
    assert_eq!(r.sync_cursor(HUB).unwrap(), 20);
    // Another id: every op goes again (ours and those pulled), the refused
    // one stays set aside, and the hub is read from its start.
    assert!(r.note_hub_instance(HUB, "two").unwrap());
    let all = r.export_ops().unwrap().len() as u64;
    assert_eq!(r.pending_count().unwrap(), all - 1);
    assert_eq!(r.refused_summary().unwrap().count, 1);
    assert_eq!(r.sync_cursor(HUB).unwrap(), 0);
    assert!(!r.note_hub_instance(HUB, "two").unwrap());
    // Another hub's records are its own.
    assert!(!r.note_hub_instance("http://127.0.0.1:2", "three").unwrap());
}

/// The mark (the highest hub sequence known, with its op) follows pulled
/// pages and push replies, never goes back, skips an op whose id does not
/// read, and is forgotten with the cursor when the device starts over.
#[test]
fn the_hub_mark_follows_pulls_and_pushes_and_goes_with_a_start_over() {
    let mut r = Replica::open_in_memory().unwrap();
    assert_eq!(r.hub_mark(HUB).unwrap(), None);
    let mut theirs = remote_task("theirs", 0);
    let last_id: serde_json::Value = serde_json::from_str(theirs.last().unwrap()).unwrap();
    let last_id = last_id["op_id"].as_str().unwrap().to_owned();
    // An unreadable op ends the page: the mark is the last op that reads.
    theirs.push("{not json".into());
    let pulled = page(10, &theirs);
    let end = pulled.last().unwrap().seq;
    r.apply_pulled(HUB, &pulled, end, None).unwrap();
    assert_eq!(r.hub_mark(HUB).unwrap(), Some((end - 1, last_id.clone())));
    // A push reply with a higher sequence raises it; a lower one does not.
    let progress = |seq: i64, id: &'static str| heph_store::PushProgress {
        hub: HUB,
        cursor: None,
        mark: Some((seq, id)),
    };
    r.record_push_reply(Some(progress(40, "op-40")), &[])
        .unwrap();
    r.record_push_reply(Some(progress(30, "op-30")), &[])
        .unwrap();
    assert_eq!(r.hub_mark(HUB).unwrap(), Some((40, "op-40".into())));
    // Another hub's mark is its own.
    assert_eq!(r.hub_mark("http://127.0.0.1:2").unwrap(), None);
    r.create(NewNode {
        title: "mine".into(),
        ..NewNode::default()
    })
    .unwrap();
    let mine: Vec<String> = r
        .unpushed_ops(usize::MAX)
        .unwrap()
        .iter()
        .map(|op| op.op_id.clone())
        .collect();
    r.mark_pushed(&mine).unwrap();
    assert_eq!(r.pending_count().unwrap(), 0);
    r.start_over_with_hub(HUB).unwrap();
    assert_eq!(r.hub_mark(HUB).unwrap(), None);
    assert_eq!(r.sync_cursor(HUB).unwrap(), 0);
    assert_eq!(
        r.pending_count().unwrap(),
        r.export_ops().unwrap().len() as u64,
        "every op goes to the hub again"
    );
}

/// Pushed flags speak of the hub pushed to last: a pass with another hub
/// marks every op unpushed (refused ones too); a replica from before the
/// record counts its pushes as made to a hub it has a cursor for.
#[test]
fn a_pass_with_another_hub_sends_it_every_op() {
    const OTHER: &str = "http://127.0.0.1:2";
    // Pushed to HUB and a cursor there, before the record existed.
    let (mut r, theirs) = synced(1, 0, "too_large");
    // The hub it has a cursor for: nothing to send again.
    assert_eq!(r.begin_push_to(HUB).unwrap(), None);
    assert_eq!(r.pending_count().unwrap(), 0);
    // Another hub: everything, the refused op too.
    assert_eq!(r.begin_push_to(OTHER).unwrap().as_deref(), Some(HUB));
    let all = r.export_ops().unwrap().len() as u64;
    assert_eq!(r.pending_count().unwrap(), all);
    assert_eq!(r.refused_summary().unwrap().count, 0);
    // Pushed there; the cursor for HUB stays.
    let sent: Vec<String> = r
        .unpushed_ops(usize::MAX)
        .unwrap()
        .iter()
        .map(|op| op.op_id.clone())
        .collect();
    r.mark_pushed(&sent).unwrap();
    assert_eq!(r.begin_push_to(OTHER).unwrap(), None);
    assert_eq!(r.pending_count().unwrap(), 0);
    // And back: HUB gets every op again, what was written meanwhile too.
    assert_eq!(r.begin_push_to(HUB).unwrap().as_deref(), Some(OTHER));
    assert_eq!(r.pending_count().unwrap(), all);
    assert_eq!(r.sync_cursor(HUB).unwrap(), theirs.len() as i64);
}

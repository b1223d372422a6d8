//! The request handlers of doc/rpc.md. Each runs on the store thread with
//! exclusive use of the replica, and each write is one transaction.

use std::collections::BTreeMap;

use heph_core::model::format_date;
use heph_core::text::{home, links, list_buffer, node_buffer, promote};
use heph_core::{Kind, NewNode, Node, Status};
use heph_store::{Edit, ListFilter, ListOrder, Replica, StatusFilter};
use serde_json::json;

use super::list_query;
use super::params::{Params, Reply};

/// What handlers work with.
pub struct Context {
    /// The open replica.
    pub replica: Replica,
    /// Data dir, for `hello`.
    pub data_dir: String,
    /// Log file, for `hello`.
    pub log_file: String,
}

/// Runs one request. Unknown methods are errors, not crashes.
pub fn dispatch(ctx: &mut Context, method: &str, p: &Params<'_>) -> Reply {
    match method {
        "hello" => Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "data_dir": ctx.data_dir,
            "replica": ctx.replica.path().map(|p| p.display().to_string()),
            "log_file": ctx.log_file,
            "pid": std::process::id(),
        })),
        "node_get" => node_get(ctx, p),
        "node_save" => node_save(ctx, p),
        "node_create" => node_create(ctx, p),
        "node_set" => node_set(ctx, p),
        "node_delete" => {
            let id = p.str("id")?;
            ctx.replica.delete(&id).map_err(err)?;
            Ok(json!({}))
        }
        "node_restore" => {
            let id = p.str("id")?;
            ctx.replica.restore(&id).map_err(err)?;
            Ok(json!({}))
        }
        "journal" => journal(ctx, p),
        "list_get" => list_get(ctx, p),
        "list_plan" => list_plan(ctx, p, false),
        "list_apply" => list_plan(ctx, p, true),
        "home" => home_page(ctx),
        "resolve_link" => resolve_link(ctx, p),
        "search" => search(ctx, p),
        "promote" => promote_lines(ctx, p),
        "versions" => {
            let ids = p.strings("ids")?;
            let versions = ctx.replica.versions(&ids).map_err(err)?;
            Ok(json!({ "versions": versions }))
        }
        other => Err(format!("unknown method '{other}'")),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn require(replica: &Replica, id: &str) -> Result<Node, String> {
    replica
        .get(id)
        .map_err(err)?
        .ok_or_else(|| format!("no node with id {id:?}"))
}

/// A node as a buffer shows it, with what a save must send back as its
/// base: the body heads the lines were rendered from.
fn node_reply(replica: &Replica, node: &Node) -> Reply {
    let heads: Vec<String> = replica
        .body_heads(&node.id)
        .map_err(err)?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(json!({
        "id": node.id,
        "kind": node.kind,
        "title": node.title,
        "lines": node_buffer::render(node),
        "heads": heads,
        "version": node.version,
        "deleted": node.deleted,
    }))
}

fn node_get(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let node = require(&ctx.replica, &p.str("id")?)?;
    node_reply(&ctx.replica, &node)
}

fn errors_reply(errors: &[heph_core::text::ParseError]) -> serde_json::Value {
    json!({ "ok": false, "errors": errors })
}

/// Saves a node buffer. `base` is what the buffer was rendered from
/// (`lines` and body `heads` of `node_get`): only the fields the user
/// changed relative to it are written, and the body is recorded as an edit
/// of those heads, so a change made elsewhere meanwhile is merged, not
/// overwritten. Without a base the current node is the base.
fn node_save(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let id = p.str("id")?;
    let lines = p.strings("lines")?;
    let node = require(&ctx.replica, &id)?;
    let cx = crate::local_day::context();
    let base_lines = p.opt_strings("base_lines")?;
    let base_heads = p.opt_strings("base_heads")?;
    let base = match &base_lines {
        Some(base) => node_buffer::read(base, &cx).map_err(|e| {
            format!(
                "node_save: the base lines do not parse ({}); reload the buffer with :e!",
                e.first().map(ToString::to_string).unwrap_or_default()
            )
        })?,
        None => node_buffer::read(&node_buffer::render(&node), &cx).map_err(|e| {
            format!(
                "the stored node does not render cleanly: {}",
                e.first().map(ToString::to_string).unwrap_or_default()
            )
        })?,
    };
    let edited = match node_buffer::read(&lines, &cx) {
        Ok(edited) => edited,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    let patch = match node_buffer::diff(&base, &edited, node.kind) {
        Ok(patch) => patch,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    let changed = match base_heads {
        Some(heads) => {
            let heads = heads
                .iter()
                .map(|h| h.parse::<heph_core::Hlc>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("node_save: param 'base_heads': {e}"))?;
            ctx.replica.update_from(&id, &patch, &heads).map_err(err)?
        }
        None => ctx.replica.update(&id, &patch).map_err(err)?,
    };
    let node = require(&ctx.replica, &id)?;
    let mut reply = node_reply(&ctx.replica, &node)?;
    reply["ok"] = json!(true);
    reply["changed"] = json!(changed);
    // The stored body differs from what was saved when a change made
    // elsewhere was merged in; say so, and whether it conflicted.
    if patch.body.as_ref().is_some_and(|body| body != &node.body) {
        reply["merged"] = json!(true);
        reply["conflict"] =
            json!(node.body.contains("\n<<<<<<< ") || node.body.starts_with("<<<<<<< "));
    }
    Ok(reply)
}

fn parse_due(value: Option<String>) -> Result<Option<time::Date>, String> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| heph_core::fields::parse_day(&v, crate::local_day::today()).map_err(|e| e.0))
        .transpose()
}

fn node_create(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let kind = match p.opt_str("kind")? {
        Some(k) => Some(k.parse::<Kind>().map_err(|e| e.0)?),
        None => None,
    };
    let status = match p.opt_str("status")? {
        Some(s) => Some(s.parse::<Status>().map_err(|e| e.0)?),
        None => None,
    };
    let node = ctx
        .replica
        .create(NewNode {
            kind,
            title: p.str("title")?,
            body: p.opt_str("body")?.unwrap_or_default(),
            status,
            due: parse_due(p.opt_str("due")?)?,
            project: p.opt_str("project")?,
            tags: p
                .opt_strings("tags")?
                .unwrap_or_default()
                .into_iter()
                .collect(),
        })
        .map_err(err)?;
    Ok(json!({ "id": node.id }))
}

fn node_set(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let id = p.str("id")?;
    require(&ctx.replica, &id)?;
    let fields = p.string_map("fields")?;
    let patch = heph_core::fields::patch_from_pairs(
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &crate::local_day::context(),
    )
    .map_err(|e| e.0)?;
    let changed = ctx.replica.update(&id, &patch).map_err(err)?;
    let node = require(&ctx.replica, &id)?;
    Ok(json!({ "changed": changed, "version": node.version }))
}

fn journal(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let date = match p.opt_str("date")? {
        Some(d) if !d.is_empty() => {
            heph_core::fields::parse_day(&d, crate::local_day::today()).map_err(|e| e.0)?
        }
        _ => crate::local_day::today(),
    };
    let node = ctx.replica.journal(date).map_err(err)?;
    Ok(json!({ "id": node.id, "date": format_date(date) }))
}

/// A list as a buffer shows it. The lines are also the snapshot a save is
/// planned against; `versions` tells which shown nodes changed since.
fn list_get(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let query = list_query::parse(&p.opt_str("query")?.unwrap_or_default());
    let nodes = ctx.replica.list(&query.filter).map_err(err)?;
    let versions: serde_json::Map<String, serde_json::Value> = nodes
        .iter()
        .map(|n| (n.id.clone(), json!(n.version)))
        .collect();
    Ok(json!({
        "title": query.title,
        "lines": list_buffer::render(&nodes),
        "versions": versions,
    }))
}

/// Plans (and with `apply`, applies) a list save: the difference between
/// the edited `lines` and the `base` lines the buffer was rendered with.
/// The plan carries a fingerprint of itself and of the versions of the
/// nodes it touches; `list_apply` re-plans and applies only when the
/// fingerprint is the one the user confirmed, else it answers `stale` with
/// the new plan.
fn list_plan(ctx: &mut Context, p: &Params<'_>, apply: bool) -> Reply {
    let query = list_query::parse(&p.opt_str("query")?.unwrap_or_default());
    let lines = p.strings("lines")?;
    let today = crate::local_day::today();
    let base = p.strings("base")?;
    let shown_versions = p.string_map("versions")?;
    let snapshot = list_buffer::snapshot(&base, today);
    let replica = &ctx.replica;
    let lookup = |id: &str| replica.get(id).ok().flatten();
    let changes = match list_buffer::plan(&lines, &snapshot, &lookup, today) {
        Ok(changes) => changes,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    let touched: Vec<String> = changes
        .iter()
        .filter_map(|c| c.id().map(str::to_owned))
        .collect();
    let now = ctx.replica.versions(&touched).map_err(err)?;
    let shown: BTreeMap<&str, &str> = shown_versions
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let summary: Vec<_> = changes
        .iter()
        .map(|c| {
            let changed_elsewhere = c.id().is_some_and(|id| {
                snapshot.contains_key(id)
                    && shown.get(id).copied() != now.get(id).map(String::as_str)
            });
            let mut text = c.summary();
            if changed_elsewhere {
                text.push_str(" (changed elsewhere since the list was shown)");
            }
            json!({ "action": c.action(), "id": c.id(), "summary": text })
        })
        .collect();
    let fingerprint = plan_fingerprint(&summary, &now);
    if !apply {
        return Ok(json!({ "ok": true, "changes": summary, "fingerprint": fingerprint }));
    }
    if p.opt_str("fingerprint")?.as_deref() != Some(fingerprint.as_str()) {
        return Ok(json!({
            "ok": false,
            "stale": true,
            "changes": summary,
            "fingerprint": fingerprint,
        }));
    }
    let edits: Vec<Edit> = changes
        .into_iter()
        .map(|change| match change {
            list_buffer::ListChange::Create(line) => Edit::Create(query.new_task(line)),
            list_buffer::ListChange::Update {
                id,
                patch,
                restore: true,
                ..
            } => Edit::Restore(id, patch),
            list_buffer::ListChange::Update { id, patch, .. } => Edit::Update(id, patch),
            list_buffer::ListChange::Delete { id, .. } => Edit::Delete(id),
        })
        .collect();
    ctx.replica.batch(edits).map_err(err)?;
    let mut reply = list_get(ctx, p)?;
    reply["ok"] = json!(true);
    reply["changes"] = json!(summary);
    Ok(reply)
}

/// Identifies a plan and the state of the nodes it touches.
fn plan_fingerprint(
    summary: &[serde_json::Value],
    versions: &std::collections::HashMap<String, String>,
) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for change in summary {
        change.to_string().hash(&mut hasher);
        if let Some(id) = change["id"].as_str() {
            versions.get(id).hash(&mut hasher);
        }
    }
    format!("{:016x}", hasher.finish())
}

fn home_page(ctx: &mut Context) -> Reply {
    let today = crate::local_day::today();
    let journal = ctx
        .replica
        .get(&heph_core::id::journal_id(today))
        .map_err(err)?
        .filter(|n| !n.deleted);
    let next = ctx
        .replica
        .list(&ListFilter {
            kinds: vec![Kind::Task],
            limit: Some(10),
            ..ListFilter::default()
        })
        .map_err(err)?;
    let notes = ctx
        .replica
        .list(&ListFilter {
            kinds: vec![Kind::Note],
            status: StatusFilter::Any,
            order: ListOrder::RecentlyUpdated,
            limit: Some(10),
            ..ListFilter::default()
        })
        .map_err(err)?;
    let open = ctx
        .replica
        .list(&ListFilter {
            kinds: vec![Kind::Task],
            ..ListFilter::default()
        })
        .map_err(err)?;
    let mut projects: BTreeMap<String, usize> = BTreeMap::new();
    for task in &open {
        if let Some(p) = &task.project {
            *projects.entry(p.clone()).or_default() += 1;
        }
    }
    let lines = home::render(&home::HomeData {
        today: Some(today),
        journal,
        next,
        notes,
        projects: projects.into_iter().collect(),
    });
    Ok(json!({ "lines": lines }))
}

fn resolve_link(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let mut target = p.str("target")?;
    if let Some(col) = p.opt_usize("col")? {
        // The whole line was sent: find the link under the cursor.
        target = links::link_at(&target, col).ok_or("no [[link]] on this line")?;
    }
    if let Some(node) = ctx.replica.get(&target).map_err(err)? {
        return Ok(json!({ "id": node.id }));
    }
    match ctx.replica.find_by_title(&target).map_err(err)? {
        Some(id) => Ok(json!({ "id": id })),
        None => Ok(json!({ "title": target })),
    }
}

fn search(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let query = p.str("query")?;
    let limit = p.opt_usize("limit")?.unwrap_or(50).min(500);
    let hits = ctx.replica.search(&query, limit).map_err(err)?;
    Ok(json!({ "hits": hits }))
}

fn promote_lines(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let lines = p.strings("lines")?;
    let promotions = promote::promotions(&lines);
    let edits = promotions
        .iter()
        .map(|pr| {
            Edit::Create(NewNode {
                kind: Some(Kind::Task),
                title: pr.title.clone(),
                status: pr.done.then_some(Status::Done),
                ..NewNode::default()
            })
        })
        .collect();
    let ids = ctx.replica.batch(edits).map_err(err)?;
    let mut out = lines.clone();
    let mut tasks = Vec::new();
    for (promotion, id) in promotions.iter().zip(ids) {
        out[promotion.index] = promote::link_line(&lines[promotion.index], &promotion.title);
        tasks.push(json!({ "id": id, "title": promotion.title }));
    }
    Ok(json!({ "tasks": tasks, "lines": out }))
}

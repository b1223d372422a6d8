//! The request handlers of doc/rpc.md. Each runs on the store thread with
//! exclusive use of the replica, and each write is one transaction.

use std::collections::BTreeMap;

use heph_core::model::{format_date, parse_date};
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

fn node_reply(node: &Node) -> serde_json::Value {
    json!({
        "id": node.id,
        "kind": node.kind,
        "title": node.title,
        "lines": node_buffer::render(node),
        "version": node.version,
        "deleted": node.deleted,
    })
}

fn node_get(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let node = require(&ctx.replica, &p.str("id")?)?;
    Ok(node_reply(&node))
}

fn errors_reply(errors: &[heph_core::text::ParseError]) -> serde_json::Value {
    json!({ "ok": false, "errors": errors })
}

fn node_save(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let id = p.str("id")?;
    let lines = p.strings("lines")?;
    let node = require(&ctx.replica, &id)?;
    let patch = match node_buffer::parse(&lines, &node) {
        Ok(patch) => patch,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    let changed = ctx.replica.update(&id, &patch).map_err(err)?;
    let node = require(&ctx.replica, &id)?;
    let mut reply = node_reply(&node);
    reply["ok"] = json!(true);
    reply["changed"] = json!(changed);
    Ok(reply)
}

fn parse_due(value: Option<String>) -> Result<Option<time::Date>, String> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| parse_date(&v).map_err(|e| e.0))
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
    let assignments: Vec<String> = p
        .string_map("fields")?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let patch = crate::cli::nodes::parse_assignments(&assignments).map_err(err)?;
    let changed = ctx.replica.update(&id, &patch).map_err(err)?;
    let node = require(&ctx.replica, &id)?;
    Ok(json!({ "changed": changed, "version": node.version }))
}

fn journal(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let date = match p.opt_str("date")? {
        Some(d) if !d.is_empty() && d != "today" => parse_date(&d).map_err(|e| e.0)?,
        _ => crate::cli::nodes::today(),
    };
    let node = ctx.replica.journal(date).map_err(err)?;
    Ok(json!({ "id": node.id, "date": format_date(date) }))
}

fn list_get(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let query = list_query::parse(&p.opt_str("query")?.unwrap_or_default());
    let nodes = ctx.replica.list(&query.filter).map_err(err)?;
    Ok(json!({ "title": query.title, "lines": list_buffer::render(&nodes) }))
}

fn list_plan(ctx: &mut Context, p: &Params<'_>, apply: bool) -> Reply {
    let query = list_query::parse(&p.opt_str("query")?.unwrap_or_default());
    let lines = p.strings("lines")?;
    let shown = ctx.replica.list(&query.filter).map_err(err)?;
    let changes = match list_buffer::plan(&lines, &shown) {
        Ok(changes) => changes,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    let summary: Vec<_> = changes
        .iter()
        .map(|c| json!({ "action": c.action(), "id": c.id(), "summary": c.summary() }))
        .collect();
    if !apply {
        return Ok(json!({ "ok": true, "changes": summary }));
    }
    let edits: Vec<Edit> = changes
        .into_iter()
        .map(|change| match change {
            list_buffer::ListChange::Create(line) => Edit::Create(query.new_task(line)),
            list_buffer::ListChange::Update { id, patch, .. } => Edit::Update(id, patch),
            list_buffer::ListChange::Delete { id, .. } => Edit::Delete(id),
        })
        .collect();
    ctx.replica.batch(edits).map_err(err)?;
    let nodes = ctx.replica.list(&query.filter).map_err(err)?;
    Ok(json!({ "ok": true, "changes": summary, "lines": list_buffer::render(&nodes) }))
}

fn home_page(ctx: &mut Context) -> Reply {
    let today = crate::cli::nodes::today();
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

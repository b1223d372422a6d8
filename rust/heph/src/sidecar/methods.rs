//! The request handlers of doc/rpc.md. Each runs on the store thread with
//! exclusive use of the replica, and each write is one transaction.

use std::collections::BTreeMap;

use heph_core::model::format_date;
use heph_core::text::{home, links, list_buffer, node_buffer, promote};
use heph_core::{Kind, NewNode, Node, Status};
use heph_store::{Columns, Edit, ListFilter, ListOrder, Replica, StatusFilter};
use serde_json::json;

use super::params::{Params, Reply};
use heph_store::list_query;

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
        "journal" => journal(ctx, p, false),
        "journal_get" => journal(ctx, p, true),
        "list_get" => list_get(ctx, p),
        "list_plan" => list_plan(ctx, p, false),
        "list_apply" => list_plan(ctx, p, true),
        "home" => home_page(ctx),
        "resolve_link" => resolve_link(ctx, p),
        "search" => search(ctx, p),
        "promote" => promote_lines(ctx, p, true),
        "promote_plan" => promote_lines(ctx, p, false),
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
    let base_lines = p
        .opt_strings("base_lines")?
        .unwrap_or_else(|| node_buffer::render(&node));
    let base_heads = p.opt_strings("base_heads")?;
    let base = node_buffer::read(&base_lines, &cx).map_err(|e| {
        format!(
            "node_save: the base lines do not parse ({}); reload the buffer with :e!",
            e.first().map(ToString::to_string).unwrap_or_default()
        )
    })?;
    let edited = match node_buffer::read(&lines, &cx) {
        Ok(edited) => edited,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    let patch = match node_buffer::diff(&base, &edited, node.kind) {
        Ok(patch) => patch,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    // Without base heads the body is an edit of the current heads.
    let heads = match base_heads {
        Some(heads) => heads
            .iter()
            .map(|h| h.parse::<heph_core::Hlc>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("node_save: param 'base_heads': {e}"))?,
        None => ctx.replica.body_heads(&id).map_err(err)?,
    };
    let saved = ctx.replica.update_from(&id, &patch, &heads).map_err(err)?;
    let node = require(&ctx.replica, &id)?;
    let mut reply = node_reply(&ctx.replica, &node)?;
    reply["ok"] = json!(true);
    reply["changed"] = json!(saved.changed);
    // A change made elsewhere was merged in: say so, and whether the merge
    // kept both sides of the same lines in a conflict block.
    if saved.merged {
        reply["merged"] = json!(true);
        reply["conflict"] = json!(saved.conflict);
    }
    Ok(reply)
}

fn parse_due(value: Option<String>) -> Result<Option<time::Date>, String> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| heph_core::fields::parse_day(&v, crate::local_day::today()).map_err(|e| e.0))
        .transpose()
}

/// Creates a node. With `line`, the title is read with the list-line
/// grammar (`Buy bread @tomorrow +home #shop`); explicit params win over
/// the line's tokens.
fn node_create(ctx: &mut Context, p: &Params<'_>) -> Reply {
    if let Some(text) = p.opt_str("line")? {
        return quick_add(ctx, p, &text);
    }
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

fn quick_add(ctx: &mut Context, p: &Params<'_>, text: &str) -> Reply {
    let kind = match p.opt_str("kind")? {
        Some(k) => k.parse::<Kind>().map_err(|e| e.0)?,
        None => Kind::Task,
    };
    let line = list_buffer::parse_line(1, text, crate::local_day::today())
        .map_err(|e| e.message)?
        .ok_or("the title is empty")?;
    if line.id.is_some() {
        return Err("a new node's title cannot start with '/'".into());
    }
    let status = match kind {
        Kind::Task => line.status,
        _ => None,
    };
    let node = ctx
        .replica
        .create(NewNode {
            kind: Some(kind),
            title: line.title,
            body: p.opt_str("body")?.unwrap_or_default(),
            status,
            due: line.due,
            project: line.project,
            tags: line.tags,
        })
        .map_err(err)?;
    Ok(json!({ "id": node.id, "title": node.title }))
}

fn node_set(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let id = p.str("id")?;
    let node = require(&ctx.replica, &id)?;
    let fields = p.string_map("fields")?;
    let patch = heph_core::fields::patch_from_pairs(
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &crate::local_day::context(),
    )
    .map_err(|e| e.0)?;
    let kind = patch.kind.unwrap_or(node.kind);
    if kind != Kind::Task && matches!(patch.status, Some(Some(_))) {
        return Err(format!(
            "\"{}\" is a {kind}: only tasks have a status",
            node.title
        ));
    }
    let changed = ctx.replica.update(&id, &patch).map_err(err)?;
    let node = require(&ctx.replica, &id)?;
    Ok(json!({ "changed": changed, "version": node.version }))
}

/// The journal of `date` (today when absent). `journal` creates it when
/// missing; `journal_get` (`peek`) does not: it answers `exists=false` with
/// the lines the new journal would show, so looking creates nothing.
fn journal(ctx: &mut Context, p: &Params<'_>, peek: bool) -> Reply {
    let date = match p.opt_str("date")? {
        Some(d) if !d.is_empty() => {
            heph_core::fields::parse_day(&d, crate::local_day::today()).map_err(|e| e.0)?
        }
        _ => crate::local_day::today(),
    };
    if peek {
        let id = heph_core::id::journal_id(date);
        if let Some(node) = ctx.replica.get(&id).map_err(err)? {
            return Ok(json!({ "id": node.id, "date": format_date(date), "exists": true }));
        }
        // Not created by looking: the buffer shows what the node would be
        // and the first save creates it.
        let blank = Node {
            id: id.clone(),
            kind: Kind::Journal,
            title: format_date(date),
            body: String::new(),
            status: None,
            due: None,
            project: None,
            tags: Default::default(),
            created_ms: 0,
            updated_ms: 0,
            deleted: false,
            version: String::new(),
        };
        return Ok(json!({
            "id": id,
            "date": format_date(date),
            "exists": false,
            "lines": node_buffer::render(&blank),
        }));
    }
    let node = ctx.replica.journal(date).map_err(err)?;
    Ok(json!({ "id": node.id, "date": format_date(date), "exists": true }))
}

/// A list as a buffer shows it. The lines are also the snapshot a save is
/// planned against; `versions` tells which shown nodes changed since. A
/// list cut at its limit says so with `total` (how many match).
fn list_get(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let query = list_query::parse(&p.opt_str("query")?.unwrap_or_default());
    list_reply(&ctx.replica, &query)
}

/// Renders a list from rows without bodies, one row at a time, straight
/// into the reply (no list of nodes held beside it).
fn list_reply(replica: &Replica, query: &list_query::ListQuery) -> Reply {
    let mut lines = Vec::new();
    let mut versions = serde_json::Map::new();
    replica
        .each_node(&query.filter, Columns::Row, |node| {
            lines.push(serde_json::Value::String(list_line(&node)));
            versions.insert(node.id, serde_json::Value::String(node.version));
            Ok::<(), heph_store::StoreError>(())
        })
        .map_err(err)?;
    let shown = lines.len();
    let mut reply = json!({ "title": query.title });
    reply["lines"] = serde_json::Value::Array(lines);
    reply["versions"] = serde_json::Value::Object(versions);
    if query.filter.limit.is_some_and(|limit| shown >= limit) {
        let total = replica.count(&query.filter).map_err(err)?;
        if total > shown {
            reply["total"] = json!(total);
        }
    }
    Ok(reply)
}

/// A list line: tasks with their checkbox, other nodes without one (they
/// have no status).
fn list_line(node: &Node) -> String {
    match node.kind {
        Kind::Task => list_buffer::render_line(node),
        _ => format!("/{} {}", node.id, list_buffer::item_text(node)),
    }
}

/// Lines whose node the snapshot does not hold (yanked from another list,
/// an undone save) join this list: in a `project:`/`tag:` list they get
/// its project or tag, unless the line itself changed them. A checkbox on
/// a node that is not a task is an error: only tasks have a status.
fn adopt_pasted(
    query: &list_query::ListQuery,
    lines: &[String],
    snapshot: &std::collections::HashMap<String, list_buffer::ListLine>,
    lookup: &dyn Fn(&str) -> Option<Node>,
    today: time::Date,
    changes: &mut Vec<list_buffer::ListChange>,
) -> Result<(), Vec<heph_core::text::ParseError>> {
    let mut errors = Vec::new();
    for (index, text) in lines.iter().enumerate() {
        let Ok(Some(line)) = list_buffer::parse_line(index + 1, text, today) else {
            continue;
        };
        let Some(id) = line.id.clone() else {
            continue;
        };
        let Some(node) = lookup(&id) else {
            continue;
        };
        let base_status = snapshot.get(&id).map_or(node.status, |b| b.status);
        if node.kind != Kind::Task && line.status.is_some() && line.status != base_status {
            errors.push(heph_core::text::ParseError {
                line: index + 1,
                message: format!(
                    "\"{}\" is a {}: only tasks have a status; remove the checkbox",
                    node.title, node.kind
                ),
            });
            continue;
        }
        if snapshot.contains_key(&id) {
            continue;
        }
        let mut extra = heph_core::NodePatch::default();
        if let Some(project) = &query.project {
            if line.project == node.project && node.project.as_ref() != Some(project) {
                extra.project = Some(Some(project.clone()));
            }
        }
        if let Some(tag) = &query.tag {
            if line.tags == node.tags && !node.tags.contains(tag) {
                let mut tags = node.tags.clone();
                tags.insert(tag.clone());
                extra.tags = Some(tags);
            }
        }
        if extra.is_empty() {
            continue;
        }
        let existing = changes.iter_mut().find_map(|c| match c {
            list_buffer::ListChange::Update { id: cid, patch, .. } if *cid == id => Some(patch),
            _ => None,
        });
        match existing {
            Some(patch) => {
                if patch.project.is_none() {
                    patch.project = extra.project;
                }
                if let Some(tags) = extra.tags {
                    let tags = match patch.tags.take() {
                        Some(mut mine) => {
                            mine.extend(tags);
                            mine
                        }
                        None => tags,
                    };
                    patch.tags = Some(tags);
                }
            }
            None => changes.push(list_buffer::ListChange::Update {
                id: id.clone(),
                summary: format!("move \"{}\" to {}", node.title, query.title),
                patch: extra,
                restore: node.deleted,
            }),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Plans (and with `apply`, applies) a list save: the difference between
/// the edited `lines` and the `base` lines the buffer was rendered with.
/// The plan carries a fingerprint of itself and of the versions of the
/// nodes it touches; `list_apply` re-plans and applies only when the
/// fingerprint is the one the user confirmed, else it answers `stale` with
/// the new plan. `list_apply` without a fingerprint applies a plan that
/// deletes nothing at once (nothing to confirm: one round trip for the
/// common save) and answers `confirm` with the plan otherwise.
fn list_plan(ctx: &mut Context, p: &Params<'_>, apply: bool) -> Reply {
    let query = list_query::parse(&p.opt_str("query")?.unwrap_or_default());
    let lines = p.strings("lines")?;
    let today = crate::local_day::today();
    let base = p.strings("base")?;
    let shown_versions = p.string_map("versions")?;
    let snapshot = list_buffer::snapshot(&base, today);
    let replica = &ctx.replica;
    let lookup = |id: &str| replica.get(id).ok().flatten();
    let mut changes = match list_buffer::plan(&lines, &snapshot, &lookup, today) {
        Ok(changes) => changes,
        Err(errors) => return Ok(errors_reply(&errors)),
    };
    if let Err(errors) = adopt_pasted(&query, &lines, &snapshot, &lookup, today, &mut changes) {
        return Ok(errors_reply(&errors));
    }
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
    let confirmed = match p.opt_str("fingerprint")? {
        Some(shown) => shown == fingerprint,
        None => {
            if changes
                .iter()
                .any(|c| matches!(c, list_buffer::ListChange::Delete { .. }))
            {
                return Ok(json!({
                    "ok": false,
                    "confirm": true,
                    "changes": summary,
                    "fingerprint": fingerprint,
                }));
            }
            true
        }
    };
    if !confirmed {
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
    let mut reply = list_reply(&ctx.replica, &query)?;
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
    // Rows without bodies, and the project counts from one indexed query.
    let next = ctx
        .replica
        .list_rows(&ListFilter {
            kinds: vec![Kind::Task],
            limit: Some(10),
            ..ListFilter::default()
        })
        .map_err(err)?;
    let notes = ctx
        .replica
        .list_rows(&ListFilter {
            kinds: vec![Kind::Note],
            status: StatusFilter::Any,
            order: ListOrder::RecentlyUpdated,
            limit: Some(10),
            ..ListFilter::default()
        })
        .map_err(err)?;
    let projects = ctx.replica.open_tasks_by_project().map_err(err)?;
    let lines = home::render(&home::HomeData {
        today: Some(today),
        journal,
        next,
        notes,
        projects,
    });
    Ok(json!({ "lines": lines }))
}

fn resolve_link(ctx: &mut Context, p: &Params<'_>) -> Reply {
    let mut target = p.str("target")?;
    if let Some(col) = p.opt_usize("col")? {
        // The whole line was sent: find the link under the cursor.
        target = links::link_at(&target, col).ok_or("no [[link]] on this line")?;
    }
    // `[[2026-11-22]]` is that day's journal, whether it exists yet or not.
    if let Ok(date) = heph_core::model::parse_date(&target) {
        return Ok(json!({
            "id": heph_core::id::journal_id(date),
            "journal": format_date(date),
        }));
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

/// Promotes body lines to tasks. `promote` creates them now;
/// `promote_plan` only answers the replacement lines and the tasks
/// (`{title, done}`) a save should create, so undo leaves nothing behind.
fn promote_lines(ctx: &mut Context, p: &Params<'_>, create: bool) -> Reply {
    let lines = p.strings("lines")?;
    let promotions = promote::promotions(&lines);
    if !create {
        let mut out = lines.clone();
        let tasks: Vec<_> = promotions
            .iter()
            .map(|pr| {
                out[pr.index] = promote::link_line(&lines[pr.index], &pr.title);
                json!({ "title": pr.title, "done": pr.done })
            })
            .collect();
        return Ok(json!({ "tasks": tasks, "lines": out }));
    }
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

//! The request handlers of doc/rpc.md. Each runs on the store thread with
//! exclusive use of the replica, and each write is one transaction.

use heph_core::model::format_date;
use heph_core::text::{home, links, list_buffer, node_buffer, promote};
use heph_core::{Kind, NewNode, Node, Status};
use heph_store::{Columns, Edit, ListFilter, ListOrder, Replica, StatusFilter};
use rmpv::Value;
use serde::Deserialize;

use super::params::{decode, lua_list, lua_map, map, opt_lua_list, put, reply, set, Reply};
use super::rpc_error::{ErrorCode, RpcError};
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
pub fn dispatch(ctx: &mut Context, method: &str, args: &[Value]) -> Reply {
    match method {
        "hello" => map! {
            "version" => env!("CARGO_PKG_VERSION"),
            "data_dir" => ctx.data_dir,
            "replica" => ctx.replica.path().map(|p| p.display().to_string()),
            "log_file" => ctx.log_file,
            "pid" => std::process::id(),
            "writes" => super::WRITES,
        },
        "node_get" => node_get(ctx, decode(method, args)?),
        "node_save" => node_save(ctx, decode(method, args)?),
        "node_create" => node_create(ctx, decode(method, args)?),
        "node_set" => node_set(ctx, decode(method, args)?),
        // Each writes only when it changes something: a second tombstone
        // would win over a restore made on another device meanwhile, and
        // a restore of a live node over a delete made there.
        "node_delete" => {
            let IdParams { id } = decode(method, args)?;
            let changed = !require(&ctx.replica, &id)?.deleted;
            if changed {
                ctx.replica.delete(&id)?;
            }
            map! { "changed" => changed }
        }
        "node_restore" => {
            let IdParams { id } = decode(method, args)?;
            let changed = require(&ctx.replica, &id)?.deleted;
            if changed {
                ctx.replica.restore(&id)?;
            }
            map! { "changed" => changed }
        }
        "journal" => journal(ctx, decode(method, args)?, false),
        "journal_get" => journal(ctx, decode(method, args)?, true),
        "list_get" => list_get(ctx, &decode::<ListParams>(method, args)?.query),
        "list_plan" => list_plan(ctx, decode(method, args)?, false),
        "list_apply" => list_plan(ctx, decode(method, args)?, true),
        "home" => home_page(ctx),
        "resolve_link" => resolve_link(ctx, decode(method, args)?),
        "search" => search(ctx, decode(method, args)?),
        "promote" => promote_lines(ctx, decode(method, args)?, true),
        "promote_plan" => promote_lines(ctx, decode(method, args)?, false),
        "versions" => {
            let VersionsParams { ids } = decode(method, args)?;
            let versions = ctx.replica.versions(&ids)?;
            map! { "versions" => versions }
        }
        other => Err(RpcError::bad_request(format!("unknown method '{other}'"))),
    }
}

#[derive(Deserialize)]
struct IdParams {
    id: String,
}

#[derive(Deserialize)]
struct VersionsParams {
    #[serde(deserialize_with = "lua_list")]
    ids: Vec<String>,
}

fn require(replica: &Replica, id: &str) -> Result<Node, RpcError> {
    replica
        .get(id)?
        .ok_or_else(|| RpcError::new(ErrorCode::NotFound, format!("no node with id {id:?}")))
}

/// A node as a buffer shows it, with what a save must send back as its
/// base: the body heads the lines were rendered from.
fn node_reply(replica: &Replica, node: &Node) -> Reply {
    let heads: Vec<String> = replica
        .body_heads(&node.id)?
        .iter()
        .map(ToString::to_string)
        .collect();
    map! {
        "id" => node.id,
        "kind" => node.kind,
        "title" => node.title,
        "lines" => node_buffer::render(node),
        "heads" => heads,
        // Shown without their CRs: a save sends this back (`base_crlf`).
        "crlf" => node_buffer::has_crlf_lines(&node.body),
        "version" => node.version,
        "deleted" => node.deleted,
    }
}

fn node_get(ctx: &mut Context, p: IdParams) -> Reply {
    let node = require(&ctx.replica, &p.id)?;
    node_reply(&ctx.replica, &node)
}

#[derive(Deserialize)]
struct NodeSaveParams {
    id: String,
    #[serde(deserialize_with = "lua_list")]
    lines: Vec<String>,
    #[serde(default, deserialize_with = "opt_lua_list")]
    base_lines: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_lua_list")]
    base_heads: Option<Vec<String>>,
    /// Whether the body the lines were rendered from had CRLF line ends
    /// (the reply's `crlf`); without it, the current body's are taken.
    #[serde(default)]
    base_crlf: Option<bool>,
    /// The line ends the buffer asks for now (Neovim's 'fileformat':
    /// `dos` is CRLF); without it, those of the base. A change converts
    /// the whole body, as `:set ff=unix | w` converts a file.
    #[serde(default)]
    crlf: Option<bool>,
    /// A day's journal shown before it existed: the save makes it.
    #[serde(default)]
    journal_date: Option<String>,
}

/// Saves a node buffer. `base` is what the buffer was rendered from
/// (`lines` and body `heads` of `node_get`): only the fields the user
/// changed relative to it are written, and the body is recorded as an edit
/// of those heads, so a change made elsewhere meanwhile is merged, not
/// overwritten. Without a base the current node is the base.
fn node_save(ctx: &mut Context, p: NodeSaveParams) -> Reply {
    let NodeSaveParams {
        id,
        lines,
        base_lines,
        base_heads,
        base_crlf,
        crlf,
        journal_date,
    } = p;
    let cx = crate::local_day::context();
    // A deleted day's page is shown empty (see `journal`): its save
    // starts the page again, replacing the deleted text, not merging it.
    let fresh_page = journal_date.is_some();
    let node = match (ctx.replica.get(&id)?, journal_date, &base_lines) {
        (Some(node), _, _) => node,
        // A day's journal shown before it existed: made once the lines
        // read well (a save refused for a bad header makes nothing).
        (None, Some(date), Some(base_lines)) => {
            let date = heph_core::fields::parse_day(&date, crate::local_day::today())?;
            if heph_core::id::journal_id(date) != id {
                return Err(RpcError::bad_request(format!(
                    "node_save: 'journal_date' {} is not the day of {id}",
                    format_date(date)
                )));
            }
            let base = node_buffer::read_shown(base_lines, &cx).map_err(RpcError::parse)?;
            let edited = node_buffer::read_edited(&lines, &cx, &base).map_err(RpcError::parse)?;
            node_buffer::diff(&base, &edited, Kind::Journal).map_err(RpcError::parse)?;
            ctx.replica.journal(date)?
        }
        _ => require(&ctx.replica, &id)?,
    };
    // The deleted page is what this save edits: what the empty page shows
    // replaces all of it, header and body.
    let restart = fresh_page && node.deleted;
    let base_lines = match base_lines {
        Some(lines) if !restart => lines,
        _ => node_buffer::render(&node),
    };
    let base_crlf = base_crlf.filter(|_| !restart);
    let base = node_buffer::read_shown(&base_lines, &cx).map_err(|e| {
        RpcError::new(
            ErrorCode::Stale,
            format!(
                "the lines this buffer was loaded from do not parse ({}); reload it with :e!",
                e.first().map(ToString::to_string).unwrap_or_default()
            ),
        )
    })?;
    let edited = node_buffer::read_edited(&lines, &cx, &base).map_err(RpcError::parse)?;
    // A field changed elsewhere since the buffer was shown comes into it
    // with this save, as a merged body does.
    let fields_from_elsewhere = base
        .fields
        .iter()
        .any(|(_, shown)| (shown.def().get)(&node) != *shown);
    let mut patch = node_buffer::diff(&base, &edited, node.kind).map_err(RpcError::parse)?;
    if restart {
        // A field the empty page has no line for is empty there.
        for (_, shown) in &base.fields {
            let def = shown.def();
            if !edited.fields.iter().any(|(_, v)| v.name() == def.name) {
                if let Ok(unset) = (def.parse)("", &cx) {
                    unset.apply(&mut patch);
                }
            }
        }
    }
    // The line ends of the version the buffer shows: a change of line
    // ends made elsewhere meanwhile is merged, not taken for an edit of
    // every line by this save.
    let base_crlf = base_crlf.unwrap_or_else(|| node_buffer::has_crlf_lines(&node.body));
    let want_crlf = crlf.unwrap_or(base_crlf);
    if want_crlf != base_crlf {
        // Converted: every line's end changes, whatever else did.
        let body = patch.body.take().unwrap_or_else(|| edited.body.clone());
        patch.body = Some(node_buffer::with_crlf(
            body.replace("\r\n", "\n"),
            want_crlf,
        ));
    } else if let Some(body) = patch.body.take() {
        patch.body = Some(node_buffer::with_crlf(body, want_crlf));
    }
    // Without base heads the body is an edit of the current heads.
    let heads = match base_heads {
        _ if restart => ctx.replica.body_heads(&id)?,
        Some(heads) => heads
            .iter()
            .map(|h| h.parse::<heph_core::Hlc>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RpcError::bad_request(format!("node_save: param 'base_heads': {e}")))?,
        None => ctx.replica.body_heads(&id)?,
    };
    let saved = ctx.replica.update_from(&id, &patch, &heads)?;
    let node = require(&ctx.replica, &id)?;
    let mut reply = node_reply(&ctx.replica, &node)?;
    set(&mut reply, "ok", &true);
    set(&mut reply, "changed", &saved.changed);
    if saved.restored {
        set(&mut reply, "restored", &true);
    }
    // A change made elsewhere was merged in: say so, and whether the merge
    // kept both sides of the same lines in a conflict block.
    if saved.merged || fields_from_elsewhere {
        set(&mut reply, "merged", &true);
        set(&mut reply, "conflict", &saved.conflict);
    }
    Ok(reply)
}

fn parse_due(value: Option<String>) -> Result<Option<time::Date>, RpcError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            // `@fri`, as a list line writes it, like `due: @fri`.
            let v = v.trim();
            heph_core::fields::parse_day(
                v.strip_prefix('@').unwrap_or(v),
                crate::local_day::today(),
            )
        })
        .transpose()
        .map_err(Into::into)
}

#[derive(Deserialize)]
struct NodeCreateParams {
    line: Option<String>,
    kind: Option<String>,
    title: Option<String>,
    body: Option<String>,
    status: Option<String>,
    due: Option<String>,
    project: Option<String>,
    #[serde(default, deserialize_with = "lua_list")]
    tags: Vec<String>,
    /// A task: when an open task has its title already, that one is the
    /// answer (`existing`) and nothing is made (a promoted line whose task
    /// came from another device meanwhile).
    #[serde(default)]
    unless_open: bool,
}

/// Creates a node. With `line`, the title is read with the list-line
/// grammar (`Buy bread @tomorrow +home #shop`); explicit params win over
/// the line's tokens.
fn node_create(ctx: &mut Context, p: NodeCreateParams) -> Reply {
    if let Some(text) = &p.line {
        return quick_add(ctx, &p, text);
    }
    let kind = p.kind.as_deref().map(str::parse::<Kind>).transpose()?;
    let status = p.status.as_deref().map(str::parse::<Status>).transpose()?;
    let title = p
        .title
        .clone()
        .ok_or_else(|| RpcError::bad_request("node_create: missing param 'title'"))?;
    if let Some(id) = open_task_titled(ctx, &p, kind.unwrap_or(Kind::Note), &title)? {
        return map! { "id" => id, "existing" => true };
    }
    let node = ctx.replica.create(NewNode {
        kind,
        title,
        body: p.body.unwrap_or_default(),
        status,
        due: parse_due(p.due)?,
        project: p.project,
        tags: p.tags.into_iter().collect(),
    })?;
    map! { "id" => node.id }
}

/// With `unless_open`, an open task titled `title` (for a new open task).
fn open_task_titled(
    ctx: &Context,
    p: &NodeCreateParams,
    kind: Kind,
    title: &str,
) -> Result<Option<String>, RpcError> {
    let open = !matches!(p.status.as_deref(), Some("done" | "cancelled"));
    if !(p.unless_open && kind == Kind::Task && open) {
        return Ok(None);
    }
    Ok(ctx.replica.find_open_task_by_title(title)?)
}

fn quick_add(ctx: &mut Context, p: &NodeCreateParams, text: &str) -> Reply {
    let kind = match &p.kind {
        Some(k) => k.parse::<Kind>()?,
        None => Kind::Task,
    };
    let new = new_node_from_line(text, kind)?;
    if let Some(id) = open_task_titled(ctx, p, kind, &new.title)? {
        return map! { "id" => id, "title" => new.title, "existing" => true };
    }
    let status = match kind {
        Kind::Task => match p.status.as_deref() {
            Some(status) => Some(status.parse::<Status>()?),
            None => new.status,
        },
        _ => None,
    };
    let node = ctx.replica.create(NewNode {
        body: p.body.clone().unwrap_or_default(),
        status,
        ..new
    })?;
    map! { "id" => node.id, "title" => node.title }
}

/// A new node of `kind` from a line in the list-line grammar
/// (`Buy bread @tomorrow +home #shop`), as `:Heph task` and a promoted
/// line read it.
fn new_node_from_line(text: &str, kind: Kind) -> Result<NewNode, RpcError> {
    let line = list_buffer::parse_line(1, text, crate::local_day::today())
        .map_err(|e| RpcError::from(e.message))?
        .ok_or("the title is empty")?;
    if line.id.is_some() {
        return Err("a new node's title cannot start with '/'".into());
    }
    Ok(line.new_node(kind))
}

#[derive(Deserialize)]
struct NodeSetParams {
    id: String,
    #[serde(default, deserialize_with = "lua_map")]
    fields: Vec<(String, String)>,
}

fn node_set(ctx: &mut Context, p: NodeSetParams) -> Reply {
    require(&ctx.replica, &p.id)?;
    let patch = heph_core::fields::patch_from_pairs(
        p.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &crate::local_day::context(),
    )?;
    // The store refuses a status on a node that is not a task.
    let changed = ctx.replica.update(&p.id, &patch)?;
    let node = require(&ctx.replica, &p.id)?;
    map! { "changed" => changed, "version" => node.version }
}

#[derive(Deserialize)]
struct JournalParams {
    date: Option<String>,
}

/// The journal of `date` (today when absent). `journal` creates it when
/// missing; `journal_get` (`peek`) does not: it answers `exists=false` with
/// the lines the new journal would show, so looking creates nothing.
fn journal(ctx: &mut Context, p: JournalParams, peek: bool) -> Reply {
    let date = match p.date {
        Some(d) if !d.is_empty() => heph_core::fields::parse_day(&d, crate::local_day::today())?,
        _ => crate::local_day::today(),
    };
    if peek {
        let id = heph_core::id::journal_id(date);
        // A day whose page was deleted starts again empty, as a day
        // without one; `deleted` says its old text is there for
        // `:Heph restore` to bring back.
        let node = ctx.replica.get(&id)?;
        let deleted = node.as_ref().is_some_and(|node| node.deleted);
        if let Some(node) = node.filter(|node| !node.deleted) {
            return map! { "id" => node.id, "date" => format_date(date), "exists" => true };
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
        return map! {
            "id" => id,
            "date" => format_date(date),
            "exists" => false,
            "deleted" => deleted,
            "lines" => node_buffer::render(&blank),
        };
    }
    let node = ctx.replica.journal(date)?;
    map! { "id" => node.id, "date" => format_date(date), "exists" => true }
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    query: String,
}

/// A list as a buffer shows it. The lines are also the snapshot a save is
/// planned against; `seq` (the newest op's sequence number, read before
/// the rows) tells which shown nodes changed since: those whose version is
/// greater. A list cut at its limit says so with `total` (how many match).
fn list_get(ctx: &mut Context, query: &str) -> Reply {
    let query = list_query::parse(query);
    list_reply(&ctx.replica, &query)
}

/// Renders a list from rows without bodies, one row at a time, straight
/// into the reply (no list of nodes held beside it).
fn list_reply(replica: &Replica, query: &list_query::ListQuery) -> Reply {
    // Read first: a node changing between the two reads is then seen as
    // changed since the list was shown (a question too many, never one
    // too few).
    let seq = replica.op_seq()?;
    let mut lines = Vec::new();
    replica.each_node(&query.filter, Columns::Line, |node| {
        lines.push(Value::from(list_line(&node)));
        Ok::<(), heph_store::StoreError>(())
    })?;
    let shown = lines.len();
    let mut reply = map! { "title" => query.title, "seq" => seq }?;
    put(&mut reply, "lines", Value::Array(lines));
    if query.filter.limit.is_some_and(|limit| shown >= limit) {
        let total = replica.count(&query.filter)?;
        if total > shown {
            set(&mut reply, "total", &total);
        }
    }
    Ok(reply)
}

/// A list line: tasks with their checkbox, other nodes without one (they
/// have no status).
fn list_line(node: &Node) -> String {
    if node.kind == Kind::Task {
        return list_buffer::render_line(node);
    }
    let mut line = String::with_capacity(list_buffer::line_capacity(node));
    line.push('/');
    line.push_str(&node.id);
    line.push(' ');
    list_buffer::write_item_text(node, &mut line);
    line
}

/// Lines whose node the snapshot does not hold (yanked from another list,
/// an undone save) join this list: in a `project:`/`tag:` list they get
/// its project or tag, unless the line itself changed them. A checkbox on
/// a node that is not a task is an error: only tasks have a status.
fn adopt_pasted(
    query: &list_query::ListQuery,
    lines: &[String],
    snapshot: &std::collections::HashMap<String, list_buffer::ListLine>,
    known: &std::collections::HashMap<String, list_buffer::ListLine>,
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
            // A new line of the notes list makes a note: no status.
            if query.new_kind != Kind::Task && line.status.is_some() {
                errors.push(heph_core::text::ParseError {
                    line: index + 1,
                    message: format!(
                        "a new line here makes a {}, which has no status; remove the checkbox",
                        query.new_kind
                    ),
                });
            }
            continue;
        };
        // A shown line whose checkbox is as shown needs no look at its
        // node: only pasted lines and changed checkboxes are checked here
        // (a 4,000-line list save must not load 4,000 nodes).
        if snapshot
            .get(&id)
            .is_some_and(|shown| shown.status == line.status)
        {
            continue;
        }
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
        // A field the line does not edit: as the node has it, or as heph
        // last showed it elsewhere (a line yanked before a change
        // elsewhere).
        let unedited = |name: &str| {
            line.shows_value_of(name, &node)
                || known
                    .get(&id)
                    .is_some_and(|k| k.value(name) == line.value(name))
        };
        let mut extra = heph_core::NodePatch::default();
        if let Some(project) = &query.project {
            if unedited("project") && node.project.as_ref() != Some(project) {
                extra.project = Some(Some(project.clone()));
            }
        }
        if let Some(tag) = &query.tag {
            if unedited("tags") && !node.tags.contains(tag) {
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
                    // The line's own tag edit, a change from what it
                    // showed, gains the list's tag; without one, the
                    // node's tags with it.
                    let tags = match (patch.tags.take(), &query.tag) {
                        (Some(mut mine), Some(tag)) => {
                            mine.insert(tag.clone());
                            mine
                        }
                        (Some(mine), None) => mine,
                        (None, _) => tags,
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
///
/// A save may send only what changed (`numbers` given): the buffer lines
/// that are not a `base` line unchanged, with their line numbers, and of
/// `base` the lines not kept as they were, plus those whose id a sent
/// line holds. A plan is made line by line and id by id, so this is the
/// plan of the whole buffer. When nothing else changed the replica since
/// the list was rendered, the reply renders only the sent lines again
/// (`shown`), the rest of the buffer being what the list renders;
/// otherwise it renders the whole list (`lines`).
#[derive(Deserialize)]
struct ListPlanParams {
    #[serde(default)]
    query: String,
    #[serde(deserialize_with = "lua_list")]
    lines: Vec<String>,
    /// The buffer line number of each of `lines`; without it `lines` is
    /// the whole buffer.
    #[serde(default, deserialize_with = "opt_lua_list")]
    numbers: Option<Vec<usize>>,
    #[serde(deserialize_with = "lua_list")]
    base: Vec<String>,
    /// What heph last showed of items of `lines` that `base` lacks (see
    /// `list_buffer::plan_with_known`).
    #[serde(default, deserialize_with = "lua_list")]
    known: Vec<String>,
    /// The `seq` of the reply that rendered `base`.
    seq: Option<i64>,
    fingerprint: Option<String>,
}

/// A line is gone from the buffer but its task no longer belongs in the
/// list (moved to another project by a save of another list, a tag
/// removed, done elsewhere): the line left with the task, and the save
/// deletes nothing of it. A list save deletes only what its list shows.
fn keep_tasks_that_left(
    replica: &Replica,
    query: &list_query::ListQuery,
    changes: &mut Vec<list_buffer::ListChange>,
) -> Result<(), RpcError> {
    let gone: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            list_buffer::ListChange::Delete { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    let still = replica.matching(&query.filter, &gone, Columns::Line)?;
    changes.retain(|c| match c {
        list_buffer::ListChange::Delete { id, .. } => still.contains_key(id),
        _ => true,
    });
    Ok(())
}

/// One planned change of a list save, as the confirmation shows it.
#[derive(serde::Serialize)]
struct PlannedChange<'a> {
    action: &'a str,
    id: Option<&'a str>,
    summary: String,
}

/// Parse errors of sent lines, numbered as the buffer numbers them.
fn renumber(
    mut errors: Vec<heph_core::text::ParseError>,
    numbers: Option<&[usize]>,
) -> Vec<heph_core::text::ParseError> {
    if let Some(numbers) = numbers {
        for e in &mut errors {
            if let Some(n) = e.line.checked_sub(1).and_then(|i| numbers.get(i)) {
                e.line = *n;
            }
        }
    }
    errors
}

fn list_plan(ctx: &mut Context, p: ListPlanParams, apply: bool) -> Reply {
    let query = list_query::parse(&p.query);
    let lines = &p.lines;
    let numbers = p.numbers.as_deref();
    if numbers.is_some_and(|n| n.len() != lines.len()) {
        return Err(RpcError::bad_request(
            "list_apply: 'numbers' must number every one of 'lines'",
        ));
    }
    let today = crate::local_day::today();
    let snapshot = list_buffer::snapshot(&p.base, today);
    let replica = &ctx.replica;
    let lookup = |id: &str| replica.get(id).ok().flatten();
    let known = list_buffer::snapshot(&p.known, today);
    let mut changes = list_buffer::plan_with_known(lines, &snapshot, &known, &lookup, today)
        .map_err(|e| RpcError::parse(renumber(e, numbers)))?;
    adopt_pasted(
        &query,
        lines,
        &snapshot,
        &known,
        &lookup,
        today,
        &mut changes,
    )
    .map_err(|e| RpcError::parse(renumber(e, numbers)))?;
    keep_tasks_that_left(&ctx.replica, &query, &mut changes)?;
    let touched: Vec<String> = changes
        .iter()
        .filter_map(|c| c.id().map(str::to_owned))
        .collect();
    let now = ctx.replica.versions(&touched)?;
    let summary: Vec<PlannedChange<'_>> = changes
        .iter()
        .map(|c| {
            // Without a seq every shown node counts as changed (ask rather
            // than not).
            let changed_elsewhere = c.id().is_some_and(|id| {
                snapshot.contains_key(id) && {
                    let version = now.get(id).and_then(|v| v.parse::<i64>().ok());
                    match (p.seq, version) {
                        (Some(shown), Some(version)) => version > shown,
                        _ => true,
                    }
                }
            });
            let mut text = c.summary();
            if changed_elsewhere {
                text.push_str(" (changed elsewhere since the list was shown)");
            }
            PlannedChange {
                action: c.action(),
                id: c.id(),
                summary: text,
            }
        })
        .collect();
    let fingerprint = plan_fingerprint(&summary, &now);
    if !apply {
        return map! { "ok" => true, "changes" => summary, "fingerprint" => fingerprint };
    }
    let confirmed = match &p.fingerprint {
        Some(shown) => *shown == fingerprint,
        None => {
            if changes
                .iter()
                .any(|c| matches!(c, list_buffer::ListChange::Delete { .. }))
            {
                return map! {
                    "ok" => false,
                    "confirm" => true,
                    "changes" => summary,
                    "fingerprint" => fingerprint,
                };
            }
            true
        }
    };
    if !confirmed {
        return map! {
            "ok" => false,
            "stale" => true,
            "changes" => summary,
            "fingerprint" => fingerprint,
        };
    }
    let summary = reply(&summary)?;
    // Which sent line each creation comes from (its 1-based index).
    let created_from: Vec<Option<usize>> = changes
        .iter()
        .map(|c| match c {
            list_buffer::ListChange::Create(line) => Some(line.line),
            _ => None,
        })
        .collect();
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
    let untouched_since_shown = p
        .seq
        .is_some_and(|seq| ctx.replica.op_seq().ok() == Some(seq));
    let ids = ctx.replica.batch(edits)?;
    // A list changed elsewhere meanwhile may show more (or fewer) lines
    // now, and a cut list (`next`) may take in tasks from below its cut:
    // those are rendered whole again, as is a save of the whole buffer.
    if numbers.is_none() || query.filter.limit.is_some() || !untouched_since_shown {
        let mut out = list_reply(&ctx.replica, &query)?;
        set(&mut out, "ok", &true);
        set(&mut out, "changes", &summary);
        return Ok(out);
    }
    let mut line_ids: Vec<Option<String>> = lines
        .iter()
        .enumerate()
        .map(|(i, text)| {
            list_buffer::parse_line(i + 1, text, today)
                .ok()
                .flatten()
                .and_then(|line| line.id)
        })
        .collect();
    for (from, id) in created_from.into_iter().zip(ids) {
        if let Some(slot) = from.and_then(|line| line_ids.get_mut(line - 1)) {
            *slot = Some(id);
        }
    }
    let seq = ctx.replica.op_seq()?;
    let wanted: Vec<String> = line_ids.iter().flatten().cloned().collect();
    let rows = ctx
        .replica
        .matching(&query.filter, &wanted, Columns::Line)?;
    // Each sent line as the list shows it now, nil where it left the list.
    let shown: Vec<Value> = line_ids
        .iter()
        .map(|id| {
            id.as_ref()
                .and_then(|id| rows.get(id))
                .map_or(Value::Nil, |node| Value::from(list_line(node)))
        })
        .collect();
    let mut out = map! { "ok" => true, "seq" => seq }?;
    put(&mut out, "changes", summary);
    put(&mut out, "shown", Value::Array(shown));
    Ok(out)
}

/// Identifies a plan and the state of the nodes it touches.
fn plan_fingerprint(
    summary: &[PlannedChange<'_>],
    versions: &std::collections::HashMap<String, String>,
) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for change in summary {
        (change.action, change.id, &change.summary).hash(&mut hasher);
        if let Some(id) = change.id {
            versions.get(id).hash(&mut hasher);
        }
    }
    format!("{:016x}", hasher.finish())
}

fn home_page(ctx: &mut Context) -> Reply {
    let today = crate::local_day::today();
    let journal = ctx
        .replica
        .get(&heph_core::id::journal_id(today))?
        .filter(|n| !n.deleted);
    // Rows without bodies, and the project counts from one indexed query.
    let next = ctx.replica.list_rows(&ListFilter {
        kinds: vec![Kind::Task],
        limit: Some(10),
        ..ListFilter::default()
    })?;
    let notes = ctx.replica.list_rows(&ListFilter {
        kinds: vec![Kind::Note],
        status: StatusFilter::Any,
        order: ListOrder::RecentlyUpdated,
        limit: Some(10),
        ..ListFilter::default()
    })?;
    let projects = ctx.replica.open_tasks_by_project()?;
    let lines = home::render(&home::HomeData {
        today: Some(today),
        journal,
        next,
        notes,
        projects,
    });
    map! { "lines" => lines }
}

#[derive(Deserialize)]
struct ResolveLinkParams {
    target: String,
    col: Option<usize>,
}

fn resolve_link(ctx: &mut Context, p: ResolveLinkParams) -> Reply {
    let mut target = p.target;
    let typed = p.col.is_none();
    if let Some(col) = p.col {
        // The whole line was sent: find the link under the cursor.
        target = links::link_at(&target, col).ok_or("no [[link]] on this line")?;
    } else if let Some(inner) = target
        .trim()
        .strip_prefix("[[")
        .and_then(|t| t.strip_suffix("]]"))
    {
        // `:Heph open [[Title]]`, as a link is written.
        target = inner.trim().to_owned();
    }
    // `[[2026-11-22]]` is that day's journal, whether it exists yet or not,
    // unless a task or note has that title (a meeting's notes).
    if let Ok(date) = heph_core::model::parse_date(&target) {
        if let Some(id) = ctx.replica.find_by_title_except_journals(&target)? {
            return map! { "id" => id };
        }
        return map! {
            "id" => heph_core::id::journal_id(date),
            "journal" => format_date(date),
        };
    }
    if let Some(node) = ctx.replica.get(&target)? {
        return map! { "id" => node.id };
    }
    if let Some(id) = ctx.replica.find_by_title(&target)? {
        return map! { "id" => id };
    }
    // A unique id prefix, as the CLI takes one: typed (`:Heph open`), or
    // in a link when it reads as the start of an id, not a word a new
    // note could be titled (`[[cafe]]`).
    let id_like = target.len() >= 8
        && target.bytes().any(|b| b.is_ascii_digit())
        && target.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if (typed || id_like) && target.len() >= 4 && !target.contains(char::is_whitespace) {
        match ctx.replica.ids_with_prefix(&target, 2)?.as_slice() {
            [one] => return map! { "id" => one.clone() },
            [] => {}
            _ => {
                return Err(RpcError::from(format!(
                    "several nodes have ids starting with {target:?}; give more of it"
                )))
            }
        }
    }
    map! { "title" => target }
}

#[derive(Deserialize)]
struct SearchParams {
    query: String,
    limit: Option<usize>,
}

fn search(ctx: &mut Context, p: SearchParams) -> Reply {
    let limit = p.limit.unwrap_or(50).min(500);
    let hits = ctx.replica.search(&p.query, limit)?;
    map! { "hits" => hits }
}

/// Promotes body lines to tasks. `promote` creates them now;
/// `promote_plan` only answers the replacement lines and the tasks
/// (`{title, done}`) a save should create, so undo leaves nothing behind.
#[derive(Deserialize)]
struct LinesParams {
    /// The note or journal the lines are from.
    id: Option<String>,
    #[serde(deserialize_with = "lua_list")]
    lines: Vec<String>,
}

/// A task a promotion creates (or would create).
#[derive(serde::Serialize)]
struct Promoted<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    title: &'a str,
    /// The line's text when it holds list tokens (`@tomorrow +home #x`):
    /// `node_create` reads them from it, as `:Heph task` does.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<bool>,
    /// An open task of that title already exists: the line links to it,
    /// and nothing is created (`promote_plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    existing: Option<String>,
}

/// The task a promoted line makes: its text read with the list-line
/// grammar, as `:Heph task` reads it (`Pay @tomorrow +home #x` is the task
/// "Pay", due tomorrow, in project home, tagged x). Text that does not read
/// as a list line (a bad date, a leading `/`) is the title as written.
fn promoted_task(text: &str, done: bool) -> (NewNode, bool) {
    let status = done.then_some(Status::Done);
    match new_node_from_line(text, Kind::Task) {
        Ok(node) => {
            let tokens = node.title != text;
            (NewNode { status, ..node }, tokens)
        }
        Err(_) => (
            NewNode {
                kind: Some(Kind::Task),
                title: text.to_owned(),
                status,
                ..NewNode::default()
            },
            false,
        ),
    }
}

fn promote_lines(ctx: &mut Context, p: LinesParams, create: bool) -> Reply {
    if create {
        // Tasks are made now: from the lines of a note or journal that is.
        let id =
            p.id.as_deref()
                .ok_or_else(|| RpcError::bad_request("promote: missing param 'id'"))?;
        let node = require(&ctx.replica, id)?;
        if node.deleted || node.kind == Kind::Task {
            return Err(RpcError::from(format!(
                "promote: {id} is {}; promote works on the lines of a note or journal",
                if node.deleted { "deleted" } else { "a task" }
            )));
        }
    }
    let lines = p.lines;
    let promotions = promote::promotions(&lines);
    let news: Vec<(NewNode, bool)> = promotions
        .iter()
        .map(|pr| promoted_task(&pr.title, pr.done))
        .collect();
    let mut out = lines.clone();
    for (pr, (node, _)) in promotions.iter().zip(&news) {
        out[pr.index] = promote::link_line(&lines[pr.index], &node.title);
    }
    if !create {
        let tasks: Vec<_> = promotions
            .iter()
            .zip(&news)
            .map(|(pr, (node, tokens))| {
                // An open line of a task that exists links to it; a done
                // line is a new, done task either way.
                let existing = if pr.done {
                    None
                } else {
                    ctx.replica.find_open_task_by_title(&node.title)?
                };
                Ok(Promoted {
                    id: None,
                    title: &node.title,
                    line: tokens.then_some(pr.title.as_str()),
                    done: Some(pr.done),
                    existing,
                })
            })
            .collect::<Result<Vec<_>, RpcError>>()?;
        return map! { "tasks" => tasks, "lines" => out };
    }
    let edits = news
        .iter()
        .map(|(node, _)| Edit::Create(node.clone()))
        .collect();
    let ids = ctx.replica.batch(edits)?;
    let tasks: Vec<_> = news
        .iter()
        .zip(ids)
        .map(|((node, _), id)| Promoted {
            id: Some(id),
            title: &node.title,
            line: None,
            done: None,
            existing: None,
        })
        .collect();
    map! { "tasks" => tasks, "lines" => out }
}

---@mod heph.commands :Heph {subcommand}

local rpc = require("heph.rpc")
local buffers = require("heph.buffers")

local M = {}
local H = {}

---@param err any
function H.report(err)
  vim.notify(tostring(err), vim.log.levels.ERROR)
end

---Runs `fn(...)`, reporting a failure without a Lua traceback (callbacks
---of pickers and prompts run outside :Heph's own pcall).
---@param fn function
function H.guard(fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then
    H.report(err)
  end
end

---Asks for text through vim.ui.input when `given` is empty.
---@param given string
---@param prompt string
---@param on_text fun(text: string)
function H.text_or_input(given, prompt, on_text)
  if given ~= "" then
    return on_text(given)
  end
  vim.ui.input({ prompt = prompt }, function(text)
    if text and text:match("%S") then
      on_text(vim.trim(text))
    end
  end)
end

---A task's text is read like a list line (`Buy bread @tomorrow +home
---#shop`); a note's is its title.
---@param kind "task"|"note"
---@param title string
---@param mods? table the command's modifiers (`:tab`, `:vertical`…)
function H.create(kind, title, mods)
  -- Before anything is made: a node made and then not shown would be made
  -- again by the same command tried once more.
  local why = buffers.cannot_leave(mods)
  if why then
    return vim.notify("heph: nothing created: " .. why, vim.log.levels.ERROR)
  end
  H.text_or_input(title, kind == "task" and "New task: " or "New note: ", function(text)
    local params = kind == "task" and { kind = kind, line = text } or { kind = kind, title = text }
    local ok, reply = pcall(rpc.request, "node_create", params)
    if not ok then
      return H.report(reply)
    end
    local opened, err = pcall(buffers.open_node, reply.id, mods)
    if not opened then
      H.report(("heph: %s created (:Heph open %s), but not opened: %s"):format(kind, reply.id, tostring(err):gsub("^heph: ", "")))
    end
  end)
end

---@param id string
---@return boolean
function H.complete_task(id)
  local ok, err = pcall(rpc.request, "node_set", { id = id, fields = { status = "done" } })
  if not ok then
    H.report(err)
  end
  return ok
end

---:Heph done — the task of this buffer, or of the list line under the cursor.
function H.done()
  local buf = vim.api.nvim_get_current_buf()
  local state = buffers.state(buf)
  local id = state and state.kind == "node" and state.id or buffers.line_id(vim.api.nvim_get_current_line())
  if not id then
    return vim.notify("heph: no task here (use it in a task buffer or on a list line)", vim.log.levels.WARN)
  end
  if state and state.kind == "node" and state.node_kind ~= "task" then
    return vim.notify(("heph: this is a %s; only tasks can be done"):format(state.node_kind or "node"), vim.log.levels.WARN)
  end
  if state and state.kind == "node" and vim.bo[buf].modified then
    return vim.notify("heph: save or undo your edits first", vim.log.levels.WARN)
  end
  if H.complete_task(id) then
    vim.notify("heph: done")
    if state and state.kind == "list" and vim.bo[buf].modified then
      return
    end
    buffers.reload(buf)
  end
end

---The last line of a node buffer's front matter (0 when there is none).
---@param buf integer
---@return integer
function H.header_end(buf)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  if lines[1] ~= "---" then
    return 0
  end
  for i = 2, #lines do
    if lines[i] == "---" then
      return i
    end
  end
  return #lines
end

---:Heph promote — body lines of a note or journal become [[links]]; their
---tasks are created by the next save (so `u` and :q! leave none behind).
---@param line1 integer
---@param line2 integer
function H.promote(line1, line2)
  local buf = vim.api.nvim_get_current_buf()
  local state = buffers.state(buf)
  if not state or state.kind ~= "node" or (state.node_kind ~= "note" and state.node_kind ~= "journal") then
    return vim.notify("heph: promote works in note and journal buffers", vim.log.levels.WARN)
  end
  line1 = math.max(line1, H.header_end(buf) + 1)
  if line1 > line2 then
    return vim.notify("heph: nothing to promote: the header is not promoted", vim.log.levels.WARN)
  end
  local lines = vim.api.nvim_buf_get_lines(buf, line1 - 1, line2, false)
  local ok, reply = pcall(rpc.request, "promote_plan", { id = state.id, lines = lines })
  if not ok then
    return H.report(reply)
  end
  if #reply.tasks == 0 then
    return vim.notify("heph: nothing to promote on these lines", vim.log.levels.WARN)
  end
  -- Links to the same titles the buffer held before: a save makes a task
  -- only for a link this promote added (an undone promote beside an older
  -- [[Title]] makes none).
  local before = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
  vim.api.nvim_buf_set_lines(buf, line1 - 1, line2, false, reply.lines)
  -- A line of an open task that exists links to it: nothing to create.
  local new = vim.tbl_filter(function(task)
    return task.existing == nil or task.existing == vim.NIL
  end, reply.tasks)
  for _, task in ipairs(new) do
    task.links_before = buffers.count_links(before, task.title)
  end
  buffers.add_promotions(buf, new)
  local linked = #reply.tasks - #new
  local parts = { ("heph: %d line%s promoted"):format(#reply.tasks, #reply.tasks == 1 and "" or "s") }
  if #new > 0 then
    table.insert(parts, (":w creates the task%s"):format(#new == 1 and "" or "s"))
  end
  if linked > 0 then
    table.insert(parts, ("%d linked to the open task%s of that title"):format(linked, linked == 1 and "" or "s"))
  end
  vim.notify(table.concat(parts, "; "))
end

---:Heph delete — the node of this buffer, after a confirmation.
function H.delete()
  local buf = vim.api.nvim_get_current_buf()
  local state = buffers.state(buf)
  if not state or state.kind ~= "node" then
    return vim.notify("heph: :Heph delete works in a node buffer; in a list, delete the line and :w", vim.log.levels.WARN)
  end
  if state.missing then
    return vim.notify("heph: this journal was never saved; there is nothing to delete", vim.log.levels.WARN)
  end
  -- The confirmation says so when it also drops unsaved edits (`:Heph
  -- restore` brings the node back, not them).
  local edits = vim.bo[buf].modified and ", and drop your unsaved edits" or ""
  if not buffers.confirm({ { action = "delete", summary = ("delete %s%s"):format(buffers.quote(state.title or state.id), edits) } }) then
    return vim.notify("heph: nothing deleted")
  end
  local ok, reply = pcall(rpc.request, "node_delete", { id = state.id })
  if not ok then
    return H.report(reply)
  end
  -- Deleted meanwhile (`changed` false): the reload says so.
  vim.bo[buf].modified = false
  buffers.reload(buf)
end

---The day `n` days after `date`.
---@param date string YYYY-MM-DD
---@param n integer
---@return string
function H.add_days(date, n)
  -- Calendar arithmetic on day numbers, not os.time: no time zone's
  -- skipped day (Pacific/Apia, 2011-12-30) or year before 1000 trips it.
  local y, m, d = date:match("^(%d+)-(%d+)-(%d+)$")
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  -- Days since 0000-03-01 of the proleptic Gregorian calendar.
  local function days(year, month, day)
    if month <= 2 then
      year = year - 1
    end
    local era = math.floor(year / 400)
    local yoe = year - era * 400
    local doy = math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1
    return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  end
  local z = days(y, m, d) + n
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return ("%04d-%02d-%02d"):format(year, month, day)
end

---:Heph journal [DATE|next|prev] — a day given as the header's `due:`
---takes it (2026-11-22, yesterday, fri, -3d…); next/prev move from the
---journal shown. Checked before a buffer is made, so a bad date leaves
---none behind.
---@param args string
---@param mods? table
function H.journal(args, mods)
  local state = buffers.state(0)
  local shown = state and state.journal_date or os.date("%Y-%m-%d")
  local date = args
  if args == "next" or args == "prev" then
    date = H.add_days(shown, args == "next" and 1 or -1)
  end
  local ok, reply = pcall(rpc.request, "journal_get", { date = date ~= "" and date or nil })
  if not ok then
    if rpc.is_error(reply, "invalid") then
      return vim.notify(("heph: no such day %q: %s"):format(date, tostring(reply):gsub("^heph: ", "")), vim.log.levels.ERROR)
    end
    return H.report(reply)
  end
  buffers.open_journal(reply.date, mods)
end

---:Heph open {id|title} — checked before a buffer is made.
---@param args string
---@param mods? table
function H.open(args, mods)
  if args == "" then
    return vim.notify("heph: :Heph open <id or title>", vim.log.levels.ERROR)
  end
  local ok, reply = pcall(rpc.request, "resolve_link", { target = args })
  if not ok then
    return H.report(reply)
  end
  if reply.journal and reply.journal ~= vim.NIL then
    return buffers.open_journal(reply.journal, mods)
  end
  if not reply.id or reply.id == vim.NIL then
    return vim.notify(("heph: no node with id or title %s"):format(buffers.quote(args)), vim.log.levels.ERROR)
  end
  buffers.open_node(reply.id, mods)
end

---:Heph search — results through vim.ui.select, so any picker works.
---@param terms string
---@param mods? table
function H.search(terms, mods)
  H.text_or_input(terms, "Search heph: ", function(text)
    local ok, reply = pcall(rpc.request, "search", { query = text, limit = 50 })
    if not ok then
      return H.report(reply)
    end
    if #reply.hits == 0 then
      return vim.notify(("heph: nothing matches %s"):format(buffers.quote(text)))
    end
    vim.ui.select(reply.hits, {
      prompt = "heph: " .. text,
      kind = "heph_search",
      format_item = function(hit)
        return ("%s  [%s]  %s"):format(hit.title, hit.kind, (hit.snippet or ""):gsub("\n", " "))
      end,
    }, function(hit)
      if hit then
        H.guard(buffers.open_node, hit.id, mods)
      end
    end)
  end)
end

---@type table<string, fun(args: string, cmd: table)>
M.subcommands = {
  home = function(_, cmd)
    buffers.open("heph://home", cmd.smods)
  end,
  today = function(_, cmd)
    H.journal("", cmd.smods)
  end,
  journal = function(args, cmd)
    H.journal(args, cmd.smods)
  end,
  next = function(_, cmd)
    buffers.open_list("next", cmd.smods)
  end,
  list = function(args, cmd)
    buffers.open_list(args ~= "" and args or "tasks", cmd.smods)
  end,
  notes = function(_, cmd)
    buffers.open_list("notes", cmd.smods)
  end,
  delete = function()
    H.delete()
  end,
  search = function(args, cmd)
    H.search(args, cmd.smods)
  end,
  new = function(args, cmd)
    H.create("note", args, cmd.smods)
  end,
  task = function(args, cmd)
    H.create("task", args, cmd.smods)
  end,
  done = function()
    H.done()
  end,
  promote = function(_, cmd)
    H.promote(cmd.line1, cmd.line2)
  end,
  open = function(args, cmd)
    H.open(args, cmd.smods)
  end,
  restore = function()
    local state = buffers.state(0)
    if not state or state.kind ~= "node" then
      return vim.notify("heph: restore works in a node buffer", vim.log.levels.WARN)
    end
    if state.missing and not state.deleted_page then
      return vim.notify("heph: this journal was never saved; there is nothing to restore", vim.log.levels.WARN)
    end
    if state.deleted_page and vim.bo.modified then
      -- The restored page would replace what was typed here.
      return vim.notify(
        "heph: this day's deleted page comes back in place of what you typed here: :w keeps your text instead, :e! drops it first",
        vim.log.levels.WARN
      )
    end
    local ok, reply = pcall(rpc.request, "node_restore", { id = state.id })
    if not ok then
      return H.report(reply)
    end
    if reply.changed == false then
      return vim.notify("heph: this node is not deleted; nothing to restore")
    end
    buffers.reload(vim.api.nvim_get_current_buf())
    vim.notify(("heph: %s restored"):format(buffers.quote(state.title or state.id)))
  end,
  sync = function(args)
    require("heph.sync").command(args ~= "" and args or nil)
  end,
  status = function()
    require("heph.sync").command("status")
  end,
  join = function(args)
    local words = vim.split(args, "%s+", { trimempty = true })
    require("heph.login").join(words[1], words[2])
  end,
}

---Subcommands that take no argument, with a hint for what was meant: an
---argument silently ignored (`:Heph today 2026-01-01` opened today).
---@type table<string, string>
H.no_args = {
  home = "",
  today = " (:Heph journal DATE opens another day)",
  next = " (:Heph list QUERY lists what a query matches)",
  notes = "",
  done = "",
  delete = "",
  restore = "",
  status = "",
}

---Runs `:Heph {sub} [args]`.
---@param cmd table the user-command table
function M.run(cmd)
  local sub = cmd.fargs[1] or "home"
  local fn = M.subcommands[sub]
  if not fn then
    return vim.notify(("heph: unknown subcommand %q (try :Heph <Tab>)"):format(sub), vim.log.levels.ERROR)
  end
  local args = vim.trim(cmd.args:sub(#sub + 1))
  if args ~= "" and H.no_args[sub] then
    return vim.notify(("heph: :Heph %s takes no argument%s"):format(sub, H.no_args[sub]), vim.log.levels.ERROR)
  end
  local ok, err = pcall(fn, args, cmd)
  if not ok then
    H.report(err)
  end
end

---Completion for :Heph.
---@param arglead string
---@param line string
---@return string[]
function M.complete(arglead, line)
  local words = vim.split(line, "%s+", { trimempty = true })
  local typing_sub = #words <= 1 or (#words == 2 and not line:match("%s$"))
  if typing_sub then
    local subs = vim.tbl_keys(M.subcommands)
    table.sort(subs)
    return vim.tbl_filter(function(s)
      return vim.startswith(s, arglead)
    end, subs)
  end
  if words[2] == "list" then
    return vim.tbl_filter(function(s)
      return vim.startswith(s, arglead)
    end, { "next", "tasks", "all", "done", "notes", "project:", "tag:" })
  end
  if words[2] == "journal" then
    return vim.tbl_filter(function(s)
      return vim.startswith(s, arglead)
    end, { "next", "prev", "today", "yesterday", "tomorrow" })
  end
  if words[2] == "sync" then
    return { "status" }
  end
  return {}
end

return M

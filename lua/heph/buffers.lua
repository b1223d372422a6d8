---@mod heph.buffers heph:// buffers
---
--- heph://node/<id>     one node: front matter + markdown body
--- heph://journal/<date> a day's journal (a node buffer)
--- heph://list/<query>  tasks, one per line, ids concealed (oil.nvim style)
--- heph://home          generated index, read-only
---
--- Saving is synchronous from BufWriteCmd, so :wq never quits before the
--- write landed. On a parse error nothing is written, the text stays as the
--- user typed it, and the errors become diagnostics.

local rpc = require("heph.rpc")

local M = {}
local H = {}

M.ns = vim.api.nvim_create_namespace("heph")

---What each buffer was rendered from: a save is planned against it, never
---against a fresh read (oil.nvim's rule), so an edit made elsewhere while
---the buffer was open is merged, not overwritten, and a list save touches
---only what the list showed. Kept in Lua memory, keyed by buffer.
---@class heph.Base
---@field lines string[] the lines as rendered
---@field heads? string[] node buffers: body heads the lines were rendered from
---@field versions? table<string, string> list buffers: version of each shown node

---@type table<integer, heph.Base>
H.bases = {}

---@param buf integer
---@param base heph.Base
function H.set_base(buf, base)
  if not H.bases[buf] then
    vim.api.nvim_create_autocmd({ "BufWipeout", "BufUnload" }, {
      buffer = buf,
      once = true,
      callback = function()
        H.bases[buf] = nil
      end,
    })
  end
  H.bases[buf] = base
end

---@class heph.BufState
---@field kind "node"|"list"|"home"
---@field id? string node id
---@field query? string list query
---@field version? string node version shown
---@field warned? string version we already warned about

---Parses a heph:// buffer name.
---@param name string
---@return string|nil kind, string|nil arg
function M.parse_name(name)
  local kind, arg = name:match("^heph://(%w+)/?(.*)$")
  if not kind then
    return nil
  end
  return kind, vim.uri_decode and vim.uri_decode(arg) or arg
end

---Buffer name for a node.
---@param id string
---@return string
function M.node_name(id)
  return "heph://node/" .. id
end

---Opens a node in the current window.
---@param id string
function M.open_node(id)
  vim.cmd.edit(vim.fn.fnameescape(M.node_name(id)))
end

---Opens a list buffer.
---@param query? string
function M.open_list(query)
  vim.cmd.edit(vim.fn.fnameescape("heph://list/" .. (query or "next")))
end

---A reply's map as a plain table (an empty map may arrive as a list, and
---nil as vim.NIL).
---@param value any
---@return table
function H.map(value)
  return type(value) == "table" and value or {}
end

---@param buf integer
---@param lines string[]
function H.set_lines(buf, lines)
  local was = vim.bo[buf].modifiable
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = was
  vim.bo[buf].modified = false
end

---@param buf integer
---@param state heph.BufState
function H.set_state(buf, state)
  vim.b[buf].heph = state
end

---@param buf integer
---@return heph.BufState|nil
function M.state(buf)
  return vim.b[buf].heph
end

---Reports failures without a Lua traceback.
---@param fn fun()
function H.guard(fn)
  local ok, err = pcall(fn)
  if not ok then
    vim.notify(tostring(err), vim.log.levels.ERROR)
  end
  return ok
end

---@param buf integer
function H.common_options(buf)
  vim.bo[buf].buftype = "acwrite"
  vim.bo[buf].swapfile = false
  vim.bo[buf].bufhidden = "hide"
end

---Loads a node into `buf`.
---@param buf integer
---@param id string
function H.read_node(buf, id)
  local node = rpc.request("node_get", { id = id })
  H.set_lines(buf, node.lines)
  H.set_base(buf, { lines = node.lines, heads = node.heads })
  H.set_state(buf, { kind = "node", id = node.id, version = node.version })
  H.common_options(buf)
  vim.bo[buf].filetype = "markdown"
  vim.keymap.set("n", "gf", function()
    M.follow(buf)
  end, { buffer = buf, desc = "heph: follow [[link]]" })
  vim.diagnostic.reset(M.ns, buf)
  if node.deleted then
    vim.notify("heph: this node is deleted; :Heph restore brings it back", vim.log.levels.WARN)
  end
end

---@param buf integer
---@param query string
function H.read_list(buf, query)
  local list = rpc.request("list_get", { query = query })
  H.set_lines(buf, list.lines)
  H.set_base(buf, { lines = list.lines, versions = H.map(list.versions) })
  H.set_state(buf, { kind = "list", query = query })
  H.common_options(buf)
  vim.bo[buf].filetype = "heph_list"
  vim.api.nvim_buf_call(buf, function()
    vim.cmd([[syntax match HephListId /^\/[A-Za-z0-9_-]\+ / conceal]])
    vim.cmd([[syntax match HephListDone /\[x\].*$/]])
    vim.cmd([[syntax match HephListMeta /\s\zs[@+#]\S\+/]])
    vim.cmd([[highlight default link HephListDone Comment]])
    vim.cmd([[highlight default link HephListMeta Special]])
  end)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.wo[win].conceallevel = 3
    vim.wo[win].concealcursor = "nvic"
  end
  vim.api.nvim_create_autocmd("BufWinEnter", {
    buffer = buf,
    callback = function()
      vim.wo.conceallevel = 3
      vim.wo.concealcursor = "nvic"
    end,
  })
  vim.keymap.set("n", "<CR>", function()
    M.follow(buf)
  end, { buffer = buf, desc = "heph: open the task" })
  vim.diagnostic.reset(M.ns, buf)
end

---@param buf integer
function H.read_home(buf)
  local home = rpc.request("home", {})
  vim.bo[buf].modifiable = true
  H.set_lines(buf, home.lines)
  H.set_state(buf, { kind = "home" })
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].swapfile = false
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].modifiable = false
  vim.bo[buf].filetype = "markdown"
  vim.api.nvim_buf_call(buf, function()
    vim.cmd([[syntax match HephListId /^\/[A-Za-z0-9_-]\+ / conceal]])
  end)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.wo[win].conceallevel = 3
    vim.wo[win].concealcursor = "nvic"
  end
  for _, lhs in ipairs({ "<CR>", "gf" }) do
    vim.keymap.set("n", lhs, function()
      M.follow(buf)
    end, { buffer = buf, desc = "heph: open item" })
  end
end

---BufReadCmd for heph://*.
---@param buf integer
function M.read(buf)
  local kind, arg = M.parse_name(vim.api.nvim_buf_get_name(buf))
  H.guard(function()
    if kind == "node" then
      H.read_node(buf, arg)
    elseif kind == "journal" then
      local j = rpc.request("journal", { date = arg ~= "" and arg or nil })
      H.read_node(buf, j.id)
    elseif kind == "list" then
      H.read_list(buf, arg)
    elseif kind == "home" then
      H.read_home(buf)
    else
      error("heph: unknown buffer " .. vim.api.nvim_buf_get_name(buf), 0)
    end
  end)
end

---Shows parse errors as diagnostics and moves the cursor to the first.
---@param buf integer
---@param errors {line: integer, message: string}[]
function H.show_errors(buf, errors)
  local diags = {}
  for _, e in ipairs(errors) do
    table.insert(diags, {
      lnum = math.max(e.line - 1, 0),
      col = 0,
      severity = vim.diagnostic.severity.ERROR,
      message = e.message,
      source = "heph",
    })
  end
  vim.diagnostic.set(M.ns, buf, diags)
  local first = errors[1]
  if first and vim.api.nvim_get_current_buf() == buf then
    local line = math.min(math.max(first.line, 1), vim.api.nvim_buf_line_count(buf))
    vim.api.nvim_win_set_cursor(0, { line, 0 })
  end
  vim.notify(
    ("heph: not saved, %d error%s; first on line %d: %s"):format(#errors, #errors == 1 and "" or "s", first.line, first.message),
    vim.log.levels.ERROR
  )
end

---Replaces the buffer text only where it differs, keeping the cursor.
---@param buf integer
---@param lines string[]
function H.refresh_lines(buf, lines)
  local current = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  if not vim.deep_equal(current, lines) then
    local view = vim.api.nvim_get_current_buf() == buf and vim.fn.winsaveview() or nil
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    if view then
      vim.fn.winrestview(view)
    end
  end
  vim.bo[buf].modified = false
end

---Asks before destructive list changes. Replaceable in tests.
---@param changes {action: string, summary: string}[]
---@return boolean
function M.confirm(changes)
  local text = { "Apply these changes?" }
  for _, c in ipairs(changes) do
    table.insert(text, "  " .. c.summary)
  end
  return vim.fn.confirm(table.concat(text, "\n"), "&Yes\n&No", 2) == 1
end

---@param buf integer
---@param state heph.BufState
function H.write_node(buf, state)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local base = H.bases[buf] or {}
  local reply = rpc.request("node_save", {
    id = state.id,
    lines = lines,
    base_lines = base.lines,
    base_heads = base.heads,
  })
  if not reply.ok then
    H.show_errors(buf, reply.errors)
    return
  end
  vim.diagnostic.reset(M.ns, buf)
  H.refresh_lines(buf, reply.lines)
  H.set_base(buf, { lines = reply.lines, heads = reply.heads })
  state.version = reply.version
  state.warned = nil
  H.set_state(buf, state)
  if reply.conflict == true then
    vim.notify(
      "heph: saved; your edit and a change made elsewhere touched the same lines: both are kept between <<<<<<< and >>>>>>> markers, edit and :w again",
      vim.log.levels.WARN
    )
  elseif reply.merged == true then
    vim.notify("heph: saved, merged with a change made elsewhere")
  end
  vim.api.nvim_exec_autocmds("User", { pattern = "HephSaved", modeline = false, data = { id = state.id } })
end

---@param buf integer
---@param state heph.BufState
function H.write_list(buf, state)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local base = H.bases[buf] or { lines = {}, versions = {} }
  local params = {
    query = state.query,
    lines = lines,
    base = base.lines,
    versions = base.versions or {},
  }
  local plan = rpc.request("list_plan", params)
  -- The plan the user confirms is the plan applied: when a touched task
  -- changed in between, the sidecar answers `stale` and we ask again.
  for _ = 1, 3 do
    if not plan.ok and plan.stale ~= true then
      H.show_errors(buf, plan.errors)
      return
    end
    vim.diagnostic.reset(M.ns, buf)
    local deletes = vim.tbl_filter(function(c)
      return c.action == "delete"
    end, plan.changes)
    if (#deletes > 0 or plan.stale == true) and not M.confirm(plan.changes) then
      vim.notify("heph: nothing saved", vim.log.levels.INFO)
      return
    end
    params.fingerprint = plan.fingerprint
    local reply = rpc.request("list_apply", params)
    if reply.ok then
      H.refresh_lines(buf, reply.lines)
      H.set_base(buf, { lines = reply.lines, versions = H.map(reply.versions) })
      if #reply.changes > 0 then
        vim.notify(("heph: %d change%s saved"):format(#reply.changes, #reply.changes == 1 and "" or "s"))
      end
      vim.api.nvim_exec_autocmds("User", { pattern = "HephSaved", modeline = false, data = { query = state.query } })
      return
    end
    plan = reply
  end
  vim.notify("heph: the list keeps changing while saving; nothing saved, try again", vim.log.levels.WARN)
end

---BufWriteCmd for heph://*: synchronous, so :wq waits for it.
---@param buf integer
function M.write(buf)
  local state = M.state(buf)
  if not state then
    vim.notify("heph: this buffer was not loaded; reload it with :edit", vim.log.levels.ERROR)
    return
  end
  if H.saving then
    vim.notify("heph: a save is already running", vim.log.levels.WARN)
    return
  end
  H.saving = true
  H.guard(function()
    if state.kind == "node" then
      H.write_node(buf, state)
    elseif state.kind == "list" then
      H.write_list(buf, state)
    end
  end)
  H.saving = false
end

---Reloads a heph buffer from the replica when unmodified; warns otherwise.
---@param buf integer
function M.reload(buf)
  local state = M.state(buf)
  if not state then
    return
  end
  if vim.bo[buf].modified then
    if state.kind == "node" and state.warned ~= "changed" then
      state.warned = "changed"
      H.set_state(buf, state)
      vim.notify(
        ("heph: %s changed elsewhere; your unsaved edits are kept and :w merges them with it (:e! loads the new version instead)"):format(vim.api.nvim_buf_get_name(buf)),
        vim.log.levels.WARN
      )
    end
    return
  end
  local view = vim.api.nvim_get_current_buf() == buf and vim.fn.winsaveview() or nil
  M.read(buf)
  if view then
    pcall(vim.fn.winrestview, view)
  end
end

---Node buffers that are loaded, by id.
---@return table<string, integer[]>
function H.node_buffers()
  local out = {}
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    local state = vim.api.nvim_buf_is_loaded(buf) and M.state(buf)
    if state and state.kind == "node" then
      out[state.id] = out[state.id] or {}
      table.insert(out[state.id], buf)
    end
  end
  return out
end

---Reloads node buffers whose node changed (another Neovim, the CLI, sync).
function M.check_versions()
  local bufs = H.node_buffers()
  local ids = vim.tbl_keys(bufs)
  if #ids == 0 then
    return
  end
  local ok, reply = pcall(rpc.request, "versions", { ids = ids })
  if not ok then
    return
  end
  for id, list in pairs(bufs) do
    local version = reply.versions[id]
    for _, buf in ipairs(list) do
      local state = M.state(buf)
      if version and state and state.version ~= version then
        M.reload(buf)
      end
    end
  end
end

---Called when sync changed nodes.
---@param ids string[]
function M.nodes_changed(ids)
  local bufs = H.node_buffers()
  for _, id in ipairs(ids or {}) do
    for _, buf in ipairs(bufs[id] or {}) do
      M.reload(buf)
    end
  end
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    local state = vim.api.nvim_buf_is_loaded(buf) and M.state(buf)
    if state and (state.kind == "list" or state.kind == "home") then
      M.reload(buf)
    end
  end
end

---The id on a list or home line, if any.
---@param line string
---@return string|nil
function M.line_id(line)
  return line:match("^/([A-Za-z0-9_-]+) ")
end

---Follows the item or [[link]] under the cursor.
---@param buf integer
function M.follow(buf)
  local line = vim.api.nvim_get_current_line()
  local id = M.line_id(line)
  if id then
    return M.open_node(id)
  end
  local project = line:match("^%+(%S+)")
  if project then
    return M.open_list("project:" .. project)
  end
  local col = vim.api.nvim_win_get_cursor(0)[2]
  H.guard(function()
    local reply = rpc.request("resolve_link", { target = line, col = col })
    if reply.id then
      M.open_node(reply.id)
    elseif reply.title then
      vim.notify(("heph: no node titled %q; create it with :Heph new %s"):format(reply.title, reply.title), vim.log.levels.WARN)
    end
  end)

end

return M

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
---@field crlf? boolean node buffers: whether that body's lines end in CRLF (shown without them)
---@field seq? integer list buffers: the replica's op sequence number when the lines were read (a node whose version is greater changed since)

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
        H.left[buf] = nil
      end,
    })
  end
  H.bases[buf] = base
  -- A CRLF body shows as Vim shows a `fileformat=dos` file; `:set ff=unix`
  -- then `:w` converts it, as it would a file (the save sends the wish).
  local ff = base.crlf and "dos" or "unix"
  if vim.bo[buf].fileformat ~= ff then
    local modified = vim.bo[buf].modified
    vim.bo[buf].fileformat = ff
    vim.bo[buf].modified = modified
  end
end

---@class heph.BufState
---@field kind "node"|"list"|"home"
---@field id? string node id
---@field query? string list query
---@field version? string node version shown
---@field warned? string version we already warned about
---@field node_kind? "task"|"note"|"journal" the node's kind
---@field title? string the node's (or list's) title
---@field journal_date? string a journal's day
---@field missing? boolean a journal not created yet: its first save creates it
---@field deleted_page? boolean a missing journal whose day had one, deleted (shown empty; :Heph restore brings it back)

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

---Whether a command's modifiers (`:tab Heph home`, `:vertical Heph
---today`, `:topleft Heph next`) ask for a new window or tab page.
---@param mods? table the `smods` of a user command
---@return boolean
function H.splits(mods)
  return mods ~= nil
    and ((mods.tab or -1) >= 0 or mods.vertical == true or mods.horizontal == true or (mods.split or "") ~= "")
end

---Why the current window cannot show another buffer (`:edit` would
---refuse with E37), or nil. Checked before a command creates anything,
---so a refused open leaves no node behind.
---@param mods? table
---@return string|nil
function M.cannot_leave(mods)
  -- `:hide Heph …` leaves it hidden; `:confirm Heph …` asks, as :edit does.
  if H.splits(mods) or (mods and (mods.hide or mods.confirm)) then
    return nil
  end
  local buf = vim.api.nvim_get_current_buf()
  -- As Vim decides: 'bufhidden' first ("unload", "delete" and "wipe" are
  -- never hidden, even with 'hidden' set), then 'hidden'.
  local bufhidden = vim.bo[buf].bufhidden
  local hides = bufhidden == "hide" or (bufhidden == "" and vim.o.hidden)
  if not vim.bo[buf].modified or hides or vim.o.autowriteall or #vim.fn.win_findbuf(buf) > 1 then
    return nil
  end
  return "this window's buffer has unsaved changes: write it first, or open in a split (:vertical Heph …, :tab Heph …)"
end

---Opens the buffer `name` in the current window, or where `mods` ask. A
---buffer already shown here with unsaved changes stays as it is (`:edit`
---would refuse to read it again).
---@param name string
---@param mods? table
function M.open(name, mods)
  local here = vim.api.nvim_buf_get_name(0) == name
  if here and vim.bo.modified and not H.splits(mods) then
    return
  end
  local why = not here and M.cannot_leave(mods)
  if why then
    error("heph: " .. why, 0)
  end
  local open = H.splits(mods) and vim.cmd.split or vim.cmd.edit
  local ok, err = pcall(open, { args = { vim.fn.fnameescape(name) }, mods = mods })
  if not ok then
    error("heph: " .. tostring(err):gsub("^.-Vim[^:]*:", ""), 0)
  end
end

---Opens a node. A journal opens as heph://journal/<date>, so a day has
---one buffer however it is reached.
---@param id string
---@param mods? table
function M.open_node(id, mods)
  local date = id:match("^journal%-(%d%d%d%d%-%d%d%-%d%d)$")
  if date then
    return M.open_journal(date, mods)
  end
  M.open(M.node_name(id), mods)
end

---Opens a day's journal (not created until its first save).
---@param date string YYYY-MM-DD
---@param mods? table
function M.open_journal(date, mods)
  M.open("heph://journal/" .. date, mods)
end

---Opens a list buffer.
---@param query? string
---@param mods? table
function M.open_list(query, mods)
  M.open("heph://list/" .. (query or "next"), mods)
end

---A reply's value, with msgpack nil (vim.NIL) as nil.
---@param value any
---@return any
function H.val(value)
  if value == vim.NIL then
    return nil
  end
  return value
end

---Shows `lines`, replacing only the lines that differ so the cursor stays
---where it was in every window. `fresh`: the replica's text, not an edit
---of the user's (a first load, a reload, a list shown again, a merge): `u`
---must not undo into it. Undoing a reload gave back the old text as an
---unmodified buffer, and the next :w wrote it over the change from
---elsewhere; so when such text changes the buffer, the undo history goes,
---as Vim drops it when it reloads a file too large for 'undoreload'.
---@param buf integer
---@param lines string[]
---@param fresh? boolean
function H.set_lines(buf, lines, fresh)
  -- No swap file, before the first text: two Neovims opening the same
  -- node at once would race for it (E303) and one be left with no state.
  vim.bo[buf].swapfile = false
  local was = vim.bo[buf].modifiable
  vim.bo[buf].modifiable = true
  local levels = vim.bo[buf].undolevels
  if fresh then
    vim.bo[buf].undolevels = -1
  end
  local current = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local first = 1
  while first <= #current and first <= #lines and current[first] == lines[first] do
    first = first + 1
  end
  local tail = 0
  while
    tail < #current - first + 1
    and tail < #lines - first + 1
    and current[#current - tail] == lines[#lines - tail]
  do
    tail = tail + 1
  end
  if first <= #current or first <= #lines then
    local middle = (first == 1 and tail == 0) and lines or vim.list_slice(lines, first, #lines - tail)
    vim.api.nvim_buf_set_lines(buf, first - 1, #current - tail, false, middle)
  end
  if fresh then
    vim.bo[buf].undolevels = levels
  end
  vim.bo[buf].modifiable = was
  vim.bo[buf].modified = false
end

---@param buf integer
---@param state heph.BufState
function H.set_state(buf, state)
  vim.b[buf].heph = state
  -- A readable name for status lines and pickers (the buffer name holds
  -- the id): `%{get(b:, 'heph_title', bufname())}`.
  local title = state.title
  if state.kind == "home" then
    title = "heph home"
  elseif state.kind == "node" and title and state.node_kind and state.node_kind ~= "journal" then
    title = ("%s [%s]"):format(title, state.node_kind)
  elseif state.kind == "node" and state.journal_date then
    title = "journal " .. state.journal_date
  end
  vim.b[buf].heph_title = title
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

---The editable text of a list or home line starts after its hidden
---`/id ` prefix; 0 when there is none.
---@param line string
---@return integer
function M.prefix_len(line)
  local prefix = line:match("^/[A-Za-z0-9_-]+ ")
  return prefix and #prefix or 0
end

---Keeps the cursor off the hidden `/id ` prefix (oil.nvim does the same).
function H.constrain_cursor()
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local p = M.prefix_len(vim.api.nvim_get_current_line())
  if p > 0 and col < p then
    vim.api.nvim_win_set_cursor(0, { row, p })
  end
end

---`cc`/`S` on a list line: clear the text but keep the hidden id, so the
---line renames its task instead of creating a new one.
function M.clear_keep_prefix()
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local line = vim.api.nvim_get_current_line()
  vim.api.nvim_buf_set_lines(0, row - 1, row, false, { line:sub(1, M.prefix_len(line)) })
end

---Conceal for the id prefix, window-local for this buffer only (like
---`:setlocal`), so it does not leak into the next file of the window.
---No wrap: Vim wraps a line by its width with the concealed id counted,
---so a title broke mid-word well before the window's edge.
---@param buf integer
function H.conceal(buf)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.wo[win][0].conceallevel = 3
    vim.wo[win][0].concealcursor = "nvic"
    vim.wo[win][0].wrap = false
  end
end

---The syntax of list and home buffers: hidden ids, done items, tokens,
---headings. Replaced, not added again, on every re-render (items piled up
---by refreshes would slow every redraw of a large list); also run by
---syntax/heph_list.lua and syntax/heph_home.lua, so `:syntax on` (a
---reloaded vimrc) brings it back instead of clearing it.
---@param buf integer
---@param editable boolean a list (true) or home (false)
function M.syntax(buf, editable)
  vim.api.nvim_buf_call(buf, function()
    -- One group at a time, each only if there: `silent!` does not keep
    -- E28 from a caller inside nvim_eval (--remote-expr, some plugins).
    for _, group in ipairs({ "HephListId", "HephListDone", "HephListMeta", "HephHomeHeading" }) do
      if vim.fn.hlexists(group) == 1 then
        pcall(vim.cmd, "syntax clear " .. group)
      end
    end
    vim.cmd([[syntax match HephListId /^\/[A-Za-z0-9_-]\+ / conceal]])
    if not editable then
      vim.cmd([[syntax match HephHomeHeading /^#\+ .*$/]])
      vim.cmd([[highlight default link HephHomeHeading Title]])
    end
    if editable then
      -- A checkbox at the start of the item only, after its hidden id.
      vim.cmd([[syntax match HephListDone /\%(^\/[A-Za-z0-9_-]\+ \|^\)\@<=\[[xX]\].*$/]])
      -- Field words only where they set fields: after the title, to the
      -- end of the line. One followed by a title word is title text, and
      -- is not coloured as a field.
      vim.cmd([[syntax match HephListMeta /\s\zs[@+#]\%(\\\s\|\S\)\+\ze\%(\s\+[@+#]\%(\\\s\|\S\)\+\)*\s*$/]])
      vim.cmd([[highlight default link HephListDone Comment]])
      vim.cmd([[highlight default link HephListMeta Special]])
    end
  end)
end

---Syntax, mappings and autocmds of list and home buffers; mappings and
---autocmds are set once per buffer.
---@param buf integer
---@param editable boolean
function H.wire_lines(buf, editable)
  M.syntax(buf, editable)
  H.conceal(buf)
  if vim.b[buf].heph_wired then
    return
  end
  vim.b[buf].heph_wired = true
  local group = vim.api.nvim_create_augroup("heph_buf_" .. buf, { clear = true })
  vim.api.nvim_create_autocmd("BufWinEnter", {
    group = group,
    buffer = buf,
    callback = function()
      H.conceal(buf)
    end,
  })
  vim.api.nvim_create_autocmd({ "CursorMoved", "CursorMovedI" }, {
    group = group,
    buffer = buf,
    callback = H.constrain_cursor,
  })
  local map = function(modes, lhs, rhs, desc, expr)
    vim.keymap.set(modes, lhs, rhs, { buffer = buf, desc = "heph: " .. desc, expr = expr })
  end
  local to_text = function()
    local row = vim.api.nvim_win_get_cursor(0)[1]
    vim.api.nvim_win_set_cursor(0, { row, M.prefix_len(vim.api.nvim_get_current_line()) })
  end
  map({ "n", "x" }, "0", to_text, "start of the text (after the hidden id)")
  map({ "n", "x" }, "^", to_text, "start of the text (after the hidden id)")
  for _, lhs in ipairs({ "<CR>", "gf" }) do
    map("n", lhs, function()
      M.follow(buf, lhs)
    end, "open the item")
  end
  if not editable then
    return
  end
  map("n", "I", function()
    local line = vim.api.nvim_get_current_line()
    local p = M.prefix_len(line)
    if p == 0 then
      return "I"
    end
    local box = line:sub(p + 1):match("^%[.%] ")
    return ("<Cmd>call cursor(line('.'), %d)<CR>i"):format(p + (box and #box or 0) + 1)
  end, "insert before the title", true)
  for _, lhs in ipairs({ "cc", "S" }) do
    map("n", lhs, function()
      if M.prefix_len(vim.api.nvim_get_current_line()) == 0 then
        return lhs
      end
      return "<Cmd>lua require('heph.buffers').clear_keep_prefix()<CR>A"
    end, "change the line, keeping its id", true)
  end
end

---`<CR>`/`gf` in node buffers follow [[links]], else do what Vim does.
---@param buf integer
function H.wire_node(buf)
  for _, lhs in ipairs({ "<CR>", "gf" }) do
    vim.keymap.set("n", lhs, function()
      M.follow(buf, lhs)
    end, { buffer = buf, desc = "heph: follow [[link]]" })
  end
end

---Markdown for a note buffer. The highlighting is treesitter's
---(Neovim bundles the markdown parser), started before the filetype is set
---so the FileType handler skips the regex syntax, whose syntax/markdown.vim
---sources the html, css and javascript syntax for every buffer (most of
---the time of opening a note). The filetype is markdown all the same:
---ftplugins and FileType autocmds run. Without the parser, the regex syntax.
---@param buf integer
function H.markdown(buf)
  if vim.bo[buf].filetype == "markdown" then
    return
  end
  if not vim.b[buf].ts_highlight then
    pcall(vim.treesitter.start, buf, "markdown")
  end
  vim.bo[buf].filetype = "markdown"
end

---Shows a node in `buf`.
---@param buf integer
---@param node table node_get's reply
---@param extra? table more state (journal_date, missing)
function H.show_node(buf, node, extra)
  H.set_lines(buf, node.lines, true)
  H.set_base(buf, { lines = node.lines, heads = H.val(node.heads), crlf = H.val(node.crlf) == true })
  H.set_state(
    buf,
    vim.tbl_extend("force", {
      kind = "node",
      id = node.id,
      node_kind = H.val(node.kind),
      title = H.val(node.title),
      version = H.val(node.version),
    }, extra or {})
  )
  H.common_options(buf)
  H.markdown(buf)
  H.wire_node(buf)
  vim.diagnostic.reset(M.ns, buf)
  if H.val(node.deleted) == true then
    vim.notify("heph: this node is deleted; :Heph restore brings it back", vim.log.levels.WARN)
  end
end

---Loads a node into `buf`.
---@param buf integer
---@param id string
function H.read_node(buf, id)
  H.show_node(buf, rpc.request("node_get", { id = id }))
end

---Loads a day's journal. A day without one shows the blank journal, which
---its first save creates: looking creates nothing.
---@param buf integer
---@param date string|nil
function H.read_journal(buf, date)
  local j = rpc.request("journal_get", { date = date })
  if j.exists == true then
    H.show_node(buf, rpc.request("node_get", { id = j.id }), { journal_date = j.date })
  else
    -- Its body is an edit of no version at all (heads `{}`, not unknown):
    -- a journal of that day written elsewhere before the first save is
    -- merged with it, not replaced by it.
    H.show_node(buf, { id = j.id, kind = "journal", title = j.date, lines = j.lines, heads = {} }, {
      journal_date = j.date,
      missing = true,
      -- Deleted, not never written: :Heph restore brings the old page back.
      deleted_page = j.deleted == true or nil,
    })
  end
end

---Namespace of the "cut at its limit" note under a list.
M.ns_info = vim.api.nvim_create_namespace("heph_info")

---@param buf integer
---@param query string
function H.read_list(buf, query)
  local list = rpc.request("list_get", { query = query })
  H.set_lines(buf, list.lines, true)
  H.set_base(buf, { lines = list.lines, seq = H.val(list.seq) })
  H.set_state(buf, { kind = "list", query = query, title = H.val(list.title) })
  H.common_options(buf)
  vim.bo[buf].filetype = "heph_list"
  H.wire_lines(buf, true)
  vim.diagnostic.reset(M.ns, buf)
  vim.api.nvim_buf_clear_namespace(buf, M.ns_info, 0, -1)
  local total = H.val(list.total)
  if total then
    vim.api.nvim_buf_set_extmark(buf, M.ns_info, math.max(#list.lines - 1, 0), 0, {
      virt_lines = { { { ("%d of %d — :Heph list tasks for all"):format(#list.lines, total), "Comment" } } },
    })
  end
end

---@param buf integer
function H.read_home(buf)
  local home = rpc.request("home", {})
  vim.bo[buf].modifiable = true
  H.set_lines(buf, home.lines, true)
  H.set_state(buf, { kind = "home" })
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].swapfile = false
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].modifiable = false
  -- A dashboard, as mini.starter's: not in :ls, so :bufdo and :bnext pass
  -- it by (:bufdo stopped at it with E21, not modifiable).
  vim.bo[buf].buflisted = false
  -- An index, not a markdown document: its own light syntax (headings,
  -- hidden ids) draws in a fraction of markdown's time.
  vim.bo[buf].filetype = "heph_home"
  H.wire_lines(buf, false)
end

---Shows the buffer named `name` instead of `buf` in its windows, then
---wipes `buf` (after this event: buffers cannot change inside BufReadCmd).
---@param buf integer
---@param name string
function H.redirect(buf, name)
  vim.schedule(function()
    if not vim.api.nvim_buf_is_valid(buf) or vim.bo[buf].modified then
      return
    end
    local target = vim.fn.bufadd(name)
    vim.bo[target].buflisted = true
    for _, win in ipairs(vim.fn.win_findbuf(buf)) do
      vim.api.nvim_win_set_buf(win, target)
    end
    vim.fn.bufload(target)
    pcall(vim.api.nvim_buf_delete, buf, { force = true })
  end)
end

---Buffers read in this turn of the event loop.
---@type table<integer, boolean>
H.just_read = {}

---BufReadCmd for heph://*.
---@param buf integer
function M.read(buf)
  -- Promotes not saved yet die with the text they were made in (`:e!`, a
  -- reload): a link typed later is no promote.
  H.promoted[buf] = nil
  local kind, arg = M.parse_name(vim.api.nvim_buf_get_name(buf))
  local journal_day = kind == "node" and arg and arg:match("^journal%-(%d%d%d%d%-%d%d%-%d%d)$")
  -- The BufEnter that follows this read must not read it all again (the
  -- mark is dropped on the next turn of the event loop if none follows).
  H.just_read[buf] = true
  vim.schedule(function()
    H.just_read[buf] = nil
  end)
  local ok, err = pcall(function()
    if journal_day then
      -- One buffer per day: heph://node/journal-DATE becomes heph://journal/DATE.
      H.read_journal(buf, journal_day)
      H.redirect(buf, "heph://journal/" .. journal_day)
    elseif kind == "node" then
      H.read_node(buf, arg)
    elseif kind == "journal" then
      H.read_journal(buf, arg ~= "" and arg or nil)
      -- One buffer per day here too: heph://journal/today (or a date
      -- written another way) becomes heph://journal/DATE.
      local day = M.state(buf) and M.state(buf).journal_date
      if day and day ~= arg then
        H.redirect(buf, "heph://journal/" .. day)
      end
    elseif kind == "list" then
      H.read_list(buf, arg)
    elseif kind == "home" then
      H.read_home(buf)
    else
      error("heph: unknown buffer " .. vim.api.nvim_buf_get_name(buf), 0)
    end
  end)
  if ok then
    return
  end
  -- One message, and no empty buffer left behind in :ls.
  vim.notify(tostring(err), vim.log.levels.WARN)
  if not M.state(buf) then
    vim.schedule(function()
      if vim.api.nvim_buf_is_valid(buf) and not M.state(buf) then
        pcall(vim.api.nvim_buf_delete, buf, { force = true })
      end
    end)
  end
end

---A save the sidecar refused: text that does not parse becomes
---diagnostics; anything else goes on to M.write's message.
---@param buf integer
---@param err any
function H.save_failed(buf, err)
  if rpc.is_error(err, "invalid") and err.errors and #err.errors > 0 then
    return H.show_errors(buf, err.errors)
  end
  if rpc.is_error(err, "invalid") and err.line then
    return H.show_errors(buf, { { line = err.line, message = err.message } })
  end
  error(err, 0)
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
  -- A warning, not an error: inside BufWriteCmd an error message comes
  -- with "Error detected while processing…" and a hit-enter prompt. The
  -- buffer stays modified, so :wq does not quit.
  vim.notify(
    ("heph: not saved: line %d: %s%s"):format(
      first.line,
      first.message,
      #errors > 1 and (" (+%d more)"):format(#errors - 1) or ""
    ),
    vim.log.levels.WARN
  )
end

---Replaces the buffer text only where it differs, keeping the cursor.
---@param buf integer
---@param lines string[]
---@param fresh? boolean text from elsewhere (see H.set_lines)
function H.refresh_lines(buf, lines, fresh)
  H.set_lines(buf, lines, fresh)
end

---Tasks promoted in a buffer, created by its next save when their link is
---still there (so `u` or :q! leaves nothing behind).
---@type table<integer, {title: string, done: boolean, line?: string, links_before?: integer}[]>
H.promoted = {}

---How many times `text` holds the link [[title]].
---@param text string
---@param title string
---@return integer
function M.count_links(text, title)
  local link, n, at = "[[" .. title .. "]]", 0, 1
  while true do
    local found = text:find(link, at, true)
    if not found then
      return n
    end
    n, at = n + 1, found + #link
  end
end

---Remembers promoted lines of `buf` for its next save.
---@param buf integer
---@param tasks {title: string, done: boolean, line?: string, links_before?: integer}[]
function M.add_promotions(buf, tasks)
  H.promoted[buf] = H.promoted[buf] or {}
  vim.list_extend(H.promoted[buf], tasks)
end

---Creates the promoted tasks whose [[link]] the saved lines still hold.
---@param buf integer
---@param lines string[]
---@return integer created
---@return string|nil failed the message when a task was not created (it and those after it wait for the next save)
function H.create_promoted(buf, lines)
  local pending = H.promoted[buf]
  if not pending then
    return 0
  end
  H.promoted[buf] = nil
  local text = table.concat(lines, "\n")
  local created, seen, waiting = 0, {}, {}
  for i, task in ipairs(pending) do
    if seen[task.title] then
      -- Promoted twice: made once, by this save.
    elseif M.count_links(text, task.title) > (task.links_before or 0) then
      seen[task.title] = true
      -- With `line`, the sidecar reads its tokens (@due +project #tag).
      local line = task.line ~= vim.NIL and task.line or nil
      -- An open task of that title may have come meanwhile (the same
      -- line promoted on another device, then synced): linked, not made.
      local ok, err = pcall(rpc.request, "node_create", {
        kind = "task",
        title = not line and task.title or nil,
        line = line,
        status = task.done and "done" or nil,
        unless_open = not task.done,
      })
      if not ok then
        -- The node is saved by now: this is no reason to say it is not.
        -- The next save tries again, except a create the sidecar may have
        -- handled before it stopped (it would make the task twice).
        local again = not rpc.is_error(err, "sidecar")
        H.promoted[buf] = vim.list_extend(waiting, vim.list_slice(pending, again and i or i + 1))
        local why = tostring(err):gsub("^heph: ", "")
        return created,
          ("heph: the promoted task %s was not created: %s%s"):format(M.quote(task.title), why, again and "; the next :w tries again" or "")
      end
      if H.val(err.existing) ~= true then
        created = created + 1
      end
    else
      -- Its link is not in the text (the promote undone): it waits, so a
      -- redo that brings the link back makes the task at the next save.
      table.insert(waiting, task)
    end
  end
  H.promoted[buf] = #waiting > 0 and waiting or nil
  return created
end

---Asks before destructive list changes. Replaceable in tests.
---@param changes {action: string, summary: string}[]
---@return boolean
function M.confirm(changes)
  return vim.fn.confirm(M.confirm_text(changes), "&Yes\n&No", 2) == 1
end

---The question M.confirm asks.
---@param changes {action: string, summary: string}[]
---@return string
function M.confirm_text(changes)
  local text = { "Apply these changes?" }
  -- A long plan (1,000 deleted lines) is counted, not listed whole.
  local shown, counts = 20, {}
  for i, c in ipairs(changes) do
    if i <= shown then
      table.insert(text, "  " .. c.summary)
    end
    counts[c.action] = (counts[c.action] or 0) + 1
  end
  if #changes > shown then
    local parts = {}
    for action, n in vim.spairs(counts) do
      table.insert(parts, ("%d %s"):format(n, action))
    end
    table.insert(text, ("  … %d more; in all: %s"):format(#changes - shown, table.concat(parts, ", ")))
  end
  return table.concat(text, "\n")
end

---Text as messages quote it: in double quotes, control characters shown
---as Vim shows them (`^I`, `^M`), not as Lua escapes.
---@param text string
---@return string
function M.quote(text)
  return '"' .. vim.fn.strtrans(text) .. '"'
end

---A node's title as messages name it: at most 60 characters.
---@param title string
---@return string
function H.short(title)
  if vim.fn.strchars(title) <= 60 then
    return title
  end
  return vim.fn.strcharpart(title, 0, 59) .. "…"
end

---The most a node save may send: the store's body limit (1 MiB) and a
---header. A larger frame would end the sidecar (16 MiB, doc/limits.md)
---before it could say why.
H.max_save_bytes = 1024 * 1024 + 64 * 1024

---@param buf integer
---@param state heph.BufState
---@param lines string[] the buffer's lines
function H.write_node(buf, state, lines)
  local bytes = 0
  for _, line in ipairs(lines) do
    bytes = bytes + #line + 1
  end
  if bytes > H.max_save_bytes then
    error(("the note is %d KiB, more than a note may hold (1024 KiB); split it into several notes"):format(math.floor(bytes / 1024)), 0)
  end
  local base = H.bases[buf] or {}
  local ok, reply = pcall(rpc.request, "node_save", {
    id = state.id,
    lines = lines,
    base_lines = base.lines,
    base_heads = base.heads,
    base_crlf = base.crlf,
    crlf = vim.bo[buf].fileformat == "dos",
    -- A journal shown before it existed: made by this save, if it saves.
    journal_date = state.missing and state.journal_date or nil,
  })
  if not ok then
    return H.save_failed(buf, reply)
  end
  state.missing = nil
  state.deleted_page = nil
  vim.diagnostic.reset(M.ns, buf)
  -- A merge brings in text from elsewhere: `u` must not take it out.
  H.refresh_lines(buf, reply.lines, reply.merged == true or reply.conflict == true)
  H.set_base(buf, { lines = reply.lines, heads = H.val(reply.heads), crlf = H.val(reply.crlf) == true })
  state.version = H.val(reply.version)
  state.title = H.val(reply.title) or state.title
  state.node_kind = H.val(reply.kind) or state.node_kind
  state.warned = nil
  H.set_state(buf, state)
  local created, failed = H.create_promoted(buf, reply.lines)
  if reply.conflict == true then
    vim.notify(
      "heph: saved; your edit and a change made elsewhere touched the same lines: both are kept between <<<<<<< and >>>>>>> markers, edit and :w again",
      vim.log.levels.WARN
    )
  elseif reply.merged == true then
    vim.notify("heph: saved, merged with a change made elsewhere")
  elseif reply.restored == true then
    vim.notify(("heph: %s saved; it had been deleted, and your edit brought it back"):format(M.quote(H.short(state.title or state.id))))
  else
    local tasks = created > 0 and (", %d task%s created"):format(created, created == 1 and "" or "s") or ""
    vim.notify(("heph: %s saved%s"):format(M.quote(H.short(state.title or state.id)), tasks))
  end
  if failed then
    vim.notify(failed, vim.log.levels.WARN)
  end
  vim.api.nvim_exec_autocmds("User", { pattern = "HephSaved", modeline = false, data = { id = state.id } })
  M.refresh_others(buf)
end

---What a list save sends: the buffer lines that are not a shown line kept
---as it was, with their line numbers, and of the shown lines those not
---kept as they were, plus those whose id a sent line holds (a line copied
---and edited). The sidecar plans line by line and id by id, so this plans
---what the whole buffer would, from a few lines: a save after one toggle
---in a 4,000-line list sends one line and one base line.
---@param lines string[] the buffer
---@param base heph.Base
---@return {lines: string[], numbers: integer[], base: string[]} params
---@return integer[] blank line numbers of blank lines (dropped after the save)
function H.changed_lines(lines, base)
  local at = {}
  for i, text in ipairs(base.lines) do
    at[text] = i
  end
  ---@type table<integer, integer> base index → buffer line number
  local kept = {}
  local sent, blank = {}, {}
  for n, text in ipairs(lines) do
    local i = at[text]
    if i and not kept[i] then
      kept[i] = n
    elseif text:find("%S") then
      sent[#sent + 1] = n
    else
      blank[#blank + 1] = n
    end
  end
  -- Any "/<id>" of a sent line: more than the sidecar reads as ids, never less.
  local ids, foreign = {}, false
  for _, n in ipairs(sent) do
    local id = lines[n]:match("/([A-Za-z0-9_-]+)")
    if id then
      ids[id] = true
      foreign = true
    end
  end
  local out = { lines = {}, numbers = {}, base = {} }
  local wanted = {}
  for i, text in ipairs(base.lines) do
    if not kept[i] then
      wanted[i] = true
      local id = M.line_id(text)
      if id and ids[id] then
        ids[id] = nil
      end
    end
  end
  -- An id of a sent line whose shown line is still there, unchanged: that
  -- line is sent too (the sidecar then sees the id twice).
  foreign = foreign and next(ids) ~= nil
  if foreign then
    for i, n in pairs(kept) do
      local id = M.line_id(base.lines[i])
      if id and ids[id] then
        wanted[i] = true
        sent[#sent + 1] = n
      end
    end
    table.sort(sent)
  end
  for i, text in ipairs(base.lines) do
    if wanted[i] then
      out.base[#out.base + 1] = text
    end
  end
  for _, n in ipairs(sent) do
    out.lines[#out.lines + 1] = lines[n]
    out.numbers[#out.numbers + 1] = n
  end
  return out, blank
end

---After a save that sent only its changed lines, when nothing else had
---changed the replica since the list was shown: shows each sent line as
---the list renders it now (or drops it when it left the list) and drops
---blank lines; every other line is what the list renders and stays as it
---is, and so does the cursor.
---@param buf integer
---@param params {lines: string[], numbers: integer[]}
---@param blank integer[]
---@param reply table list_apply's reply with `shown`
function H.show_saved(buf, params, blank, reply)
  ---@type table<integer, string|false>
  local edits = {}
  local order = {}
  local count = vim.api.nvim_buf_line_count(buf)
  for k, n in ipairs(params.numbers) do
    -- A line sent beyond the buffer (see H.left) has no line to show.
    if n <= count then
      local text = H.val(reply.shown[k])
      edits[n] = text or false
      order[#order + 1] = n
    end
  end
  for _, n in ipairs(blank) do
    edits[n] = false
    order[#order + 1] = n
  end
  table.sort(order, function(a, b)
    return a > b
  end)
  local was = vim.bo[buf].modifiable
  vim.bo[buf].modifiable = true
  local joined, left = false, {}
  vim.api.nvim_buf_call(buf, function()
    -- Part of the user's last change, so that `u` undoes the edit and
    -- what the save showed of it together: a new line goes with its id
    -- (undoing only the hidden id would make the next :w recreate the
    -- task). Refused right after an undo, when there is nothing to join.
    joined = pcall(vim.cmd.undojoin)
    -- Bottom up, so the line numbers below a change stay right.
    for _, n in ipairs(order) do
      local text = edits[n]
      if text == false then
        local typed = vim.api.nvim_buf_get_lines(buf, n - 1, n, false)[1]
        if typed and M.line_id(typed) then
          table.insert(left, typed)
        end
        vim.api.nvim_buf_set_lines(buf, n - 1, n, false, {})
      else
        -- Set only when it differs (what the user typed is often what the
        -- list renders), so marks on the line stay.
        if text ~= vim.api.nvim_buf_get_lines(buf, n - 1, n, false)[1] then
          vim.api.nvim_buf_set_lines(buf, n - 1, n, false, { text })
        end
      end
    end
  end)
  vim.bo[buf].modifiable = was
  vim.bo[buf].modified = false
  -- Kept past later saves (the save after `u` joins nothing): it names
  -- one undo state, the one this save left.
  if joined and #left > 0 then
    H.left[buf] = { seq = H.change_number(buf), lines = left }
  end
  H.set_base(buf, { lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false), seq = H.val(reply.seq) })
end

---Lines a list save took out of the buffer as part of the user's change
---(a task ticked done leaves an open-task list), with the undo state that
---save left. `u` brings such a line back; `<C-r>` takes it out again, with
---the tick: saved then, that state means the tick, not a delete.
---@type table<integer, {seq: integer, lines: string[]}>
H.left = {}

---The buffer's undo state: the number of its current change (what
---`undotree().seq_cur` says, without building the whole tree, which grows
---with every change a long session makes).
---@param buf integer
---@return integer
function H.change_number(buf)
  return vim.api.nvim_buf_call(buf, vim.fn.changenr)
end

---The ids of the item lines of `lines`.
---@param lines string[]
---@return table<string, true>
function H.line_ids(lines)
  local ids = {}
  for _, line in ipairs(lines) do
    local id = M.line_id(line)
    if id then
      ids[id] = true
    end
  end
  return ids
end

---Adds to a save's `params` (H.changed_lines) the lines a save took out
---of the buffer, as the user last had them, when the buffer is back at the
---undo state that save left (`<C-r>` after `u` and a save that showed the
---lines again) and lacks them: they go beyond the buffer's last line.
---@param buf integer
---@param params {lines: string[], numbers: integer[], base: string[]}
---@param count integer the buffer's line count
function H.add_left_lines(buf, params, count)
  local left = H.left[buf]
  if not left or H.change_number(buf) ~= left.seq then
    return
  end
  -- A shown line gone from the buffer is among the base lines sent, and
  -- its id among no sent line (see H.changed_lines): no walk of the list.
  local gone = H.line_ids(params.base)
  for id in pairs(H.line_ids(params.lines)) do
    gone[id] = nil
  end
  for _, line in ipairs(left.lines) do
    if gone[M.line_id(line)] then
      table.insert(params.lines, line)
      table.insert(params.numbers, count + #params.lines)
    end
  end
end

---What a list save tells: how many changes, and how many deleted tasks an
---edited line brought back (deleted elsewhere meanwhile, or undone).
---@param changes {action: string}[]
---@return string
function H.list_saved_message(changes)
  if #changes == 0 then
    return "heph: nothing changed"
  end
  local restored = #vim.tbl_filter(function(c)
    return H.val(c.action) == "restore"
  end, changes)
  local back = restored > 0
      and (" (%d deleted task%s brought back)"):format(restored, restored == 1 and "" or "s")
    or ""
  return ("heph: %d change%s saved%s"):format(#changes, #changes == 1 and "" or "s", back)
end

---What heph last showed of the items of sent lines this list did not
---show (a line brought back by `u` after a save took it out, a line
---yanked from another list): the line as that save sent it, or as the
---other list shows it. The save then changes only what was edited on the
---line since, not every field changed elsewhere meanwhile.
---@param buf integer
---@param params {lines: string[], base: string[]}
---@return string[]
function H.known_lines(buf, params)
  -- A sent line's id the list shows has its shown line among the base
  -- lines sent with it (see H.changed_lines): no walk of the whole list.
  local shown = H.line_ids(params.base)
  local wanted = {}
  for _, line in ipairs(params.lines) do
    local id = M.line_id(line)
    if id and not shown[id] then
      wanted[id] = true
    end
  end
  if next(wanted) == nil then
    return {}
  end
  local known = {}
  local function take(line)
    local id = M.line_id(line)
    if id and wanted[id] then
      wanted[id] = nil
      table.insert(known, line)
    end
  end
  for _, line in ipairs(H.left[buf] and H.left[buf].lines or {}) do
    take(line)
  end
  for other, other_base in pairs(H.bases) do
    local state = other ~= buf and vim.api.nvim_buf_is_valid(other) and M.state(other)
    if state and state.kind == "list" and next(wanted) ~= nil then
      for _, line in ipairs(other_base.lines) do
        take(line)
      end
    end
  end
  return known
end

---@param buf integer
---@param state heph.BufState
---@param lines string[] the buffer's lines
function H.write_list(buf, state, lines)
  local base = H.bases[buf] or { lines = {} }
  local params, blank = H.changed_lines(lines, base)
  H.add_left_lines(buf, params, #lines)
  params.known = H.known_lines(buf, params)
  params.query = state.query
  params.seq = base.seq or 0
  -- Without a fingerprint the sidecar applies a plan that deletes
  -- nothing at once, and answers `confirm` with the plan otherwise. The
  -- plan the user confirms is the plan applied: when a touched task
  -- changed in between, the sidecar answers `stale` and we ask again.
  local ok, reply = pcall(rpc.request, "list_apply", params)
  if not ok then
    return H.save_failed(buf, reply)
  end
  for _ = 1, 3 do
    if reply.ok then
      vim.diagnostic.reset(M.ns, buf)
      if reply.shown then
        H.show_saved(buf, params, blank, reply)
      else
        -- The whole list again, with what changed elsewhere: `u` must not
        -- take that out (the next :w would delete a task it never saw).
        H.refresh_lines(buf, reply.lines, true)
        H.set_base(buf, { lines = reply.lines, seq = H.val(reply.seq) })
      end
      vim.notify(H.list_saved_message(reply.changes))
      vim.api.nvim_exec_autocmds("User", { pattern = "HephSaved", modeline = false, data = { query = state.query } })
      M.refresh_others(buf)
      return
    end
    vim.diagnostic.reset(M.ns, buf)
    if not M.confirm(reply.changes) then
      vim.notify("heph: nothing saved", vim.log.levels.INFO)
      return
    end
    params.fingerprint = reply.fingerprint
    ok, reply = pcall(rpc.request, "list_apply", params)
    if not ok then
      return H.save_failed(buf, reply)
    end
  end
  vim.notify("heph: the list keeps changing while saving; nothing saved, try again", vim.log.levels.WARN)
end

---BufWriteCmd for heph://*: synchronous, so :wq waits for it.
---@param buf integer
---@param target? string the name written to (`:w heph://…` names another)
function M.write(buf, target)
  local state = M.state(buf)
  if not state then
    -- Not loaded from heph (a read that failed, or a plain buffer written
    -- under a heph:// name): there is no node to save to, and `:edit`
    -- alone would not reload it, so say what each way out does.
    vim.notify(
      "heph: not saved: this buffer was not loaded from heph; :saveas {file} keeps its text in a file, :edit! loads the node and drops this text",
      vim.log.levels.ERROR
    )
    return
  end
  -- The write of a `:saveas` whose rename was refused (H.keep_name).
  if H.rename_refused[buf] then
    return
  end
  -- A buffer saves to its own node or list only: writing it to another
  -- one's name would save it to its own under that name.
  if target and target ~= vim.api.nvim_buf_get_name(buf) then
    vim.notify(
      ("heph: not saved: a heph buffer saves only to itself (:w); %s is another one"):format(target),
      vim.log.levels.WARN
    )
    return
  end
  if H.saving then
    vim.notify("heph: a save is already running", vim.log.levels.WARN)
    return
  end
  -- Bytes that are no UTF-8 (a file read with another encoding, a paste)
  -- would reach the sidecar as no text at all: each line is named here.
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local bad = {}
  for i, line in ipairs(lines) do
    if not H.valid_utf8(line) then
      table.insert(bad, { line = i, message = "not valid UTF-8 (bytes no character has): fix or delete them" })
    end
  end
  if #bad > 0 then
    return H.show_errors(buf, bad)
  end
  H.saving = true
  local ok, err = pcall(function()
    if state.kind == "node" then
      H.write_node(buf, state, lines)
    elseif state.kind == "list" then
      H.write_list(buf, state, lines)
    end
  end)
  H.saving = false
  if not ok then
    vim.notify("heph: not saved: " .. tostring(err):gsub("^heph: ", ""), vim.log.levels.WARN)
  end
end

---Whether `text` is well-formed UTF-8, as the sidecar reads text (no
---overlong forms, no surrogates, nothing past U+10FFFF).
---@param text string
---@return boolean
function H.valid_utf8(text)
  -- A byte loop (compiled by LuaJIT): a pattern with a byte class took
  -- 10 ms over a list of 3,800 lines, a third of a save.
  local i, n = 1, #text
  while i <= n do
    local c = text:byte(i)
    local len, lo, hi = 1, 0x80, 0xBF
    if c >= 0x80 then
      if c >= 0xC2 and c <= 0xDF then
        len = 2
      elseif c >= 0xE0 and c <= 0xEF then
        len = 3
        lo = c == 0xE0 and 0xA0 or 0x80
        hi = c == 0xED and 0x9F or 0xBF
      elseif c >= 0xF0 and c <= 0xF4 then
        len = 4
        lo = c == 0xF0 and 0x90 or 0x80
        hi = c == 0xF4 and 0x8F or 0xBF
      else
        return false
      end
      if i + len - 1 > n then
        return false
      end
      -- The first continuation byte has the narrower range.
      local b = text:byte(i + 1)
      if b < lo or b > hi then
        return false
      end
      for j = i + 2, i + len - 1 do
        b = text:byte(j)
        if b < 0x80 or b > 0xBF then
          return false
        end
      end
    end
    i = i + len
  end
  return true
end

M._valid_utf8 = H.valid_utf8

---Names of heph buffers being renamed (BufFilePre), for M.renamed.
---@type table<integer, string>
H.old_names = {}
---Buffers being given their name back, whose rename events are ours.
---@type table<integer, boolean>
H.renaming_back = {}
---Buffers whose rename to another heph buffer's name was refused in the
---command now running: the write of a `:saveas` writes nothing.
---@type table<integer, boolean>
H.rename_refused = {}

---BufFilePre of a heph buffer: its name before the rename.
---@param buf integer
function M.renaming(buf)
  H.old_names[buf] = vim.api.nvim_buf_get_name(buf)
end

---A heph buffer renamed to another heph buffer's name (`:file`,
---`:saveas heph://node/B` in A) would show A's text under B's name, and
---save it to A: it gets its own name back.
---@param buf integer
---@param old string
---@param new string
function H.keep_name(buf, old, new)
  -- After the command: `:saveas` goes on with the buffer Vim made for the
  -- old name, which a rename now would wipe. Its write, meanwhile, writes
  -- nothing (M.write).
  H.rename_refused[buf] = true
  vim.schedule(function()
    H.rename_refused[buf] = nil
    if vim.api.nvim_buf_is_valid(buf) then
      H.renaming_back[buf] = true
      pcall(vim.api.nvim_buf_set_name, buf, old)
      H.renaming_back[buf] = nil
    end
  end)
  vim.notify(
    ("heph: %s keeps its name: %s is another heph buffer (open it with :edit %s); nothing was renamed or saved"):format(
      old,
      new,
      new
    ),
    vim.log.levels.WARN
  )
end

---BufFilePost: a heph buffer renamed to a file (`:saveas`, `:file`) is that
---file from now on, written like any file (an acwrite buffer without a
---BufWriteCmd for its name cannot be written at all); its node keeps what
---was last saved to it.
---@param buf integer
function M.renamed(buf)
  local name = vim.api.nvim_buf_get_name(buf)
  local old = H.old_names[buf]
  H.old_names[buf] = nil
  if not M.state(buf) or H.renaming_back[buf] then
    return
  end
  if M.parse_name(name) then
    if old and name ~= old then
      H.keep_name(buf, old, name)
    end
    return
  end
  vim.b[buf].heph = nil
  vim.b[buf].heph_title = nil
  H.bases[buf] = nil
  H.promoted[buf] = nil
  H.left[buf] = nil
  vim.diagnostic.reset(M.ns, buf)
  vim.bo[buf].buftype = ""
end

---BufModifiedSet: a node buffer told that its node changed elsewhere while
---it had edits, and now back to unmodified (`u` to the saved text), shows
---the node as it is now: nothing else would reload it until the next
---change, and it would show stale text as if current.
---@param buf integer
function M.modified_set(buf)
  local state = M.state(buf)
  if not state or state.kind ~= "node" or not state.warned or vim.bo[buf].modified then
    return
  end
  vim.schedule(function()
    local now = vim.api.nvim_buf_is_valid(buf) and M.state(buf)
    if now and now.warned and not vim.bo[buf].modified then
      M.reload(buf)
    end
  end)
end

---Reloads a heph buffer from the replica when unmodified; warns otherwise.
---@param buf integer
function M.reload(buf)
  local state = M.state(buf)
  if not state then
    return
  end
  if vim.bo[buf].modified then
    if state.kind ~= "node" or state.warned == "deleted" then
      return
    end
    -- A delete elsewhere is said as such: :w then brings the node back
    -- with your edits, there is nothing to merge with.
    local got, node = pcall(rpc.request, "node_get", { id = state.id })
    local why = got and H.val(node.deleted) == true and "deleted" or "changed"
    if state.warned == why then
      return
    end
    state.warned = why
    H.set_state(buf, state)
    -- Named as users know it: by its title (as it is now).
    local title = got and H.val(node.title)
    local name = title and title ~= "" and M.quote(title) or vim.api.nvim_buf_get_name(buf)
    vim.notify(
      why == "deleted"
          and ("heph: %s was deleted elsewhere; your unsaved edits are kept and :w brings it back with them (:e! shows it deleted instead)"):format(name)
        or ("heph: %s changed elsewhere; your unsaved edits are kept and :w merges them with it (:e! loads the new version instead)"):format(name),
      vim.log.levels.WARN
    )
    return
  end
  local view = vim.api.nvim_get_current_buf() == buf and vim.fn.winsaveview() or nil
  M.read(buf)
  if view then
    pcall(vim.fn.winrestview, view)
  end
end

---Re-renders a list or home buffer from the replica when it is unmodified
---(on BufEnter, after writes and pulls), keeping the cursor.
---@param buf integer
function M.refresh(buf)
  local state = M.state(buf)
  if not state or (state.kind ~= "list" and state.kind ~= "home") or vim.bo[buf].modified then
    return
  end
  pcall(function()
    if state.kind == "list" then
      H.read_list(buf, state.query)
    else
      H.read_home(buf)
    end
  end)
end

---Re-renders the other list and home buffers shown in a window.
---@param except? integer
function M.refresh_others(except)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if buf ~= except and vim.api.nvim_buf_is_loaded(buf) and #vim.fn.win_findbuf(buf) > 0 then
      M.refresh(buf)
    end
  end
end

---A heph:// buffer with nothing loaded from heph is read now: a restored
---session makes its heph buffers as empty ones (`:mksession` writes
---buffers with 'buftype' set that way), and Neovim makes an empty buffer
---for `nvim heph://…` when heph loads lazily, after the file was read.
---One the user typed into is left alone.
---@param buf integer
function M.revive(buf)
  if
    not vim.api.nvim_buf_is_valid(buf)
    or not vim.api.nvim_buf_is_loaded(buf)
    or M.state(buf)
    or H.just_read[buf]
    or vim.bo[buf].modified
    or not vim.api.nvim_buf_get_name(buf):match("^heph://")
  then
    return
  end
  vim.api.nvim_buf_call(buf, function()
    M.read(buf)
  end)
end

---BufEnter of a heph buffer: lists and home show the replica as it is now;
---node buffers reload when their node changed.
---@param buf integer
function M.entered(buf)
  -- The BufEnter that follows a read consumes its mark.
  if H.just_read[buf] then
    H.just_read[buf] = nil
  else
    M.refresh(buf)
  end
  M.check_versions()
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
    if vim.api.nvim_buf_is_loaded(buf) then
      H.tell_stale_list(buf, ids or {})
      M.refresh(buf)
    end
  end
end

---A list with unsaved edits is not shown again when sync changes items it
---shows (that would drop the edits): its user is told instead.
---@param buf integer
---@param ids string[]
function H.tell_stale_list(buf, ids)
  local state = M.state(buf)
  local base = H.bases[buf]
  if not state or state.kind ~= "list" or not vim.bo[buf].modified or not base then
    return
  end
  local shown = {}
  for _, line in ipairs(base.lines or {}) do
    local id = M.line_id(line)
    if id then
      shown[id] = true
    end
  end
  local stale = vim.tbl_filter(function(id)
    return shown[id] == true
  end, ids)
  if #stale == 0 then
    return
  end
  vim.notify(
    ("heph: %d item(s) of %s changed elsewhere while you edit it: :w saves only the lines you changed, "
      .. "then shows the list as it is; :edit! drops your edits and shows it now"):format(
      #stale,
      state.title or vim.api.nvim_buf_get_name(buf)
    ),
    vim.log.levels.WARN
  )
end

---The id on a list or home line, if any.
---@param line string
---@return string|nil
function M.line_id(line)
  return line:match("^/([A-Za-z0-9_-]+) ")
end

---Follows the item or [[link]] under the cursor; `lhs` (`gf`, `<CR>`)
---falls back to Vim's own when there is neither.
---@param buf integer
---@param lhs? string
function M.follow(buf, lhs)
  local line = vim.api.nvim_get_current_line()
  local id = M.line_id(line)
  if id then
    return H.guard(function()
      M.open_node(id)
    end)
  end
  -- `+name (N open)`; a name may hold spaces.
  local project = line:match("^%+(.-) %(%d+ open%)%s*$") or line:match("^%+(%S+)")
  if project and (M.state(buf) or {}).kind == "home" then
    return H.guard(function()
      M.open_list("project:" .. project)
    end)
  end
  if line:find("[[", 1, true) and line:find("]]", 1, true) then
    local col = vim.api.nvim_win_get_cursor(0)[2]
    return H.guard(function()
      local reply = rpc.request("resolve_link", { target = line, col = col })
      if H.val(reply.journal) then
        M.open_journal(reply.journal)
      elseif H.val(reply.id) then
        M.open_node(reply.id)
      elseif H.val(reply.title) then
        vim.notify(("heph: no node titled %s; create it with :Heph new %s"):format(M.quote(reply.title), reply.title), vim.log.levels.WARN)
      end
    end)
  end
  if lhs == "gf" then
    local ok, err = pcall(vim.cmd.normal, { "gf", bang = true })
    if not ok then
      vim.notify((tostring(err):gsub("^Vim%(normal%):", "")), vim.log.levels.ERROR)
    end
  elseif lhs == "<CR>" then
    vim.cmd.normal({ vim.v.count1 .. "\r", bang = true })
  end
end

return M

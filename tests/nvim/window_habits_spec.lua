-- What a Neovim user's habits do to heph buffers: sessions, lazy loading,
-- command modifiers, 'nohidden', :bufdo, :syntax on, narrow windows.
local h = require("helpers")
local buffers = require("heph.buffers")

---The message texts of `seen`, one per line (for assertion messages).
---@param seen {msg: string}[]
---@return string
local function texts(seen)
  return table.concat(
    vim.tbl_map(function(n)
      return n.msg
    end, seen),
    "\n"
  )
end

describe("window habits", function()
  before_each(function()
    h.fresh()
    vim.cmd("silent! tabonly | silent! only")
    vim.o.hidden = true
  end)

  it("a restored session shows its heph buffers loaded and saveable", function()
    vim.cmd("Heph today")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "written before the session was saved" })
    vim.cmd.write()
    local day = buffers.state(0).journal_date
    local id = h.add({ "--kind", "note", "Session note" })
    vim.cmd.vsplit()
    buffers.open_node(id)
    local session = vim.fn.tempname() .. ".vim"
    vim.cmd("mksession! " .. vim.fn.fnameescape(session))
    vim.cmd("silent! only | silent! %bwipeout!")

    vim.cmd("silent source " .. vim.fn.fnameescape(session))
    local journal = vim.fn.bufnr("heph://journal/" .. day)
    local note = vim.fn.bufnr(buffers.node_name(id))
    assert.is_true(journal > 0 and note > 0, vim.inspect(vim.fn.getbufinfo()))
    h.wait(function()
      return buffers.state(journal) ~= nil and buffers.state(note) ~= nil
    end)
    local text = table.concat(vim.api.nvim_buf_get_lines(journal, 0, -1, false), "\n")
    assert.truthy(text:find("written before the session was saved", 1, true), text)
    assert.are.equal("acwrite", vim.bo[note].buftype)
    -- And it saves as any heph buffer does.
    vim.api.nvim_buf_call(note, function()
      vim.api.nvim_buf_set_lines(0, -1, -1, false, { "after the restore" })
      vim.cmd.write()
    end)
    assert.truthy(h.show(id).body:find("after the restore", 1, true))
    os.remove(session)
  end)

  it("a heph buffer made before heph could read it is read when entered", function()
    local id = h.add({ "--kind", "note", "Made early", "--body", "the body" })
    -- What Neovim makes for `nvim heph://node/ID` when heph loads lazily:
    -- a plain, empty buffer of that name.
    local buf = vim.api.nvim_create_buf(true, false)
    vim.api.nvim_buf_set_name(buf, buffers.node_name(id))
    assert.is_nil(buffers.state(buf))
    vim.api.nvim_set_current_buf(buf)
    h.wait(function()
      return buffers.state(buf) ~= nil
    end)
    assert.truthy(table.concat(h.lines(), "\n"):find("the body", 1, true))
    -- One the user typed into is left as typed.
    local typed = vim.api.nvim_create_buf(true, false)
    vim.api.nvim_buf_set_name(typed, "heph://list/notes")
    vim.api.nvim_buf_set_lines(typed, 0, -1, false, { "my own text" })
    vim.api.nvim_set_current_buf(typed)
    vim.wait(100)
    assert.is_nil(buffers.state(typed))
    assert.are.same({ "my own text" }, h.lines())
  end)

  it("a task command that cannot leave an unsaved buffer creates nothing, and a split works", function()
    vim.o.hidden = false
    vim.cmd.enew()
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { "unsaved scratch" })
    local seen = h.notifications(function()
      vim.cmd("Heph task Buy milk @tomorrow")
    end)
    assert.truthy(texts(seen):find("nothing created", 1, true), texts(seen))
    assert.falsy(texts(seen):find("buffers.lua", 1, true), texts(seen))
    assert.falsy((h.cli({ "list", "--all" })):find("Buy milk", 1, true))
    assert.are.same({ "unsaved scratch" }, h.lines())

    seen = h.notifications(function()
      vim.cmd("vertical Heph task Buy milk @tomorrow")
    end)
    assert.are.equal(0, #seen, texts(seen))
    assert.are.equal(2, #vim.api.nvim_tabpage_list_wins(0))
    assert.are.equal("task", buffers.state(0).node_kind)
    local _, count = (h.cli({ "list", "--all" })):gsub("Buy milk", "")
    assert.are.equal(1, count)
    -- Opening a list from the scratch window is refused in plain words.
    vim.cmd.wincmd("p")
    local scratch = vim.api.nvim_get_current_buf()
    seen = h.notifications(function()
      vim.cmd("Heph next")
    end)
    assert.truthy(texts(seen):find("^heph: this window's buffer has unsaved changes"), texts(seen))
    -- `:hide` asks for what it says: the scratch buffer is hidden, kept.
    seen = h.notifications(function()
      vim.cmd("hide Heph next")
    end)
    assert.are.equal(0, #seen, texts(seen))
    assert.are.equal("heph://list/next", vim.api.nvim_buf_get_name(0))
    assert.are.same({ "unsaved scratch" }, vim.api.nvim_buf_get_lines(scratch, 0, -1, false))
    vim.bo[scratch].modified = false
    -- 'hidden' does not hide a buffer whose 'bufhidden' unloads it.
    vim.o.hidden = true
    vim.cmd.enew()
    vim.bo.bufhidden = "wipe"
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { "wiped when left" })
    seen = h.notifications(function()
      vim.cmd("Heph new Not made")
    end)
    assert.truthy(texts(seen):find("nothing created", 1, true), texts(seen))
    assert.falsy((h.cli({ "list", "--all" })):find("Not made", 1, true))
    vim.bo.modified = false
  end)

  it(":tab and :topleft open heph buffers where they ask; home stays out of :ls", function()
    vim.cmd("tab Heph home")
    assert.are.equal(2, vim.fn.tabpagenr("$"))
    assert.are.equal("heph://home", vim.api.nvim_buf_get_name(0))
    assert.is_false(vim.bo.buflisted)
    vim.cmd("topleft Heph next")
    assert.are.equal(2, #vim.api.nvim_tabpage_list_wins(0))
    assert.are.equal("heph://list/next", vim.api.nvim_buf_get_name(0))
    assert.are.equal(1, vim.fn.winnr())
    -- :bufdo passes home by (it stopped there with E21).
    local file = vim.fn.tempname()
    vim.fn.writefile({ "alpha" }, file)
    vim.cmd.edit(file)
    vim.cmd("silent bufdo %s/alpha/beta/ge | update")
    assert.are.same({ "beta" }, vim.fn.readfile(file))
  end)

  it("the same command in a list with unsaved edits keeps them", function()
    h.add({ "One task" })
    vim.cmd("Heph list")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "[ ] typed, not saved" })
    local seen = h.notifications(function()
      vim.cmd("Heph list")
    end)
    assert.are.equal(0, #seen, texts(seen))
    assert.is_true(vim.bo.modified)
    assert.are.equal("[ ] typed, not saved", h.lines()[#h.lines()])
  end)

  it("home follows a project whose name has spaces", function()
    h.add({ "Spacey", "--project", "my project" })
    vim.cmd("Heph home")
    local row
    for i, line in ipairs(h.lines()) do
      if line:match("^%+my project") then
        row = i
      end
    end
    assert.is_not_nil(row, table.concat(h.lines(), "\n"))
    vim.api.nvim_win_set_cursor(0, { row, 0 })
    buffers.follow(vim.api.nvim_get_current_buf())
    assert.are.equal("heph://list/project:my project", vim.api.nvim_buf_get_name(0))
    assert.truthy(table.concat(h.lines(), "\n"):find("Spacey", 1, true))
  end)

  it("list windows do not wrap, and :syntax on keeps the ids hidden", function()
    h.add({ "A task whose title is long enough to wrap in a narrow window of forty columns" })
    vim.cmd("Heph next")
    assert.is_false(vim.wo.wrap)
    assert.are.equal("HephListId", vim.fn.synIDattr(vim.fn.synID(1, 1, 0), "name"))
    vim.cmd("syntax on")
    assert.are.equal("HephListId", vim.fn.synIDattr(vim.fn.synID(1, 1, 0), "name"))
    -- The window's next file wraps again.
    vim.cmd.enew()
    assert.is_true(vim.wo.wrap)
  end)

  it("the status line says when the sidecar has stopped", function()
    h.add({ "anything" })
    vim.cmd("Heph next")
    require("heph.sync").set_status({ state = "synced" })
    assert.are.equal("heph ✓", require("heph").statusline())
    local seen, stop = h.capture_notifications()
    vim.uv.kill(require("heph.rpc").pid(), "sigkill")
    h.wait(function()
      return require("heph").statusline() == "heph stopped"
    end)
    stop()
    assert.are.equal("heph stopped", require("heph").statusline(), texts(seen))
  end)

  it("a journal that cannot open for another reason than its date says that reason", function()
    local seen = h.notifications(function()
      vim.cmd("Heph journal someday-maybe")
    end)
    assert.truthy(texts(seen):find('no such day "someday-maybe"', 1, true), texts(seen))
    require("heph.rpc").stop()
    require("heph").setup({ cmd = { "/nonexistent/heph" }, data_dir = h.data_dir })
    seen = h.notifications(function()
      vim.cmd("Heph today")
    end)
    assert.falsy(texts(seen):find("no such day", 1, true), texts(seen))
    assert.truthy(texts(seen):find("/nonexistent/heph", 1, true), texts(seen))
  end)

  it("a subcommand without arguments refuses one instead of ignoring it", function()
    local seen = h.notifications(function()
      vim.cmd("Heph today 2026-01-01")
    end)
    assert.truthy(texts(seen):find(":Heph today takes no argument (:Heph journal DATE", 1, true), texts(seen))
    assert.falsy(vim.api.nvim_buf_get_name(0):match("^heph://"))
  end)

  it("a join token typed at the prompt leaves the input history", function()
    local input = vim.ui.input
    vim.ui.input = function(_, on_confirm)
      -- As the built-in prompt does with what was typed.
      vim.fn.histadd("@", "secret-join-token")
      on_confirm("secret-join-token")
    end
    local seen, stop = h.capture_notifications()
    require("heph.login").join("http://127.0.0.1:9")
    vim.ui.input = input
    -- The join's answer comes later (nothing listens on port 9).
    h.wait(function()
      return texts(seen):find("cannot reach", 1, true) ~= nil
    end)
    stop()
    for i = 1, vim.fn.histnr("@") do
      assert.are_not.equal("secret-join-token", vim.fn.histget("@", i))
    end
  end)
end)

-- :Heph subcommands as a first-day user meets them.
local h = require("helpers")
local buffers = require("heph.buffers")

local function listed_heph_buffers()
  return vim.tbl_filter(function(b)
    return vim.bo[b].buflisted and vim.api.nvim_buf_get_name(b):match("^heph://")
  end, vim.api.nvim_list_bufs())
end

local function titles(args)
  return vim.tbl_map(function(n)
    return n.title
  end, vim.json.decode((h.cli(args))))
end

describe(":Heph commands", function()
  before_each(function()
    h.fresh()
  end)

  it("done on a note is refused", function()
    local id = h.add({ "--kind", "note", "Idea" })
    buffers.open_node(id)
    local seen = h.notifications(function()
      vim.cmd("Heph done")
    end)
    assert.are.equal(1, #seen)
    assert.truthy(seen[1].msg:match("only tasks"), seen[1].msg)
    assert.are.equal(vim.NIL, h.show(id).status)
  end)

  it("journal with an impossible date: one message, no buffer", function()
    local seen = h.notifications(function()
      vim.cmd("Heph journal 2026-02-30")
    end)
    vim.wait(50)
    assert.are.equal(1, #seen, vim.inspect(seen))
    assert.is_nil(seen[1].msg:match("stack traceback"))
    assert.are.equal(0, #listed_heph_buffers())
  end)

  it("open of an unknown id: one message, no buffer", function()
    local seen = h.notifications(function()
      vim.cmd("Heph open nonexistent")
    end)
    vim.wait(50)
    assert.are.equal(1, #seen, vim.inspect(seen))
    assert.truthy(seen[1].msg:match("nonexistent"))
    assert.are.equal(0, #listed_heph_buffers())
  end)

  it("open takes a title", function()
    local id = h.add({ "--kind", "note", "Garden plan" })
    vim.cmd("Heph open Garden plan")
    assert.are.equal(id, buffers.state(0).id)
  end)

  it("open takes a link as written, a day's link, and a unique id prefix", function()
    local id = h.add({ "--kind", "note", "Garden plan" })
    vim.cmd("Heph open [[Garden plan]]")
    assert.are.equal(id, buffers.state(0).id)
    vim.cmd("Heph open [[2026-12-01]]")
    assert.are.equal("heph://journal/2026-12-01", vim.api.nvim_buf_get_name(0))
    local other = h.add({ "--kind", "note", "Other" })
    -- The shortest prefix that tells the two apart.
    local n = 4
    while id:sub(1, n) == other:sub(1, n) do
      n = n + 1
    end
    vim.cmd("Heph open " .. id:sub(1, n))
    assert.are.equal(id, buffers.state(0).id)
    -- A prefix both share names neither.
    local seen = h.notifications(function()
      vim.cmd("Heph open " .. id:sub(1, n - 1))
    end)
    assert.are.equal(id, buffers.state(0).id)
    assert.truthy(seen[1].msg:find("give more of it", 1, true), vim.inspect(seen))
  end)

  it("a buffer that cannot load leaves nothing in :ls", function()
    h.notifications(function()
      vim.cmd.edit("heph://node/nonexistent")
    end)
    vim.wait(50)
    assert.are.equal(0, #listed_heph_buffers())
  end)

  it("a past day's journal is created by its first save, not by looking", function()
    vim.cmd("Heph journal 2026-01-02")
    assert.are.equal("heph://journal/2026-01-02", vim.api.nvim_buf_get_name(0))
    assert.are.same({}, titles({ "list", "--all", "--json" }))
    -- Nothing to delete or restore yet, and each says so.
    for _, cmd in ipairs({ "delete", "restore" }) do
      local seen = h.notifications(function()
        vim.cmd("Heph " .. cmd)
      end)
      assert.truthy(seen[1] and seen[1].msg:find("never saved; there is nothing to " .. cmd, 1, true), vim.inspect(seen))
    end
    vim.cmd("enew")
    vim.cmd("bwipeout! heph://journal/2026-01-02")
    assert.are.same({}, titles({ "list", "--all", "--json" }))
    vim.cmd("Heph journal 2026-01-02")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "wrote something" })
    vim.cmd.write()
    assert.are.equal("wrote something\n", h.show("journal-2026-01-02").body)
  end)

  it("journal next and prev count days as the calendar does, any year", function()
    for _, step in ipairs({
      { "0999-12-31", "next", "1000-01-01" },
      { "2028-02-28", "next", "2028-02-29" },
      { "2100-03-01", "prev", "2100-02-28" },
    }) do
      vim.cmd("Heph journal " .. step[1])
      vim.cmd("Heph journal " .. step[2])
      assert.are.equal("heph://journal/" .. step[3], vim.api.nvim_buf_get_name(0))
    end
    vim.cmd("Heph journal 0001-01-01")
    local seen = h.notifications(function()
      vim.cmd("Heph journal prev")
    end)
    assert.are.equal("heph://journal/0001-01-01", vim.api.nvim_buf_get_name(0))
    assert.truthy(seen[1] and seen[1].msg:find("invalid date", 1, true), vim.inspect(seen))
  end)

  it("heph://journal/today is the buffer of today's date", function()
    vim.cmd("Heph today")
    local today = vim.api.nvim_buf_get_name(0)
    assert.truthy(today:match("^heph://journal/%d%d%d%d%-%d%d%-%d%d$"), today)
    vim.cmd.edit("heph://journal/today")
    assert.is_true(h.wait(function()
      return vim.api.nvim_buf_get_name(0) == today
    end, 1000), vim.api.nvim_buf_get_name(0))
    assert.are.equal(1, #listed_heph_buffers())
  end)

  it("heph://node/journal-DATE and heph://journal/DATE are one buffer", function()
    vim.cmd.edit("heph://node/journal-2026-01-03")
    assert.is_true(h.wait(function()
      return vim.api.nvim_buf_get_name(0) == "heph://journal/2026-01-03"
    end, 1000), vim.api.nvim_buf_get_name(0))
    vim.cmd("Heph journal 2026-01-03")
    assert.are.equal(1, #listed_heph_buffers())
    assert.are.equal("journal-2026-01-03", buffers.state(0).id)
  end)

  it("journal next and prev move between days", function()
    vim.cmd("Heph journal 2026-03-01")
    vim.cmd("Heph journal prev")
    assert.are.equal("heph://journal/2026-02-28", vim.api.nvim_buf_get_name(0))
    vim.cmd("Heph journal next")
    vim.cmd("Heph journal next")
    assert.are.equal("heph://journal/2026-03-02", vim.api.nvim_buf_get_name(0))
    assert.are.same({}, titles({ "list", "--all", "--json" }))
  end)

  it("task reads the list-line grammar", function()
    vim.cmd("Heph task Buy bread @tomorrow +home #shop")
    local node = h.show(buffers.state(0).id)
    assert.are.equal("Buy bread", node.title)
    assert.are.equal("home", node.project)
    assert.are.same({ "shop" }, node.tags)
    local tomorrow = os.date("%Y-%m-%d", os.time() + 86400)
    assert.are.equal(tomorrow, node.due)
  end)

  it("notes lists notes; a deleted line deletes after confirming", function()
    local keep = h.add({ "--kind", "note", "Keep me" })
    local drop = h.add({ "--kind", "note", "Drop me" })
    h.add({ "A task" })
    vim.cmd("Heph notes")
    assert.are.equal(2, #h.lines())
    local asked
    buffers.confirm = function(changes)
      asked = changes
      return true
    end
    for i, line in ipairs(h.lines()) do
      assert.is_nil(line:match("%[ %]"), "a note has no checkbox: " .. line)
      if line:match("Drop me") then
        vim.api.nvim_buf_set_lines(0, i - 1, i, false, {})
      end
    end
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "Brand new note" })
    vim.cmd.write()
    assert.truthy(asked)
    assert.is_true(h.show(drop).deleted)
    assert.is_false(h.show(keep).deleted)
    local notes = vim.tbl_filter(function(n)
      return n.kind == "note" and not n.deleted
    end, vim.json.decode((h.cli({ "list", "--all", "--json" }))))
    assert.are.equal(2, #notes)
  end)

  it("a checkbox on a note line is an error, not a hidden status", function()
    local id = h.add({ "--kind", "note", "Idea" })
    vim.cmd("Heph notes")
    vim.api.nvim_buf_set_lines(0, 0, 1, false, { "/" .. id .. " [x] Idea" })
    h.notifications(function()
      vim.cmd.write()
    end)
    assert.are.equal(vim.NIL, h.show(id).status)
    assert.is_true(vim.bo.modified)
  end)

  it("delete deletes the node of the buffer after confirming", function()
    local id = h.add({ "--kind", "note", "Old note" })
    buffers.open_node(id)
    buffers.confirm = function()
      return true
    end
    vim.cmd("Heph delete")
    assert.is_true(h.show(id).deleted)
  end)

  it("restore of a live node and delete of a node deleted meanwhile write no op", function()
    local id = h.add({ "--kind", "note", "Kept" })
    local function ops()
      return #vim.split(vim.trim((h.cli({ "export-ops" }))), "\n")
    end
    buffers.open_node(id)
    local before = ops()
    local seen = h.notifications(function()
      vim.cmd("Heph restore")
    end)
    assert.are.equal(before, ops())
    assert.truthy(seen[#seen].msg:find("not deleted", 1, true), vim.inspect(seen))
    -- Deleted elsewhere (another Neovim, the CLI) while the buffer is open.
    h.cli({ "rm", id })
    before = ops()
    buffers.confirm = function()
      return true
    end
    seen = h.notifications(function()
      vim.cmd("Heph delete")
    end)
    assert.are.equal(before, ops())
    assert.are.equal(1, #seen)
    assert.truthy(seen[1].msg:find("this node is deleted", 1, true), vim.inspect(seen))
    assert.is_true(h.show(id).deleted)
    -- A restore that restores says so.
    seen = h.notifications(function()
      vim.cmd("Heph restore")
    end)
    assert.is_false(h.show(id).deleted)
    assert.truthy(seen[#seen].msg:find('"Kept" restored', 1, true), vim.inspect(seen))
  end)

  it("delete of a buffer with unsaved edits says it drops them", function()
    local id = h.add({ "--kind", "note", "Old note" })
    buffers.open_node(id)
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "an unsaved line" })
    local asked
    buffers.confirm = function(changes)
      asked = changes[1].summary
      return false
    end
    h.notifications(function()
      vim.cmd("Heph delete")
    end)
    assert.are.equal('delete "Old note", and drop your unsaved edits', asked)
    assert.is_false(h.show(id).deleted)
    assert.is_true(vim.bo.modified)
  end)

  it("list all means what heph list --all means", function()
    h.add({ "A task" })
    h.add({ "--kind", "note", "A note" })
    vim.cmd("Heph list all")
    assert.are.equal(#titles({ "list", "--all", "--json" }), #h.lines())
  end)
end)

describe("buffer names", function()
  before_each(function()
    h.fresh()
  end)

  it("b:heph_title names a buffer by its title, kept up to date", function()
    local id = h.add({ "Buy milk" })
    buffers.open_node(id)
    assert.are.equal("Buy milk [task]", vim.b.heph_title)
    local lines = h.lines()
    lines[2] = "title: Buy oat milk"
    vim.api.nvim_buf_set_lines(0, 0, -1, false, lines)
    vim.cmd.write()
    assert.are.equal("Buy oat milk [task]", vim.b.heph_title)
    vim.cmd("Heph journal 2026-01-04")
    assert.are.equal("journal 2026-01-04", vim.b.heph_title)
    vim.cmd("Heph next")
    assert.are.equal("Next tasks", vim.b.heph_title)
  end)
end)

describe("saving a node", function()
  before_each(function()
    h.fresh()
  end)

  it("says one short line on success", function()
    local id = h.add({ "Buy milk" })
    buffers.open_node(id)
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "two litres" })
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    assert.are.equal(1, #seen)
    assert.truthy(seen[1].msg:match("saved"), seen[1].msg)
    assert.is_nil(seen[1].msg:find("\n"))
  end)

  it("a header error is one warning (no 'Error detected…'), and :wq does not quit", function()
    local id = h.add({ "Buy milk" })
    buffers.open_node(id)
    vim.api.nvim_buf_set_lines(0, 3, 4, false, { "status: maybe" })
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    assert.are.equal(1, #seen)
    assert.are.equal(vim.log.levels.WARN, seen[1].level)
    assert.truthy(seen[1].msg:match("not saved"))
    assert.is_nil(seen[1].msg:find("\n"))
    assert.is_true(vim.bo.modified)
  end)
end)

describe("promote", function()
  before_each(function()
    h.fresh()
  end)

  local function open_note(body)
    local id = h.add({ "--kind", "note", "--body=" .. body, "Plans" })
    buffers.open_node(id)
    return id
  end

  it("ignores header lines", function()
    open_note("- call mum\n")
    vim.cmd("%Heph promote")
    local lines = h.lines()
    assert.are.equal("title: Plans", lines[2])
    assert.are.equal("- [[call mum]]", lines[#lines])
  end)

  it("is refused in a task buffer", function()
    local id = h.add({ "A task" })
    buffers.open_node(id)
    local seen = h.notifications(function()
      vim.cmd("$Heph promote")
    end)
    assert.truthy(seen[1].msg:match("note and journal"))
    assert.are.equal(1, #titles({ "list", "--json" }))
  end)

  it("creates its tasks on save: undo, then save, leaves none", function()
    open_note("- call mum\n")
    vim.cmd("$Heph promote")
    assert.are.same({}, titles({ "list", "--json" }))
    vim.cmd("undo")
    vim.cmd.write()
    assert.are.same({}, titles({ "list", "--json" }))
  end)

  it(":q! after promote leaves no task", function()
    open_note("- call mum\n")
    vim.cmd("$Heph promote")
    vim.cmd("enew!")
    vim.cmd("bwipeout! heph://*")
    assert.are.same({}, titles({ "list", "--json" }))
  end)

  it("in a journal not saved yet", function()
    vim.cmd("Heph journal 2026-01-05")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "- [ ] ring the bank" })
    vim.cmd("$Heph promote")
    vim.cmd.write()
    assert.are.same({ "ring the bank" }, titles({ "list", "--json" }))
    assert.are.equal("- [[ring the bank]]\n", h.show("journal-2026-01-05").body)
  end)
end)

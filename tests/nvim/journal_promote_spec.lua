local h = require("helpers")

---:Heph delete of the current buffer, the confirmation answered yes.
local function delete_confirmed()
  local buffers = require("heph.buffers")
  local confirm = buffers.confirm
  buffers.confirm = function()
    return true
  end
  h.notifications(function()
    vim.cmd("Heph delete")
  end)
  buffers.confirm = confirm
end

describe("journal", function()
  before_each(function()
    h.fresh()
  end)

  it("today twice is one node", function()
    vim.cmd("Heph today")
    local first = require("heph.buffers").state(0).id
    vim.cmd("write")
    vim.cmd("enew")
    vim.cmd("Heph today")
    assert.are.equal(first, require("heph.buffers").state(0).id)
    vim.cmd("write")
    local all = vim.json.decode((h.cli({ "list", "--all", "--json" })))
    assert.are.equal(1, #all)
    assert.are.equal("journal", all[1].kind)
    assert.are.equal(os.date("%Y-%m-%d"), all[1].title)
  end)

  it("a deleted day's page starts again empty; its first :w brings it back with only the new text", function()
    vim.cmd("Heph today")
    local id = require("heph.buffers").state(0).id
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "old thoughts" })
    for i, line in ipairs(h.lines()) do
      if line:match("^tags:") then
        vim.api.nvim_buf_set_lines(0, i - 1, i, false, { "tags: oldtag" })
      end
    end
    vim.cmd("write")
    assert.are.same({ "oldtag" }, h.show(id).tags)
    delete_confirmed()
    assert.is_true(h.show(id).deleted)
    vim.cmd("enew")
    vim.cmd("Heph today")
    assert.are.equal(id, require("heph.buffers").state(0).id)
    assert.is_nil(table.concat(h.lines(), "\n"):find("old thoughts", 1, true), vim.inspect(h.lines()))
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "a fresh start" })
    local seen = h.notifications(function()
      vim.cmd("write")
    end)
    assert.truthy(seen[#seen].msg:match("brought it back"), vim.inspect(seen))
    local node = h.show(id)
    assert.is_false(node.deleted)
    assert.are.equal("a fresh start\n", node.body)
    assert.are.same({}, node.tags)
  end)

  it("an unedited :w of a deleted day's empty page brings the page back empty", function()
    vim.cmd("Heph today")
    local id = require("heph.buffers").state(0).id
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "old thoughts" })
    vim.cmd("write")
    h.cli({ "rm", id })
    vim.cmd("enew")
    vim.cmd("Heph today")
    local seen = h.notifications(function()
      vim.cmd("write")
    end)
    for _, n in ipairs(seen) do
      assert.are_not.equal(vim.log.levels.ERROR, n.level, n.msg)
    end
    assert.is_false(h.show(id).deleted)
    assert.are.equal("", h.show(id).body)
  end)

  it("a deleted day's page, opened empty, comes back whole with :Heph restore", function()
    vim.cmd("Heph today")
    local id = require("heph.buffers").state(0).id
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "worth keeping" })
    vim.cmd("write")
    delete_confirmed()
    vim.cmd("enew")
    vim.cmd("Heph today")
    assert.is_nil(table.concat(h.lines(), "\n"):find("worth keeping", 1, true))
    local seen = h.notifications(function()
      vim.cmd("Heph restore")
    end)
    assert.truthy(seen[#seen].msg:match("restored"), vim.inspect(seen))
    assert.is_false(h.show(id).deleted)
    assert.truthy(table.concat(h.lines(), "\n"):find("worth keeping", 1, true), vim.inspect(h.lines()))
    assert.are.equal("worth keeping\n", h.show(id).body)
  end)

  it("a journal for a given date", function()
    vim.cmd("Heph journal 2026-01-02")
    assert.are.equal("journal-2026-01-02", require("heph.buffers").state(0).id)
  end)
end)

describe("promote", function()
  before_each(function()
    h.fresh()
  end)

  it("turns lines into tasks and leaves links", function()
    local id = h.add({ "--kind", "note", "--body", "intro\n- call mum\n- [ ] buy bread\n", "Plans" })
    vim.cmd.edit("heph://node/" .. id)
    local lines = h.lines()
    local first = #lines - 1
    vim.cmd(("%d,%dHeph promote"):format(first, #lines))
    lines = h.lines()
    assert.are.equal("- [[call mum]]", lines[#lines - 1])
    assert.are.equal("- [[buy bread]]", lines[#lines])
    vim.cmd.write()
    assert.are.equal("intro\n- [[call mum]]\n- [[buy bread]]\n", h.show(id).body)
    local tasks = vim.json.decode((h.cli({ "list", "--json" })))
    local titles = vim.tbl_map(function(n)
      return n.title
    end, tasks)
    table.sort(titles)
    assert.are.same({ "buy bread", "call mum" }, titles)
    -- gf on a link opens the task.
    vim.api.nvim_win_set_cursor(0, { #lines, 5 })
    vim.cmd("normal gf")
    assert.are.equal("buy bread", h.show(require("heph.buffers").state(0).id).title)
  end)

  it("links a line to the open task of that title instead of making it twice", function()
    local open = h.add({ "buy stamps" })
    local done = h.add({ "post the letter" })
    h.cli({ "done", done })
    local id = h.add({ "--kind", "note", "--body=- [ ] buy stamps\n- [ ] post the letter\n", "Errands" })
    vim.cmd.edit("heph://node/" .. id)
    local lines = h.lines()
    local seen = h.notifications(function()
      vim.cmd(("%d,%dHeph promote"):format(#lines - 1, #lines))
    end)
    assert.truthy(seen[1].msg:find("1 linked to the open task", 1, true), seen[1].msg)
    vim.cmd.write()
    local function titled(title)
      return vim.tbl_filter(function(n)
        return n.title == title
      end, vim.json.decode((h.cli({ "list", "--all", "--json" }))))
    end
    -- The open task is linked, not made again; the done one's line makes
    -- a new, open task, which its link names.
    assert.are.equal(1, #titled("buy stamps"))
    assert.are.equal(2, #titled("post the letter"))
    lines = h.lines()
    vim.api.nvim_win_set_cursor(0, { #lines - 1, 5 })
    vim.cmd("normal gf")
    assert.are.equal(open, require("heph.buffers").state(0).id)
    vim.cmd("buffer #")
    vim.api.nvim_win_set_cursor(0, { #lines, 5 })
    vim.cmd("normal gf")
    local followed = require("heph.buffers").state(0).id
    assert.are_not.equal(done, followed)
    assert.are.equal("todo", h.show(followed).status)
  end)

  it("reads a line's tokens as :Heph task does", function()
    local id = h.add({ "--kind", "note", "--body=- [ ] Pay rent @2027-01-05 +home #bills\n- [x] Renew @2026-13-40\n", "Money" })
    vim.cmd.edit("heph://node/" .. id)
    local lines = h.lines()
    vim.cmd(("%d,%dHeph promote"):format(#lines - 1, #lines))
    lines = h.lines()
    assert.are.equal("- [[Pay rent]]", lines[#lines - 1])
    -- Not a list line (a bad date): the title as written.
    assert.are.equal("- [[Renew @2026-13-40]]", lines[#lines])
    vim.cmd.write()
    local all = vim.json.decode((h.cli({ "list", "--all", "--json" })))
    local by = {}
    for _, n in ipairs(all) do
      by[n.title] = n
    end
    local rent = assert(by["Pay rent"], vim.inspect(all))
    assert.are.equal("2027-01-05", rent.due)
    assert.are.equal("home", rent.project)
    assert.are.same({ "bills" }, rent.tags)
    assert.are.equal("todo", rent.status)
    assert.are.equal("done", assert(by["Renew @2026-13-40"], vim.inspect(all)).status)
  end)

  it("undo, :w, redo, :w: the redone promote makes its task", function()
    local id = h.add({ "--kind", "note", "--body=- call mum\n", "Plans" })
    vim.cmd.edit("heph://node/" .. id)
    vim.cmd("$Heph promote")
    vim.cmd("undo")
    vim.cmd.write()
    assert.are.same({}, vim.json.decode((h.cli({ "list", "--json" }))))
    vim.cmd("redo")
    assert.are.equal("- [[call mum]]", h.lines()[#h.lines()])
    vim.cmd.write()
    local tasks = vim.json.decode((h.cli({ "list", "--json" })))
    assert.are.equal(1, #tasks)
    assert.are.equal("call mum", tasks[1].title)
    -- Made once: later saves make no second one.
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "more" })
    vim.cmd.write()
    assert.are.equal(1, #vim.json.decode((h.cli({ "list", "--json" }))))
  end)

  it("a promoted line whose task came from elsewhere before :w links to it and makes none", function()
    local id = h.add({ "--kind", "note", "--body=- Water plants\n", "Plans" })
    vim.cmd.edit("heph://node/" .. id)
    vim.cmd("$Heph promote")
    -- The same line promoted on another device, synced in before this :w.
    h.add({ "Water plants" })
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    local tasks = vim.json.decode((h.cli({ "list", "--json" })))
    assert.are.equal(1, #tasks, vim.inspect(tasks))
    for _, n in ipairs(seen) do
      assert.falsy(n.msg:find("1 task created", 1, true), n.msg)
    end
  end)

  it(":e! drops a promote not saved yet: a link typed later makes no task", function()
    local id = h.add({ "--kind", "note", "--body=- call mum\n", "Plans" })
    vim.cmd.edit("heph://node/" .. id)
    vim.cmd("$Heph promote")
    vim.cmd("edit!")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "see [[call mum]]" })
    vim.cmd.write()
    assert.are.same({}, vim.json.decode((h.cli({ "list", "--json" }))))
  end)

  it("an undone promote makes no task even where the note links that title elsewhere", function()
    local id = h.add({ "--kind", "note", "--body=See [[Groceries]] later\nGroceries\n", "Plans" })
    vim.cmd.edit("heph://node/" .. id)
    vim.cmd("$Heph promote")
    vim.cmd("undo")
    assert.are.equal("Groceries", h.lines()[#h.lines()])
    vim.cmd.write()
    assert.are.same({}, vim.json.decode((h.cli({ "list", "--json" }))))
    -- Redone, it is made.
    vim.cmd("redo")
    vim.cmd.write()
    assert.are.equal(1, #vim.json.decode((h.cli({ "list", "--json" }))))
  end)

  it("a task that could not be created is not reported as an unsaved note, and the next :w creates it", function()
    local id = h.add({ "--kind", "note", "--body=- call mum\n- buy bread\n", "Plans" })
    vim.cmd.edit("heph://node/" .. id)
    vim.cmd("%Heph promote")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "typed too" })
    -- The replica is busy when the second task is created.
    local rpc = require("heph.rpc")
    local request, creates = rpc.request, 0
    rpc.request = function(method, params)
      if method == "node_create" then
        creates = creates + 1
        if creates == 2 then
          error(setmetatable({ code = "busy", message = "the replica is busy" }, {
            __tostring = function(e)
              return "heph: " .. e.message
            end,
          }), 0)
        end
      end
      return request(method, params)
    end
    local ok, seen = pcall(h.notifications, function()
      vim.cmd.write()
    end)
    rpc.request = request
    assert(ok, seen)
    assert.are.equal("- [[call mum]]\n- [[buy bread]]\ntyped too\n", h.show(id).body)
    assert.is_false(vim.bo.modified)
    local messages = table.concat(vim.tbl_map(function(m)
      return m.msg
    end, seen), "\n")
    assert.falsy(messages:match("not saved"), messages)
    assert.truthy(messages:match("buy bread"), messages)
    assert.are.equal(vim.log.levels.WARN, seen[#seen].level)
    -- The next :w creates the task left behind, and only that one.
    vim.cmd.write()
    local titles = vim.tbl_map(function(n)
      return n.title
    end, vim.json.decode((h.cli({ "list", "--json" }))))
    table.sort(titles)
    assert.are.same({ "buy bread", "call mum" }, titles)
  end)
end)

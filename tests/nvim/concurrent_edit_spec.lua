-- Saves carry their base: a :w never overwrites a change made elsewhere
-- while the buffer was open, and a list save applies only what it showed.
local h = require("helpers")
local buffers = require("heph.buffers")

---The body lines of a node, without the final newline.
local function body_lines(id)
  return vim.split((h.show(id).body:gsub("\n$", "")), "\n", { plain = true })
end

---Replaces the first buffer line equal to `old`.
local function replace_line(old, new)
  for i, line in ipairs(h.lines()) do
    if line == old then
      vim.api.nvim_buf_set_lines(0, i - 1, i, false, { new })
      return
    end
  end
  error("no line " .. old)
end

---Opens the node, types `typed` over its "alpha" line (one undo step),
---and sets its body elsewhere (the CLI) to `body`.
local function typed_then_changed_elsewhere(id, typed, body)
  vim.cmd.edit("heph://node/" .. id)
  replace_line("alpha", typed)
  vim.cmd("let &undolevels = &undolevels")
  local _, code, err = h.cli({ "set", id, "body=" .. body })
  assert.are.equal(0, code, err)
end

describe("a node buffer saved after a change elsewhere", function()
  local id
  before_each(function()
    h.fresh()
    id = h.add({ "--kind", "note", "--body", "alpha\nbravo\ncharlie", "Shared" })
  end)

  it("keeps both edits when they touch different lines", function()
    vim.cmd.edit("heph://node/" .. id)
    replace_line("alpha", "ALPHA from nvim")
    local _, code, err = h.cli({ "set", id, "body=alpha\nbravo\nCHARLIE" })
    assert.are.equal(0, code, err)
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    assert.are.same({ "ALPHA from nvim", "bravo", "CHARLIE" }, body_lines(id))
    assert.is_false(vim.bo.modified)
    -- The buffer shows the merged text, and says it merged.
    assert.is_true(vim.tbl_contains(h.lines(), "CHARLIE"))
    assert.truthy(seen[#seen].msg:match("merged"))
  end)

  it("keeps both sides in one conflict block when they touch the same line", function()
    vim.cmd.edit("heph://node/" .. id)
    replace_line("charlie", "charlie from nvim")
    local _, code = h.cli({ "set", id, "body=alpha\nbravo\ncharlie from the shell" })
    assert.are.equal(0, code)
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    local body = h.show(id).body
    assert.truthy(body:find("charlie from nvim", 1, true), body)
    assert.truthy(body:find("charlie from the shell", 1, true), body)
    local _, blocks = body:gsub("<<<<<<<", "")
    assert.are.equal(1, blocks, body)
    assert.are.same({ "alpha", "bravo" }, vim.list_slice(body_lines(id), 1, 2))
    assert.are.equal(vim.log.levels.WARN, seen[#seen].level)
    assert.truthy(seen[#seen].msg:match("markers"))
  end)

  it("does not write back a header line the user never touched", function()
    vim.cmd.edit("heph://node/" .. id)
    replace_line("bravo", "bravo, edited")
    local _, code = h.cli({ "set", id, "title=Renamed on the phone", "project=elsewhere" })
    assert.are.equal(0, code)
    vim.cmd.write()
    local node = h.show(id)
    assert.are.equal("Renamed on the phone", node.title)
    assert.are.equal("elsewhere", node.project)
    assert.are.same({ "alpha", "bravo, edited", "charlie" }, body_lines(id))
    -- The buffer now shows the rename.
    assert.are.equal("title: Renamed on the phone", h.lines()[2])
  end)

  it("brings the node back when it was deleted elsewhere, as an edit after a delete does", function()
    vim.cmd.edit("heph://node/" .. id)
    local _, code = h.cli({ "rm", id })
    assert.are.equal(0, code)
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "typed meanwhile" })
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    assert.is_false(vim.bo.modified)
    local node = h.show(id)
    assert.is_false(node.deleted)
    assert.are.same({ "alpha", "bravo", "charlie", "typed meanwhile" }, body_lines(id))
    assert.truthy(seen[1].msg:match("deleted elsewhere"), seen[1].msg)
  end)

  it("an unedited :w of a deleted node saves nothing and restores nothing", function()
    assert.are.equal(0, select(2, h.cli({ "rm", id })))
    vim.cmd.edit("heph://node/" .. id)
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    assert.is_true(h.show(id).deleted)
    assert.truthy(seen[1].msg:match(":Heph restore"), seen[1].msg)
  end)

  it("u after a merged save never takes out the change from elsewhere", function()
    typed_then_changed_elsewhere(id, "ALPHA from nvim", "alpha\nbravo\nCHARLIE")
    h.notifications(function()
      vim.cmd.write()
    end)
    vim.cmd("silent! undo")
    assert.is_true(vim.tbl_contains(h.lines(), "CHARLIE"), vim.inspect(h.lines()))
    h.notifications(function()
      vim.cmd.write()
    end)
    assert.are.same({ "ALPHA from nvim", "bravo", "CHARLIE" }, body_lines(id))
  end)

  it("u after a reload never brings back the text the reload replaced", function()
    vim.cmd.edit("heph://node/" .. id)
    replace_line("alpha", "ALPHA from nvim")
    vim.cmd("let &undolevels = &undolevels")
    h.notifications(function()
      vim.cmd.write()
    end)
    local _, code, err = h.cli({ "set", id, "title=Renamed in the shell", "body=ALPHA from nvim\nbravo\nCHARLIE" })
    assert.are.equal(0, code, err)
    buffers.check_versions()
    assert.is_true(vim.tbl_contains(h.lines(), "CHARLIE"), vim.inspect(h.lines()))
    vim.cmd("silent! undo")
    assert.is_true(vim.tbl_contains(h.lines(), "CHARLIE"), vim.inspect(h.lines()))
    h.notifications(function()
      vim.cmd.write()
    end)
    assert.are.same({ "ALPHA from nvim", "bravo", "CHARLIE" }, body_lines(id))
    assert.are.equal("Renamed in the shell", h.show(id).title)
  end)

  it("a buffer undone back to its saved text after a change elsewhere shows the change", function()
    typed_then_changed_elsewhere(id, "typed, then undone", "alpha\nbravo\nCHARLIE")
    h.notifications(function()
      buffers.check_versions()
    end)
    assert.is_true(vim.bo.modified)
    vim.cmd("undo")
    assert.is_false(vim.bo.modified)
    -- Neovim fires it from its main loop, which this harness never enters.
    vim.api.nvim_exec_autocmds("BufModifiedSet", { buffer = 0 })
    assert.is_true(h.wait(function()
      return vim.tbl_contains(h.lines(), "CHARLIE")
    end, 2000), vim.inspect(h.lines()))
    assert.is_false(vim.bo.modified)
  end)

  it("a second save after a merge is an ordinary edit", function()
    vim.cmd.edit("heph://node/" .. id)
    replace_line("alpha", "A")
    h.cli({ "set", id, "body=alpha\nbravo\nC" })
    h.notifications(function()
      vim.cmd.write()
    end)
    replace_line("bravo", "B")
    vim.cmd.write()
    assert.are.same({ "A", "B", "C" }, body_lines(id))
  end)
end)

describe("a journal shown before it existed", function()
  before_each(function()
    h.fresh()
  end)

  it("keeps what was written to that day elsewhere meanwhile", function()
    vim.cmd("Heph journal 2026-11-20")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "from the laptop" })
    -- Meanwhile the day's journal is written elsewhere (the CLI, a sync).
    local id = vim.trim((h.cli({ "journal", "2026-11-20" })))
    assert.are.equal(0, select(2, h.cli({ "set", id, "body=from the phone" })))
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    local body = h.show(id).body
    assert.truthy(body:find("from the phone", 1, true), body)
    assert.truthy(body:find("from the laptop", 1, true), body)
    assert.is_false(vim.bo.modified)
    assert.truthy(table.concat(h.lines(), "\n"):find("from the phone", 1, true))
    assert.truthy(seen[#seen].msg:match("merged"), seen[#seen].msg)
  end)

  it("is not made by a save refused for its header; the next good save makes it", function()
    vim.cmd("Heph journal 2026-12-11")
    local lines = h.lines()
    local row = vim.fn.index(lines, "title: 2026-12-11")
    assert.is_true(row >= 0, vim.inspect(lines))
    vim.api.nvim_buf_set_lines(0, row, row + 1, false, { "titl: 2026-12-11" })
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "an idea" })
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    assert.truthy(seen[#seen].msg:find("not saved", 1, true), vim.inspect(seen))
    local _, code = h.cli({ "show", "journal-2026-12-11" })
    assert.are_not.equal(0, code)
    assert.is_true(vim.bo.modified)
    vim.api.nvim_buf_set_lines(0, row, row + 1, false, { "title: 2026-12-11" })
    vim.cmd.write()
    assert.are.equal("an idea\n", h.show("journal-2026-12-11").body)
    assert.is_false(vim.bo.modified)
  end)
end)

describe("a list save", function()
  local asked
  before_each(function()
    h.fresh()
    asked = {}
    buffers.confirm = function(changes)
      table.insert(asked, changes)
      return true
    end
  end)

  it("never deletes a task that arrived while the list was open", function()
    local one = h.add({ "--project", "P", "one" })
    h.add({ "--project", "P", "two" })
    vim.cmd.edit("heph://list/project:P")
    assert.are.equal(2, #h.lines())
    replace_line("/" .. one .. " [ ] one +P", "/" .. one .. " [x] one +P")
    local arrived = h.add({ "--project", "P", "arrived meanwhile" })
    vim.cmd.write()
    assert.are.same({}, asked, "a toggle needs no confirmation")
    assert.are.equal("done", h.show(one).status)
    assert.is_false(h.show(arrived).deleted)
    assert.are.equal("todo", h.show(arrived).status)
    -- The list now shows it.
    assert.truthy(table.concat(h.lines(), "\n"):find("arrived meanwhile", 1, true))
  end)

  it("in the limited next list, an earlier task arriving deletes nothing", function()
    local ids = {}
    for i = 1, 50 do
      ids[i] = h.add({ "--due", ("2027-01-%02d"):format((i % 28) + 1), "task " .. i })
    end
    vim.cmd.edit("heph://list/next")
    assert.are.equal(50, #h.lines())
    local first = h.lines()[1]
    vim.api.nvim_buf_set_lines(0, 0, 1, false, { (first:gsub("%[ %]", "[x]")) })
    local early = h.add({ "--due", "2026-12-01", "urgent, arrived meanwhile" })
    vim.cmd.write()
    assert.are.same({}, asked)
    assert.is_false(h.show(early).deleted)
    for _, id in ipairs(ids) do
      assert.is_false(h.show(id).deleted)
    end
  end)

  it("applies only the fields the user edited on a line", function()
    local id = h.add({ "--project", "P", "write report" })
    vim.cmd.edit("heph://list/project:P")
    -- Meanwhile the phone adds a tag and a due date.
    h.cli({ "set", id, "tags=urgent", "due=2026-12-24" })
    replace_line("/" .. id .. " [ ] write report +P", "/" .. id .. " [ ] write the report +P")
    vim.cmd.write()
    local node = h.show(id)
    assert.are.equal("write the report", node.title)
    assert.are.same({ "urgent" }, node.tags)
    assert.are.equal("2026-12-24", node.due)
  end)

  it("asks again when a task it deletes changed after the plan was shown", function()
    local id = h.add({ "doomed" })
    h.add({ "kept" })
    vim.cmd.edit("heph://list/tasks")
    buffers.confirm = function(changes)
      table.insert(asked, changes)
      if #asked == 1 then
        -- Another process renames it while the question is open.
        h.cli({ "set", id, "title=doomed, renamed" })
      end
      return true
    end
    replace_line("/" .. id .. " [ ] doomed", nil)
    vim.cmd.write()
    assert.are.equal(2, #asked)
    assert.are.equal("delete", asked[1][1].action)
    assert.truthy(asked[2][1].summary:match("changed elsewhere"), asked[2][1].summary)
    assert.is_true(h.show(id).deleted)
  end)

  it("saves titles that look like tokens unchanged", function()
    local email = h.add({ "--project", "P", "Email @alice about +budget" })
    local bug = h.add({ "--project", "P", "Fix bug #42" })
    local spaced = h.add({ "--project", "my big project", "Plan the offsite" })
    local other = h.add({ "--project", "P", "other" })
    vim.cmd.edit("heph://list/tasks")
    replace_line("/" .. other .. " [ ] other +P", "/" .. other .. " [x] other +P")
    vim.cmd.write()
    assert.are.same({}, vim.diagnostic.get(0, { namespace = buffers.ns }))
    assert.are.equal("done", h.show(other).status)
    assert.are.equal("Email @alice about +budget", h.show(email).title)
    assert.are.equal("P", h.show(email).project)
    assert.are.equal("Fix bug #42", h.show(bug).title)
    assert.are.same({}, h.show(bug).tags)
    assert.are.equal("my big project", h.show(spaced).project)
    assert.are.equal("Plan the offsite", h.show(spaced).title)
  end)

  ---Shows a list of two tasks, then deletes the first elsewhere.
  ---@return string gone, string kept
  local function list_then_delete_elsewhere()
    local gone = h.add({ "Alpha" })
    local kept = h.add({ "Beta" })
    vim.cmd.edit("heph://list/tasks")
    assert.are.equal(0, select(2, h.cli({ "rm", gone })))
    return gone, kept
  end

  it("an edited line of a task deleted elsewhere brings it back; the other edits land", function()
    local gone, kept = list_then_delete_elsewhere()
    replace_line("/" .. gone .. " [ ] Alpha", "/" .. gone .. " [ ] Alpha renamed")
    replace_line("/" .. kept .. " [ ] Beta", "/" .. kept .. " [x] Beta")
    local seen = h.notifications(function()
      vim.cmd.write()
    end)
    assert.is_false(vim.bo.modified)
    assert.is_false(h.show(gone).deleted)
    assert.are.equal("Alpha renamed", h.show(gone).title)
    assert.are.equal("done", h.show(kept).status)
    assert.truthy(seen[1].msg:match("brought back"), seen[1].msg)
  end)

  it("an unedited line of a task deleted elsewhere leaves it deleted", function()
    local gone, kept = list_then_delete_elsewhere()
    replace_line("/" .. kept .. " [ ] Beta", "/" .. kept .. " [x] Beta")
    vim.cmd.write()
    assert.is_true(h.show(gone).deleted)
    assert.are.equal("done", h.show(kept).status)
  end)

  it("a line of a task the list no longer shows applies as the edit it is", function()
    local id = h.add({ "undo me" })
    vim.cmd.edit("heph://list/tasks")
    local line = h.lines()[1]
    vim.api.nvim_buf_set_lines(0, 0, 1, false, { (line:gsub("%[ %]", "[x]")) })
    vim.cmd.write()
    assert.are.equal("done", h.show(id).status)
    assert.are.equal(0, #vim.tbl_filter(function(l)
      return l ~= ""
    end, h.lines()))
    -- Put the original line back (as undo would) and save: un-done.
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { line })
    vim.cmd.write()
    assert.are.equal("todo", h.show(id).status)
  end)
end)

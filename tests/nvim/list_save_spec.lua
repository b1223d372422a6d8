-- A list save sends only the lines that changed (and the shown lines they
-- concern), and renders only those again: the plan is still the plan of
-- the whole buffer against what the list rendered.
local h = require("helpers")
local buffers = require("heph.buffers")
local rpc = require("heph.rpc")

describe("a list save of changed lines only", function()
  local ids, sent, asked, request
  before_each(function()
    h.fresh()
    ids = {}
    for i, title in ipairs({ "alpha", "beta", "gamma", "delta", "epsilon" }) do
      ids[i] = h.add({ "--due", ("2026-12-0%d"):format(i), title })
    end
    sent, asked = {}, {}
    buffers.confirm = function(changes)
      table.insert(asked, changes)
      return true
    end
    request = rpc.request
    rpc.request = function(method, params)
      if method == "list_apply" then
        table.insert(sent, vim.deepcopy(params))
      end
      return request(method, params)
    end
  end)
  after_each(function()
    rpc.request = request
  end)

  ---@param pattern string
  ---@return integer
  local function row_of(pattern)
    for i, line in ipairs(h.lines()) do
      if line:find(pattern) then
        return i
      end
    end
    error("no line matching " .. pattern)
  end

  it("sends one line for one toggle, and the task leaves the list", function()
    vim.cmd.edit("heph://list/tasks")
    local before = h.lines()
    vim.api.nvim_buf_set_lines(0, 2, 3, false, { (before[3]:gsub("%[ %]", "[x]")) })
    vim.cmd.write()
    assert.are.equal("done", h.show(ids[3]).status)
    assert.are.same({ (before[3]:gsub("%[ %]", "[x]")) }, sent[1].lines)
    assert.are.same({ 3 }, sent[1].numbers)
    assert.are.same({ before[3] }, sent[1].base)
    assert.are.same({ before[1], before[2], before[4], before[5] }, h.lines())
    assert.is_false(vim.bo.modified)
    -- What the buffer shows is the new base: saving again sends nothing.
    vim.cmd.write()
    assert.are.same({}, sent[2].lines)
    assert.are.same({}, sent[2].base)
    assert.are.equal("done", h.show(ids[3]).status)
  end)

  it("u, :w, <C-r>, :w after a tick ticks the task again, and deletes nothing", function()
    vim.cmd.edit("heph://list/tasks")
    local row = row_of("beta")
    local col = h.lines()[row]:find("[ ]", 1, true)
    vim.api.nvim_win_set_cursor(0, { row, col })
    vim.cmd("normal! rx")
    vim.cmd.write()
    assert.are.equal("done", h.show(ids[2]).status)
    vim.cmd("silent undo")
    vim.cmd.write()
    assert.are.equal("todo", h.show(ids[2]).status)
    vim.cmd("silent redo")
    assert.is_nil(table.concat(h.lines(), "\n"):find("beta", 1, true))
    vim.cmd.write()
    assert.are.same({}, asked, "nothing to confirm: nothing is deleted")
    assert.is_false(h.show(ids[2]).deleted)
    assert.are.equal("done", h.show(ids[2]).status)
    assert.is_false(vim.bo.modified)
  end)

  it("keeps a new line where it was typed, with its id", function()
    vim.cmd.edit("heph://list/tasks")
    vim.api.nvim_buf_set_lines(0, 1, 1, false, { "[ ] zeta +home" })
    vim.cmd.write()
    local line = h.lines()[2]
    local id = line:match("^/([%w_-]+) %[ %] zeta %+home$")
    assert.truthy(id, line)
    assert.are.equal("zeta", h.show(id).title)
    assert.are.equal(6, #h.lines())
    -- A rename of the new line is then an edit of that task.
    vim.api.nvim_buf_set_lines(0, 1, 2, false, { (line:gsub("zeta", "zeta two")) })
    vim.cmd.write()
    assert.are.equal("zeta two", h.show(id).title)
    assert.are.same({}, asked)
  end)

  it("shows what the list renders for a line typed loosely", function()
    vim.cmd.edit("heph://list/tasks")
    local line = h.lines()[4]
    vim.api.nvim_buf_set_lines(0, 3, 4, false, { "   " .. line:gsub("@2026%-12%-04", "@2026-12-24") .. "  " })
    vim.cmd.write()
    assert.are.equal("2026-12-24", h.show(ids[4]).due)
    assert.are.equal(line:gsub("@2026%-12%-04", "@2026-12-24"), h.lines()[4])
  end)

  it("finds a copied and edited line: the same item twice, at its buffer line", function()
    vim.cmd.edit("heph://list/tasks")
    local copy = h.lines()[2]:gsub("beta", "beta copy")
    vim.api.nvim_buf_set_lines(0, 4, 4, false, { copy })
    h.notifications(function()
      vim.cmd.write()
    end)
    local diags = vim.diagnostic.get(0, { namespace = buffers.ns })
    assert.are.equal(1, #diags)
    assert.are.equal(4, diags[1].lnum)
    assert.truthy(diags[1].message:match("twice"), diags[1].message)
    assert.are.equal("beta", h.show(ids[2]).title)
    assert.is_true(vim.bo.modified)
  end)

  it("marks a bad line at its buffer line", function()
    vim.cmd.edit("heph://list/tasks")
    vim.api.nvim_buf_set_lines(0, 3, 4, false, { "[ ] bad @2026-13-40" })
    h.notifications(function()
      vim.cmd.write()
    end)
    local diags = vim.diagnostic.get(0, { namespace = buffers.ns })
    assert.are.equal(1, #diags)
    assert.are.equal(3, diags[1].lnum)
    assert.is_false(h.show(ids[4]).deleted)
  end)

  it("marks a title too long for a task, and a checkbox on a new note, at their lines", function()
    vim.cmd.edit("heph://list/tasks")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "[ ] " .. ("x"):rep(5000) })
    h.notifications(function()
      vim.cmd.write()
    end)
    local diags = vim.diagnostic.get(0, { namespace = buffers.ns })
    assert.are.same({ 5, true }, { diags[1] and diags[1].lnum, diags[1].message:find("longer than") ~= nil })
    assert.is_true(vim.bo.modified)

    vim.cmd.edit("heph://list/notes")
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "[x] Read later" })
    h.notifications(function()
      vim.cmd.write()
    end)
    diags = vim.diagnostic.get(0, { namespace = buffers.ns })
    assert.truthy(diags[1] and diags[1].message:find("which has no status", 1, true), vim.inspect(diags))
    assert.is_true(vim.bo.modified)
    assert.are.same({}, vim.json.decode((h.cli({ "list", "notes", "--json" }))))
  end)

  it("counts a long plan in its confirmation instead of listing it whole", function()
    local changes = {}
    for i = 1, 1000 do
      changes[i] = { action = i <= 990 and "delete" or "update", summary = ("delete %q"):format("task " .. i) }
    end
    local text = buffers.confirm_text(changes)
    assert.are.equal(22, #vim.split(text, "\n"), text)
    assert.truthy(text:find("… 980 more; in all: 990 delete, 10 update", 1, true), text)
    assert.truthy(buffers.confirm_text({ changes[1] }):find('delete "task 1"', 1, true))
  end)

  it("confirms exactly the deleted task, then applies the confirmed plan", function()
    vim.cmd.edit("heph://list/tasks")
    local lines = h.lines()
    vim.api.nvim_buf_set_lines(0, 0, 1, false, { (lines[1]:gsub("%[ %]", "[x]")) })
    vim.api.nvim_buf_set_lines(0, 3, 4, false, {})
    vim.cmd.write()
    assert.are.equal(1, #asked)
    local listed = vim.tbl_map(function(c)
      return c.action .. ": " .. c.summary
    end, asked[1])
    assert.are.same({ 'complete: "alpha": mark done', 'delete: delete "delta"' }, listed)
    assert.is_true(h.show(ids[4]).deleted)
    assert.are.equal("done", h.show(ids[1]).status)
    assert.is_false(h.show(ids[5]).deleted)
    assert.are.same({ lines[2], lines[3], lines[5] }, h.lines())
  end)

  it("says which deleted task changed elsewhere since the list was shown", function()
    vim.cmd.edit("heph://list/tasks")
    h.cli({ "set", ids[5], "title=epsilon, renamed" })
    vim.api.nvim_buf_set_lines(0, row_of("epsilon") - 1, row_of("epsilon"), false, {})
    vim.api.nvim_buf_set_lines(0, row_of("gamma") - 1, row_of("gamma"), false, {})
    vim.cmd.write()
    local summaries = vim.tbl_map(function(c)
      return c.summary
    end, asked[1])
    assert.are.same({
      'delete "gamma"',
      'delete "epsilon, renamed" (changed elsewhere since the list was shown)',
    }, summaries)
  end)

  it("renders the whole list again when the replica changed meanwhile", function()
    vim.cmd.edit("heph://list/tasks")
    h.cli({ "set", ids[2], "title=beta, renamed" })
    vim.api.nvim_buf_set_lines(0, 0, 1, false, { (h.lines()[1]:gsub("%[ %]", "[x]")) })
    vim.cmd.write()
    assert.are.equal(4, #h.lines())
    assert.truthy(h.lines()[1]:match("beta, renamed"), h.lines()[1])
    assert.are.equal("beta, renamed", h.show(ids[2]).title)
  end)

  it("moving a line and toggling another touches only the toggled task", function()
    vim.cmd.edit("heph://list/tasks")
    local lines = h.lines()
    local before = rpc.request("versions", { ids = ids }).versions
    vim.api.nvim_buf_set_lines(0, 0, -1, false, {
      lines[5],
      lines[1],
      (lines[2]:gsub("%[ %]", "[/]")),
      lines[3],
      lines[4],
    })
    vim.cmd.write()
    assert.are.equal("doing", h.show(ids[2]).status)
    local after = rpc.request("versions", { ids = ids }).versions
    for i, id in ipairs(ids) do
      if i ~= 2 then
        assert.are.equal(before[id], after[id])
      end
    end
    assert.are_not.equal(before[ids[2]], after[ids[2]])
    assert.are.equal(lines[5], h.lines()[1])
    assert.truthy(h.lines()[3]:match("%[/%] beta"))
  end)
end)

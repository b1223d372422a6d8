local h = require("helpers")
local buffers = require("heph.buffers")

describe("list buffer", function()
  local a, b, c
  before_each(function()
    h.fresh()
    a = h.add({ "--due", "2026-12-01", "alpha" })
    b = h.add({ "--due", "2026-12-02", "beta" })
    c = h.add({ "--due", "2026-12-03", "gamma" })
  end)

  it("shows one task per line with a concealed id", function()
    vim.cmd.edit("heph://list/tasks")
    local lines = h.lines()
    assert.are.equal(3, #lines)
    assert.are.equal("/" .. a .. " [ ] alpha @2026-12-01", lines[1])
    assert.are.equal(3, vim.wo.conceallevel)
    local id_syntax = vim.fn.synIDattr(vim.fn.synID(1, 2, 0), "name")
    assert.are.equal("HephListId", id_syntax)
  end)

  it("colours field words only where they set fields, after the title", function()
    vim.cmd.edit("heph://list/tasks")
    local function group(line, text)
      local col = assert(vim.fn.getline(line):find(text, 1, true), text)
      return vim.fn.synIDattr(vim.fn.synID(line, col, 0), "name")
    end
    vim.api.nvim_buf_set_lines(0, 0, -1, false, {
      "[ ] Alpha #y more words",
      "[ ] Beta more #y @2030-01-01 +my\\ project",
    })
    assert.are.equal("", group(1, "#y"))
    assert.are.equal("HephListMeta", group(2, "#y"))
    assert.are.equal("HephListMeta", group(2, "@2030"))
    assert.are.equal("HephListMeta", group(2, "project"))
  end)

  it("renames, completes, adds, deletes (after confirming) and ignores reordering", function()
    vim.cmd.edit("heph://list/tasks")
    local lines = h.lines()
    local asked
    buffers.confirm = function(changes)
      asked = changes
      return true
    end
    vim.api.nvim_buf_set_lines(0, 0, -1, false, {
      (lines[2]:gsub("%[ %]", "[x]")),
      (lines[1]:gsub("alpha", "alpha renamed")),
      "[ ] delta +work #new",
    })
    vim.cmd.write()
    assert.is_false(vim.bo.modified)
    -- The confirmation listed exactly the four changes, the delete by name.
    local listed = vim.tbl_map(function(c)
      return c.action .. ": " .. c.summary
    end, asked)
    table.sort(listed)
    assert.are.same({
      "complete: \"beta\": mark done",
      "create: create \"delta\"",
      "delete: delete \"gamma\"",
      "update: \"alpha\": rename to \"alpha renamed\"",
    }, listed)
    assert.are.equal("alpha renamed", h.show(a).title)
    assert.are.equal("done", h.show(b).status)
    assert.is_true(h.show(c).deleted)
    local all = vim.json.decode((h.cli({ "list", "--json" })))
    local titles = vim.tbl_map(function(n)
      return n.title
    end, all)
    assert.is_true(vim.tbl_contains(titles, "delta"))
    -- The list re-renders from the replica: the done task left "tasks".
    assert.are.equal(2, #h.lines())
  end)

  it("saves nothing when a delete is not confirmed", function()
    vim.cmd.edit("heph://list/tasks")
    buffers.confirm = function()
      return false
    end
    vim.api.nvim_buf_set_lines(0, 2, 3, false, {})
    vim.cmd.write()
    assert.is_false(h.show(c).deleted)
    assert.is_true(vim.bo.modified)
  end)

  it("moving lines changes nothing", function()
    vim.cmd.edit("heph://list/tasks")
    local lines = h.lines()
    local ops_before = select(1, h.cli({ "export-ops" }))
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { lines[3], lines[1], lines[2] })
    vim.cmd.write()
    assert.are.equal(ops_before, select(1, h.cli({ "export-ops" })))
  end)

  it("marks bad lines and writes nothing", function()
    vim.cmd.edit("heph://list/tasks")
    vim.api.nvim_buf_set_lines(0, 0, 1, false, { "[ ] bad date @2026-13-40" })
    h.notifications(function()
      vim.cmd.write()
    end)
    local diags = vim.diagnostic.get(0, { namespace = buffers.ns })
    assert.are.equal(1, #diags)
    assert.are.equal("alpha", h.show(a).title)
  end)

  it(":Heph done completes the task on the cursor line", function()
    vim.cmd.edit("heph://list/tasks")
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    vim.cmd("Heph done")
    assert.are.equal("done", h.show(b).status)
    assert.are.equal(2, #h.lines())
  end)
end)

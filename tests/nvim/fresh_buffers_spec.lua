-- List and home buffers show the replica as it is now; conceal stays in
-- its window; <CR>/gf follow links and items with Vim's gf as fallback.
local h = require("helpers")
local buffers = require("heph.buffers")

local function row_of(pattern)
  for i, line in ipairs(h.lines()) do
    if line:match(pattern) then
      return i
    end
  end
end

describe("fresh buffers", function()
  before_each(function()
    h.fresh()
  end)

  it(":Heph next shows a task added meanwhile, keeping the cursor", function()
    h.add({ "--due", "2026-12-01", "alpha" })
    h.add({ "--due", "2026-12-03", "gamma" })
    vim.cmd("Heph next")
    local list = vim.api.nvim_get_current_buf()
    vim.api.nvim_win_set_cursor(0, { 2, 40 })
    vim.cmd("enew")
    h.add({ "--due", "2026-12-05", "omega" })
    vim.cmd("Heph next")
    assert.are.equal(list, vim.api.nvim_get_current_buf())
    assert.truthy(row_of("omega"), vim.inspect(h.lines()))
    assert.are.equal(2, vim.api.nvim_win_get_cursor(0)[1])
    assert.is_false(vim.bo.modified)
    -- A later save does not propose to delete it.
    local asked
    buffers.confirm = function(changes)
      asked = changes
      return false
    end
    vim.cmd.write()
    assert.is_nil(asked)
  end)

  it("home re-renders when entered", function()
    vim.cmd("Heph home")
    vim.cmd("enew")
    h.add({ "Fresh thing" })
    vim.cmd("Heph home")
    assert.truthy(row_of("Fresh thing"))
  end)

  it("a list shown in another window re-renders after a save", function()
    local id = h.add({ "alpha" })
    vim.cmd("Heph list tasks")
    vim.cmd("split")
    buffers.open_node(id)
    local lines = h.lines()
    lines[2] = "title: alpha renamed"
    vim.api.nvim_buf_set_lines(0, 0, -1, false, lines)
    vim.cmd.write()
    local list = vim.fn.bufnr("heph://list/tasks")
    local text = table.concat(vim.api.nvim_buf_get_lines(list, 0, -1, false), "\n")
    assert.truthy(text:match("alpha renamed"), text)
    vim.cmd("only")
  end)

  it("a shown list re-renders after a pull and on focus", function()
    h.add({ "alpha" })
    vim.cmd("Heph list tasks")
    h.add({ "pulled" })
    require("heph.events").dispatch("nodes_changed", { ids = {} })
    assert.is_true(h.wait(function()
      return row_of("pulled") ~= nil
    end, 2000), vim.inspect(h.lines()))
    h.add({ "focused" })
    vim.api.nvim_exec_autocmds("FocusGained", {})
    assert.truthy(row_of("focused"), vim.inspect(h.lines()))
  end)

  it("conceal options do not leak into the next file of the window", function()
    h.add({ "alpha" })
    vim.cmd("Heph list tasks")
    assert.are.equal(3, vim.wo.conceallevel)
    local file = vim.fn.tempname() .. ".md"
    vim.fn.writefile({ "# plain" }, file)
    vim.cmd.edit(file)
    assert.are.equal(0, vim.wo.conceallevel)
    assert.are.equal("", vim.wo.concealcursor)
    vim.cmd("Heph list tasks")
    assert.are.equal(3, vim.wo.conceallevel)
  end)

  it("gf opens the task of a list line (no E447)", function()
    local id = h.add({ "alpha" })
    vim.cmd("Heph list tasks")
    vim.cmd("normal gf")
    assert.are.equal(id, buffers.state(0).id)
  end)

  it("<CR> follows a [[link]] in a node buffer", function()
    local target = h.add({ "--kind", "note", "Target note" })
    local id = h.add({ "--kind", "note", "--body", "see [[Target note]]\n", "Source" })
    buffers.open_node(id)
    vim.api.nvim_win_set_cursor(0, { #h.lines(), 6 })
    vim.cmd("normal \r")
    assert.are.equal(target, buffers.state(0).id)
  end)

  it("<CR> follows a link of an id's first characters; a word stays a title", function()
    local target = h.add({ "--kind", "note", "Target note" })
    local id = h.add({ "--kind", "note", "--body", "see [[" .. target:sub(1, 13) .. "]]\n", "Source" })
    buffers.open_node(id)
    vim.api.nvim_win_set_cursor(0, { #h.lines(), 6 })
    vim.cmd("normal \r")
    assert.are.equal(target, buffers.state(0).id)
    -- A link that reads as a word is a title, even when an id starts so.
    local reply = require("heph.rpc").request("resolve_link", { target = "[[" .. target:sub(1, 4) .. "]]", col = 3 })
    assert.are.equal(target:sub(1, 4), reply.title)
  end)

  it("a date link opens a note titled so, else the day's journal", function()
    local source = h.add({ "--kind", "note", "--body", "see [[2026-12-08]] and [[2026-12-09]]\n", "Source" })
    local function follow_first_link()
      buffers.open_node(source)
      vim.api.nvim_win_set_cursor(0, { #h.lines(), 6 })
      vim.cmd("normal \r")
    end
    follow_first_link()
    assert.are.equal("heph://journal/2026-12-08", vim.api.nvim_buf_get_name(0))
    local meeting = h.add({ "--kind", "note", "2026-12-08" })
    follow_first_link()
    assert.are.equal(meeting, buffers.state(0).id)
    local reply = require("heph.rpc").request("resolve_link", { target = "[[2026-12-09]]" })
    assert.are.equal("2026-12-09", reply.journal)
  end)

  it("gf on a file path in a node buffer is Vim's gf", function()
    local file = vim.fn.tempname() .. "-plain.txt"
    vim.fn.writefile({ "plain" }, file)
    local id = h.add({ "--kind", "note", "--body", file .. "\n", "Paths" })
    buffers.open_node(id)
    vim.api.nvim_win_set_cursor(0, { #h.lines(), 2 })
    vim.cmd("normal gf")
    assert.are.equal(file, vim.api.nvim_buf_get_name(0))
  end)

  it("[[2026-11-22]] follows to that day's journal", function()
    local id = h.add({ "--kind", "note", "--body", "met on [[2026-11-22]]\n", "Meeting" })
    buffers.open_node(id)
    vim.api.nvim_win_set_cursor(0, { #h.lines(), 10 })
    vim.cmd("normal gf")
    assert.are.equal("heph://journal/2026-11-22", vim.api.nvim_buf_get_name(0))
    assert.are.equal("journal-2026-11-22", buffers.state(0).id)
  end)

  it("the next list says when it is cut at its limit", function()
    for i = 1, 52 do
      h.add({ "task " .. i })
    end
    vim.cmd("Heph next")
    assert.are.equal(50, #h.lines())
    local marks = vim.api.nvim_buf_get_extmarks(0, buffers.ns_info, 0, -1, { details = true })
    assert.are.equal(1, #marks)
    local text = marks[1][4].virt_lines[1][1][1]
    assert.truthy(text:match("50 of 52"), text)
    vim.cmd("Heph list tasks")
    assert.are.equal(52, #h.lines())
    assert.are.equal(0, #vim.api.nvim_buf_get_extmarks(0, buffers.ns_info, 0, -1, {}))
  end)
end)

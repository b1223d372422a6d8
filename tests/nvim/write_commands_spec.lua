-- Vim's write commands on heph buffers: what reaches the node, what
-- reaches a file, and what the buffer says afterwards.
local h = require("helpers")

---A file name in this test's own directory.
---@param name string
---@return string
local function file(name)
  return h.data_dir .. "/" .. name
end

describe("write commands on a node buffer", function()
  local id
  before_each(function()
    h.fresh()
    id = h.add({ "--kind", "note", "--body", "one\ntwo", "Written" })
    vim.cmd.edit("heph://node/" .. id)
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "three" })
  end)

  it(":saveas makes the buffer that file, written like any file; the node is left alone", function()
    local buf = vim.api.nvim_get_current_buf()
    local path = file("saved-as.md")
    vim.cmd.saveas(vim.fn.fnameescape(path))
    assert.are.equal(buf, vim.api.nvim_get_current_buf())
    assert.are.equal(path, vim.api.nvim_buf_get_name(buf))
    assert.are.equal("three", vim.fn.readfile(path)[#vim.fn.readfile(path)])
    assert.is_false(vim.bo.modified)
    assert.are.equal("one\ntwo", h.show(id).body)
    -- From now on :w writes the file, not the node.
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "four" })
    vim.cmd.write()
    assert.are.equal("four", vim.fn.readfile(path)[#vim.fn.readfile(path)])
    assert.is_false(vim.bo.modified)
    assert.are.equal("one\ntwo", h.show(id).body)
    -- The node opens again as a node buffer.
    vim.cmd.edit("heph://node/" .. id)
    assert.are.equal("two", h.lines()[#h.lines()])
    assert.are.equal(id, require("heph.buffers").state(0).id)
  end)

  it(":w heph://node/{other} saves neither node and says so", function()
    local other = h.add({ "--kind", "note", "--body", "untouched", "Other" })
    local seen = h.notifications(function()
      vim.cmd.write(vim.fn.fnameescape("heph://node/" .. other))
    end)
    assert.are.equal("one\ntwo", h.show(id).body)
    assert.are.equal("untouched", h.show(other).body)
    assert.is_true(vim.bo.modified)
    assert.are.equal(vim.log.levels.WARN, seen[#seen].level)
    assert.truthy(seen[#seen].msg:match("not saved"), seen[#seen].msg)
    -- :w still saves to its own node.
    vim.cmd.write()
    assert.are.equal("one\ntwo\nthree\n", h.show(id).body)
  end)

  for _, command in ipairs({ "file", "saveas" }) do
    it((":%s heph://node/{other} keeps the buffer's name and saves neither node"):format(command), function()
      local other = h.add({ "--kind", "note", "--body", "untouched", "Other" })
      local buf = vim.api.nvim_get_current_buf()
      local name = vim.api.nvim_buf_get_name(buf)
      local seen = h.notifications(function()
        vim.cmd[command](vim.fn.fnameescape("heph://node/" .. other))
      end)
      vim.wait(20)
      assert.are.equal(name, vim.api.nvim_buf_get_name(buf))
      assert.are.equal(id, require("heph.buffers").state(buf).id)
      assert.are.equal("one\ntwo", h.show(id).body)
      assert.are.equal("untouched", h.show(other).body)
      assert.is_true(vim.bo[buf].modified)
      local told = vim.tbl_filter(function(n)
        return n.msg:find("keeps its name", 1, true) ~= nil
      end, seen)
      assert.are.equal(1, #told, vim.inspect(seen))
      assert.falsy(vim.iter(seen):any(function(n)
        return n.msg:find('" saved', 1, true) ~= nil
      end), vim.inspect(seen))
      -- The other node opens as itself.
      vim.cmd.edit({ args = { "heph://node/" .. other }, bang = false, mods = { keepalt = true }, magic = { file = false } })
      assert.are.same("untouched", h.lines()[#h.lines()])
      assert.are.equal(other, require("heph.buffers").state(0).id)
      -- And :w in the first still saves to its own node.
      vim.cmd.buffer(buf)
      vim.cmd.write()
      assert.are.equal("one\ntwo\nthree\n", h.show(id).body)
    end)
  end

  it(":file renames the buffer to a file that :w then writes", function()
    local path = file("renamed.md")
    vim.cmd.file(vim.fn.fnameescape(path))
    vim.cmd.write()
    assert.are.equal("three", vim.fn.readfile(path)[#vim.fn.readfile(path)])
    assert.is_false(vim.bo.modified)
    assert.are.equal("one\ntwo", h.show(id).body)
  end)
end)

describe("a plain buffer written under a heph name", function()
  before_each(function()
    h.fresh()
  end)

  it("saves nothing, keeps its text and says how to keep it", function()
    local id = h.add({ "--kind", "note", "--body", "kept", "Target" })
    vim.cmd.enew()
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { "typed in a new buffer" })
    local seen = h.notifications(function()
      pcall(vim.cmd.write, vim.fn.fnameescape("heph://node/" .. id))
    end)
    assert.are.equal("kept", h.show(id).body)
    assert.are.same({ "typed in a new buffer" }, h.lines())
    assert.is_true(vim.bo.modified)
    local last = seen[#seen] and seen[#seen].msg or ""
    assert.truthy(last:find("not saved", 1, true) and last:find(":saveas", 1, true), vim.inspect(seen))
  end)
end)

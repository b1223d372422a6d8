-- Two devices syncing through one real hub: this Neovim is device A, the
-- CLI on a data dir of its own is device B.
local h = require("helpers")

local B = {}

---Runs the CLI on device B.
---@param args string[]
---@return string stdout
function B.cli(args)
  local cmd = { h.bin, "--data-dir", B.dir }
  vim.list_extend(cmd, args)
  local r = vim.system(cmd, { text = true }):wait(10000)
  assert(r.code == 0, (r.stdout or "") .. (r.stderr or ""))
  return r.stdout or ""
end

function B.sync()
  B.cli({ "sync", "--hub", B.url })
end

---@param id string
---@return table
function B.show(id)
  return vim.json.decode(B.cli({ "show", id, "--json" }))
end

describe("two devices", function()
  local hub
  before_each(function()
    local url
    hub, url = h.start_hub()
    local dir = h.fresh()
    require("heph").setup({ cmd = { h.bin }, data_dir = dir, hub_url = url, sync_interval = 3600 })
    B.dir = vim.uv.fs_mkdtemp((os.getenv("HEPH_TEST_TMP") or "/tmp") .. "/replica-b-XXXXXX")
    B.url = url
  end)
  after_each(function()
    require("heph.rpc").stop()
    pcall(vim.fn.jobstop, hub)
  end)

  it("a node deleted on A and edited on B comes back on A, and a background sync says so", function()
    local id = h.add({ "--kind", "note", "Plans" })
    h.sync_and_wait(200)
    B.sync()
    -- Deleted by another process beside this Neovim's sidecar.
    h.cli({ "rm", id })
    h.sync_and_wait(200)
    B.cli({ "set", id, "title=Plans, kept" })
    B.sync()
    -- A's next pass is a background one: a write through the sidecar
    -- starts it.
    local seen, stop = h.capture_notifications()
    vim.cmd("Heph task Something else")
    local told = h.wait(function()
      for _, n in ipairs(seen) do
        if n.msg:find("came back", 1, true) then
          return true
        end
      end
      return false
    end, 10000)
    stop()
    assert.is_true(told, vim.inspect(seen))
    local msg = vim.tbl_filter(function(n)
      return n.msg:find("came back", 1, true) ~= nil
    end, seen)[1].msg
    assert.truthy(msg:find('"Plans, kept" (:Heph open ' .. id .. ")", 1, true), msg)
    assert.is_false(h.show(id).deleted)
  end)

  it("a node deleted on B while edited on A: A is told it was deleted, and :w brings it back", function()
    local id = h.add({ "--kind", "note", "--body", "alpha\nbravo", "Shared" })
    h.sync_and_wait(200)
    B.sync()
    vim.cmd.edit("heph://node/" .. id)
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "typed on A" })
    B.cli({ "rm", id })
    B.sync()
    local seen = h.sync_and_wait(200)
    -- Named by its title.
    local told = vim.tbl_filter(function(n)
      return n.msg:find('"Shared"', 1, true) ~= nil
    end, seen)
    assert.are.equal(1, #told, vim.inspect(seen))
    assert.are.equal(vim.log.levels.WARN, told[1].level)
    -- Not "changed elsewhere; :w merges": there is nothing to merge with.
    assert.truthy(told[1].msg:find("deleted elsewhere", 1, true), told[1].msg)
    assert.truthy(told[1].msg:find(":w brings it back", 1, true), told[1].msg)
    assert.is_true(vim.bo.modified)
    local saved = h.notifications(function()
      vim.cmd.write()
    end)
    assert.truthy(saved[1].msg:match("brought it back"), saved[1].msg)
    h.sync_and_wait(200)
    B.sync()
    for _, node in ipairs({ h.show(id), B.show(id) }) do
      assert.is_false(node.deleted)
      assert.are.equal("alpha\nbravo\ntyped on A\n", node.body)
    end
  end)

  it(":wq right after a save pushes the edit before Neovim quits", function()
    local id = h.add({ "--kind", "note", "--body", "alpha", "Quit note" })
    h.sync_and_wait(200)
    require("heph.rpc").stop()
    -- Device A's edit in a Neovim of its own, which saves and quits at once.
    local script = vim.fn.tempname() .. ".lua"
    vim.fn.writefile({
      ("vim.cmd.edit('heph://node/%s')"):format(id),
      "vim.api.nvim_buf_set_lines(0, -1, -1, false, { 'written just before :wq' })",
      "vim.cmd('wq')",
    }, script)
    local setup = ("lua require('heph').setup({ cmd = { %q }, data_dir = %q, hub_url = %q, sync_interval = 3600 })"):format(
      h.bin,
      h.data_dir,
      B.url
    )
    local run = vim.system({ h.nvim, "--headless", "--clean", "--cmd", "set rtp^=" .. vim.fn.getcwd(), "-c", setup, "-c", "luafile " .. script }, { text = true })
      :wait(30000)
    assert.are.equal(0, run.code, (run.stdout or "") .. (run.stderr or ""))
    assert.truthy(h.show(id).body:find("written just before :wq", 1, true))
    B.sync()
    assert.truthy(B.show(id).body:find("written just before :wq", 1, true), B.show(id).body)
  end)

  it("a list with unsaved edits is told when sync changes items it shows, and :w keeps both", function()
    local alpha = h.add({ "--kind", "task", "alpha" })
    local bravo = h.add({ "--kind", "task", "bravo" })
    h.sync_and_wait(200)
    B.sync()
    vim.cmd.edit("heph://list/tasks")
    local row = vim.fn.index(h.lines(), "/" .. alpha .. " [ ] alpha")
    assert.is_true(row >= 0, vim.inspect(h.lines()))
    local before = h.lines()
    vim.api.nvim_buf_set_lines(0, row, row + 1, false, { (before[row + 1]:gsub("%[ %]", "[x]")) })
    B.cli({ "set", bravo, "title=bravo, renamed on B" })
    B.sync()
    local seen = h.sync_and_wait(200)
    local told = vim.tbl_filter(function(n)
      return n.msg:find("changed elsewhere while you edit it", 1, true) ~= nil
    end, seen)
    assert.are.equal(1, #told, vim.inspect(seen))
    assert.are.equal(vim.log.levels.WARN, told[1].level)
    assert.truthy(told[1].msg:find("^heph: 1 item%(s%)"), told[1].msg)
    -- The edit is still there, unsaved.
    assert.is_true(vim.bo.modified)
    assert.truthy(h.lines()[row + 1]:find("[x]", 1, true))
    h.notifications(function()
      vim.cmd.write()
    end)
    assert.are.equal("done", h.show(alpha).status)
    assert.are.equal("bravo, renamed on B", h.show(bravo).title)
    assert.truthy(vim.iter(h.lines()):any(function(l)
      return l:find("bravo, renamed on B", 1, true) ~= nil
    end), vim.inspect(h.lines()))
  end)

  it("a background sync that keeps both sides of one line names the note", function()
    local id = h.add({ "--kind", "note", "--body", "alpha\nbravo", "Shared plan" })
    h.sync_and_wait(200)
    B.sync()
    B.cli({ "set", id, "body=alpha from B\nbravo" })
    B.sync()
    vim.cmd.edit("heph://node/" .. id)
    local row = vim.fn.index(h.lines(), "alpha")
    assert.is_true(row >= 0, vim.inspect(h.lines()))
    vim.api.nvim_buf_set_lines(0, row, row + 1, false, { "alpha from A" })
    local seen, stop = h.capture_notifications()
    -- The save starts a background pass (no :HephSync): it pulls B's edit
    -- of the same line.
    vim.cmd.write()
    h.wait(function()
      return vim.iter(seen):any(function(n)
        return n.msg:find("background sync", 1, true) ~= nil
      end)
    end, 10000)
    stop()
    local told = vim.tbl_filter(function(n)
      return n.msg:find("background sync", 1, true) ~= nil
    end, seen)
    assert.are.equal(1, #told, vim.inspect(seen))
    assert.are.equal(vim.log.levels.WARN, told[1].level)
    assert.truthy(told[1].msg:find('"Shared plan" (:Heph open ' .. id .. ")", 1, true), told[1].msg)
    local body = h.show(id).body
    assert.truthy(body:find("alpha from A", 1, true), body)
    assert.truthy(body:find("alpha from B", 1, true), body)
  end)
end)

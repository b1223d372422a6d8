local h = require("helpers")

---Syncs the second Neovim and waits for it.
local function child_sync(child)
  vim.rpcrequest(child, "nvim_exec_lua", "require('heph.rpc').request('sync', {})", {})
end

describe("sync in Neovim", function()
  local hub, url, child, other_dir
  before_each(function()
    hub, url = h.start_hub()
    local dir = h.fresh()
    require("heph").setup({ cmd = { h.bin }, data_dir = dir, hub_url = url, sync_interval = 3600 })
    other_dir = vim.uv.fs_mkdtemp((os.getenv("HEPH_TEST_TMP") or "/tmp") .. "/replica-b-XXXXXX")
    child = vim.fn.jobstart({ h.nvim, "--embed", "--headless", "--clean" }, { rpc = true })
    vim.rpcrequest(child, "nvim_exec_lua", [[
      local root, bin, dir, url = ...
      vim.opt.rtp:prepend(root)
      dofile(root .. "/plugin/heph.lua")
      require("heph").setup({ cmd = { bin }, data_dir = dir, hub_url = url, sync_interval = 3600 })
    ]], { vim.fn.getcwd(), h.bin, other_dir, url })
  end)
  after_each(function()
    pcall(vim.fn.jobstop, child)
    require("heph.rpc").stop()
    pcall(vim.fn.jobstop, hub)
  end)

  it("an edit in A reaches B's open buffer after :HephSync", function()
    vim.cmd("Heph task Shared task")
    local id = require("heph.buffers").state(0).id
    local seen = h.sync_and_wait()
    assert.truthy(seen[#seen].msg:match("pushed %d+"), vim.inspect(seen))
    -- B pulls and opens the task.
    child_sync(child)
    vim.rpcrequest(child, "nvim_command", "edit heph://node/" .. id)
    assert.are.equal("title: Shared task", vim.rpcrequest(child, "nvim_buf_get_lines", 0, 1, 2, false)[1])
    -- A renames; B's unmodified buffer follows after its next sync.
    vim.api.nvim_buf_set_lines(0, 1, 2, false, { "title: Renamed in A" })
    vim.cmd.write()
    h.sync_and_wait()
    child_sync(child)
    assert.is_true(h.wait(function()
      return vim.rpcrequest(child, "nvim_buf_get_lines", 0, 1, 2, false)[1] == "title: Renamed in A"
    end))
  end)

  it(":HephSync returns at once and reports when done", function()
    vim.cmd("Heph task Background")
    local seen, stop = h.capture_notifications()
    vim.cmd("HephSync")
    -- Back in the editor before the sync reported.
    assert.are.equal("heph: syncing…", seen[#seen].msg)
    assert.is_true(h.wait(function()
      return seen[#seen].msg:match("^heph: synced") ~= nil
    end, 10000), vim.inspect(seen))
    stop()
  end)

  it("says which node holds a conflict a sync made", function()
    vim.cmd("Heph new Shared note")
    local id = require("heph.buffers").state(0).id
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "same line" })
    vim.cmd.write()
    h.sync_and_wait()
    child_sync(child)
    vim.rpcrequest(child, "nvim_command", "edit heph://node/" .. id)
    vim.rpcrequest(child, "nvim_exec_lua", [[
      local last = vim.api.nvim_buf_line_count(0)
      vim.api.nvim_buf_set_lines(0, last - 1, last, false, { "same line, edited in B" })
      vim.cmd.write()
      require('heph.rpc').request('sync', {})
    ]], {})
    vim.api.nvim_buf_set_lines(0, -2, -1, false, { "same line, edited in A" })
    vim.cmd.write()
    local seen = h.sync_and_wait()
    local last = seen[#seen]
    assert.are.equal(vim.log.levels.WARN, last.level, vim.inspect(seen))
    assert.truthy(last.msg:find("Shared note", 1, true), last.msg)
    assert.truthy(last.msg:find(id, 1, true), last.msg)
  end)

  it("pushes pending ops when Neovim quits right after a write", function()
    vim.rpcrequest(child, "nvim_command", "Heph task Written just before quitting")
    local id = vim.rpcrequest(child, "nvim_exec_lua", "return require('heph.buffers').state(0).id", {})
    h.wait(function()
      local s = vim.rpcrequest(child, "nvim_get_var", "heph_status")
      return type(s) == "table" and (s.pending or 0) > 0
    end, 3000)
    pcall(vim.rpcrequest, child, "nvim_command", "qall!")
    h.sync_and_wait()
    assert.are.equal("Written just before quitting", h.show(id).title)
  end)

  it("publishes status for the status line", function()
    assert.are.equal("", require("heph").statusline())
    vim.cmd("Heph task Count me")
    assert.is_true(h.wait(function()
      local s = vim.g.heph_status
      return s ~= nil and s.state ~= nil
    end), "no status arrived")
    h.sync_and_wait()
    assert.is_true(h.wait(function()
      return vim.g.heph_status.state == "synced"
    end), vim.inspect(vim.g.heph_status))
    assert.are.equal("heph ✓", require("heph").statusline())
    -- The hub goes away: the next sync reports the outage.
    vim.fn.jobstop(hub)
    vim.fn.jobwait({ hub }, 5000)
    vim.cmd("Heph task Offline work")
    h.sync_and_wait()
    assert.is_true(h.wait(function()
      return vim.g.heph_status.state == "offline"
    end), vim.inspect(vim.g.heph_status))
    assert.truthy(vim.g.heph_status.pending > 0)
    -- What waits for the hub shows beside the outage.
    assert.truthy(require("heph").statusline():match("^heph offline since %d%d:%d%d · %d+ pending$"), require("heph").statusline())
  end)
end)

describe("a :HephSync whose sidecar died", function()
  local server
  after_each(function()
    require("heph.rpc").stop()
    if server then
      server:close()
    end
  end)

  it("does not hold back the next :HephSync", function()
    -- A hub that takes the connection and never answers: the sync hangs.
    server = assert(vim.uv.new_tcp())
    server:bind("127.0.0.1", 0)
    local held = {}
    server:listen(16, function()
      local conn = assert(vim.uv.new_tcp())
      server:accept(conn)
      table.insert(held, conn)
    end)
    local dir = h.fresh()
    local hub = "http://127.0.0.1:" .. server:getsockname().port
    require("heph").setup({ cmd = { h.bin }, data_dir = dir, hub_url = hub, sync_interval = 3600 })
    local seen, stop = h.capture_notifications()
    vim.cmd("HephSync")
    assert.are.equal("heph: syncing…", seen[#seen].msg)
    local pid = require("heph.rpc").pid()
    vim.uv.kill(pid, "sigkill")
    h.wait(function()
      return require("heph.rpc").pid() == nil
    end)
    vim.cmd("HephSync")
    stop()
    -- Not "a sync is already running; you will be told": no one will tell.
    assert.are.equal("heph: syncing…", seen[#seen].msg, vim.inspect(seen))
    assert.are_not.equal(pid, require("heph.rpc").pid())
  end)
end)

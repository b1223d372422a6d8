local h = require("helpers")
local rpc = require("heph.rpc")

---Runs :checkhealth heph's checks, recording each report.
---@return {kind: string, msg: string}[]
local function run_health()
  local calls = {}
  local orig = vim.health
  vim.health = setmetatable({}, {
    __index = function(_, kind)
      return function(msg)
        table.insert(calls, { kind = kind, msg = msg })
      end
    end,
  })
  local checked, why = pcall(require("heph.health").check)
  vim.health = orig
  assert(checked, why)
  return calls
end

describe("sidecar", function()
  before_each(function()
    h.fresh()
  end)

  it("starts lazily and restarts after being killed", function()
    assert.is_false(rpc.running())
    vim.cmd("Heph next")
    assert.is_true(rpc.running())
    -- The sidecar said which requests write (never sent twice).
    assert.is_true(rpc.writes.node_save)
    assert.is_true(rpc.writes.list_apply)
    assert.is_nil(rpc.writes.node_get)
    local pid = rpc.pid()
    vim.uv.kill(pid, "sigkill")
    assert.is_true(h.wait(function()
      return not rpc.running()
    end))
    h.add({ "after the crash" })
    local seen = h.notifications(function()
      vim.cmd("Heph list tasks")
    end)
    assert.are.same({}, seen)
    assert.truthy((h.lines()[1] or ""):match("after the crash"))
    assert.are_not.equal(pid, rpc.pid())
  end)

  it("that cannot start says why, in its own words, each time", function()
    -- A replica heph refuses (damaged, not heph's, from a newer heph).
    local file = assert(io.open(h.data_dir .. "/replica.db", "w"))
    file:write("not a database at all")
    file:close()
    for _ = 1, 2 do
      local seen = h.notifications(function()
        vim.cmd("Heph list tasks")
      end)
      vim.wait(50)
      assert.are.equal(1, #seen, vim.inspect(seen))
      assert.truthy(seen[1].msg:find("could not start", 1, true), seen[1].msg)
      assert.truthy(seen[1].msg:find("is not a heph replica", 1, true), seen[1].msg)
      assert.falsy(seen[1].msg:find("may or may not have been saved", 1, true), seen[1].msg)
      assert.is_false(rpc.running())
    end
    -- After a few tries it stops trying, and still says why.
    local seen
    for _ = 1, 3 do
      seen = h.notifications(function()
        vim.cmd("Heph list tasks")
      end)
    end
    assert.truthy(seen[1].msg:find("keeps dying", 1, true), seen[1].msg)
    assert.truthy(seen[1].msg:find("is not a heph replica", 1, true), seen[1].msg)
  end)

  it("says at once that a config.toml that does not load turned sync off, and :checkhealth says why", function()
    local dir = os.getenv("XDG_CONFIG_HOME") .. "/heph"
    vim.fn.mkdir(dir, "p")
    local path = dir .. "/config.toml"
    assert(not vim.uv.fs_stat(path), "a config.toml is already there")
    vim.fn.writefile({ 'hub_url = "http://127.0.0.1:9"', 'colour = "red"' }, path)
    local ok, err = pcall(function()
      local seen, stop = h.capture_notifications()
      vim.cmd("Heph next")
      h.wait(function()
        return #seen > 0
      end, 3000)
      stop()
      assert.are.equal(1, #seen, vim.inspect(seen))
      assert.are.equal(vim.log.levels.WARN, seen[1].level)
      assert.truthy(seen[1].msg:find("sync is off", 1, true), seen[1].msg)
      assert.truthy(seen[1].msg:find("colour", 1, true), seen[1].msg)
      local calls = run_health()
      local errors = vim.tbl_filter(function(c)
        return c.kind == "error" and c.msg:find("sync is off", 1, true) ~= nil
      end, calls)
      assert.are.equal(1, #errors, vim.inspect(calls))
    end)
    os.remove(path)
    rpc.stop()
    assert(ok, err)
  end)

  it(":checkhealth heph with a cmd that is not executable says so and goes on", function()
    require("heph").setup({ cmd = { "/nonexistent/heph" }, data_dir = h.data_dir })
    local ok, calls = pcall(run_health)
    require("heph").setup({ cmd = { h.bin }, data_dir = h.data_dir })
    assert(ok, calls)
    assert.are.equal("error", calls[2].kind, vim.inspect(calls))
    assert.truthy(calls[2].msg:find("/nonexistent/heph", 1, true), vim.inspect(calls))
    -- The sidecar section still ran.
    assert.truthy(vim.iter(calls):any(function(c)
      return c.kind == "start" and c.msg == "heph: sidecar"
    end), vim.inspect(calls))
  end)

  it("answers bad requests with errors and keeps running", function()
    local ok, err = pcall(rpc.request, "node_get", { id = 42 })
    assert.is_false(ok)
    assert.are.equal("bad_request", err.code)
    assert.truthy(tostring(err):match("^heph: node_get: bad params: .*string"), tostring(err))
    ok, err = pcall(rpc.request, "no_such_method", {})
    assert.is_false(ok)
    assert.are.equal("bad_request", err.code)
    assert.truthy(tostring(err):match("unknown method"))
    ok, err = pcall(rpc.request, "node_get", { id = "0000000000" })
    assert.is_false(ok)
    assert.are.equal("not_found", err.code)
    ok, err = pcall(rpc.request, "node_create", { kind = "lamp", title = "x" })
    assert.is_false(ok)
    assert.are.equal("invalid", err.code)
    assert.is_true(rpc.is_error(err, "invalid"))
    -- `promote` makes tasks now: only from the lines of a note that is.
    local task = h.add({ "a task" })
    for _, id in ipairs({ "0000000000", task }) do
      ok, err = pcall(rpc.request, "promote", { id = id, lines = { "- [ ] foo" } })
      assert.is_false(ok)
    end
    ok, err = pcall(rpc.request, "promote", { lines = { "- [ ] foo" } })
    assert.are.equal("bad_request", err.code)
    assert.are.equal(1, #vim.json.decode((h.cli({ "list", "--all", "--json" }))))
    -- A message quoting a huge input is cut, and still typed.
    ok, err = pcall(rpc.request, "node_get", { id = string.rep("x", 2 * 1024 * 1024) })
    assert.are.equal("not_found", err.code)
    assert.is_true(#tostring(err) < 2000)
    assert.are.equal(require("heph.rpc").pid(), rpc.request("hello", {}).pid)
  end)

  it("types its errors: a save from an unknown base is stale and writes nothing", function()
    local id = h.add({ "base check" })
    local node = rpc.request("node_get", { id = id })
    local lines = vim.deepcopy(node.lines)
    table.insert(lines, "edited from a version this replica never had")
    -- A well-formed stamp no replica made: the buffer came from elsewhere.
    local foreign = "000000000001000000-elsewhere"
    local ok, err = pcall(rpc.request, "node_save", { id = id, lines = lines, base_lines = node.lines, base_heads = { foreign } })
    assert.is_false(ok)
    if err.code == "bad_request" then
      error("the test's stamp is not well formed: " .. tostring(err))
    end
    assert.are.equal("stale", err.code, tostring(err))
    assert.truthy(tostring(err):match("reload"))
    assert.are.same(node.lines, rpc.request("node_get", { id = id }).lines)
  end)

  it(":checkhealth heph reports the binary and the replica", function()
    vim.cmd("checkhealth heph")
    local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
    assert.truthy(text:match("running, pid"))
    assert.truthy(text:match("replica:"))
    vim.cmd("bwipeout!")
  end)
end)

describe("two Neovims on one replica", function()
  local child
  before_each(function()
    h.fresh()
    child = vim.fn.jobstart({ h.nvim, "--embed", "--headless", "--clean" }, { rpc = true })
    local root = vim.fn.getcwd()
    vim.rpcrequest(child, "nvim_exec_lua", [[
      local root, bin, dir = ...
      vim.opt.rtp:prepend(root)
      dofile(root .. "/plugin/heph.lua")
      require("heph").setup({ cmd = { bin }, data_dir = dir })
    ]], { root, h.bin, h.data_dir })
  end)
  after_each(function()
    pcall(vim.fn.jobstop, child)
  end)

  it("reloads an unmodified buffer and keeps a modified one", function()
    local id = h.add({ "shared" })
    vim.cmd.edit("heph://node/" .. id)
    vim.rpcrequest(child, "nvim_command", "edit heph://node/" .. id)
    vim.rpcrequest(child, "nvim_buf_set_lines", 0, 1, 2, false, { "title: changed in B" })
    vim.rpcrequest(child, "nvim_command", "write")
    assert.are.equal("changed in B", h.show(id).title)
    vim.cmd("doautocmd FocusGained")
    assert.are.equal("title: changed in B", h.lines()[2])
    assert.is_false(vim.bo.modified)

    -- Now A has unsaved edits when B saves again.
    vim.api.nvim_buf_set_lines(0, -1, -1, false, { "my unsaved line" })
    vim.rpcrequest(child, "nvim_buf_set_lines", 0, 1, 2, false, { "title: changed again" })
    vim.rpcrequest(child, "nvim_command", "write")
    local seen = h.notifications(function()
      vim.cmd("doautocmd FocusGained")
    end)
    assert.are.equal("my unsaved line", h.lines()[#h.lines()])
    assert.is_true(vim.bo.modified)
    assert.truthy(seen[1] and seen[1].msg:find('"changed again" changed elsewhere', 1, true), vim.inspect(seen))
    -- A saves: its line lands and B's title (a line A never touched) stays.
    vim.cmd.write()
    assert.are.equal("changed again", h.show(id).title)
    assert.truthy(h.show(id).body:find("my unsaved line", 1, true))
    assert.are.equal("title: changed again", h.lines()[2])
  end)
end)

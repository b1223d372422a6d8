local h = require("helpers")

---Starts a process and waits for a line matching `pattern` on stdout.
local function start(cmd, pattern)
  local found
  local job = vim.fn.jobstart(cmd, {
    on_stdout = function(_, data)
      for _, line in ipairs(data) do
        found = found or line:match(pattern)
      end
    end,
  })
  assert(h.wait(function()
    return found ~= nil
  end, 10000), "did not start: " .. table.concat(cmd, " "))
  return job, found
end

---Runs `heph hub ARGS --db DB` (the owner's commands); its stdout.
local function owner(db, args)
  local cmd = vim.list_extend({ h.bin, "hub" }, args)
  vim.list_extend(cmd, { "--db", db })
  local r = vim.system(cmd, { text = true }):wait(10000)
  assert(r.code == 0, r.stderr)
  return vim.trim(r.stdout)
end

describe(":HephJoin", function()
  local hub, hub_url, db, orig_input
  before_each(function()
    db = vim.uv.fs_mkdtemp((os.getenv("HEPH_TEST_TMP") or "/tmp") .. "/hub-XXXXXX") .. "/hub.db"
    -- The hub holds join tokens from the start: every device needs a credential.
    owner(db, { "join-token", "create", "--label", "spare" })
    hub, hub_url = start({ h.bin, "hub", "--listen", "127.0.0.1:0", "--db", db }, "listening on (http://%S+)")
    vim.env.HEPH_TOKEN_STORE = "file"
    local dir = h.fresh()
    require("heph").setup({ cmd = { h.bin }, data_dir = dir, hub_url = hub_url, sync_interval = 3600 })
    orig_input = vim.ui.input
  end)
  after_each(function()
    vim.ui.input = orig_input
    require("heph.rpc").stop()
    pcall(vim.fn.jobstop, hub)
    vim.env.HEPH_TOKEN_STORE = nil
  end)

  ---Waits for a notification whose text matches `pattern`.
  local function notified(seen, pattern)
    local found
    h.wait(function()
      for _, n in ipairs(seen) do
        if n.msg:find(pattern) then
          found = n
        end
      end
      return found ~= nil
    end, 15000)
    return found
  end

  it("says what it needs when given no URL, or too much", function()
    for _, cmd in ipairs({ "HephJoin", "HephJoin http://127.0.0.1:1 token extra" }) do
      local seen = h.notifications(function()
        vim.cmd(cmd)
      end)
      assert.truthy(seen[1] and seen[1].msg:find(":HephJoin", 1, true), vim.inspect(seen))
    end
  end)

  it("asks for the token, joins, syncs, and says how the device is authenticated", function()
    local token = owner(db, { "join-token", "create", "--label", "phone" })
    h.add({ "written before joining" })
    local prompt
    vim.ui.input = function(opts, on_confirm)
      prompt = opts.prompt
      on_confirm(token)
    end
    local seen, stop = h.capture_notifications()
    vim.cmd("HephJoin " .. hub_url)
    local joined = notified(seen, "^heph: joined")
    stop()
    assert.truthy(prompt and prompt:find(hub_url, 1, true), prompt)
    assert.truthy(joined, vim.inspect(seen))
    assert.truthy(joined.msg:find('"phone"', 1, true), joined.msg)
    -- It names the file that holds the credential.
    assert.truthy(joined.msg:find("/auth/device.json", 1, true), joined.msg)
    -- Sync starts by itself once joined.
    assert.is_true(h.wait(function()
      return vim.g.heph_status and vim.g.heph_status.state == "synced"
    end, 15000), vim.inspect(vim.g.heph_status))
    local status = require("heph.sync").clean(require("heph.rpc").request("status", {}))
    assert.truthy(status.auth:find("^device credential %(label phone"), status.auth)
    -- The credential is nowhere the user or the log can see it.
    local stored = vim.json.decode(table.concat(vim.fn.readfile(h.data_dir .. "/auth/device.json"), "\n"))
    local shown = table.concat({
      vim.inspect(status),
      vim.fn.execute("messages"),
      table.concat(vim.fn.readfile(require("heph.rpc").log_file()), "\n"),
    }, "\n")
    assert.is_nil(shown:find(stored.credential, 1, true), "the credential was shown")
    assert.is_nil(shown:find(token, 1, true), "the token was shown")

    -- The owner removes the device: the status line says so, and stays.
    owner(db, { "revoke", "phone" })
    h.notifications(function()
      vim.cmd("HephSync")
    end)
    assert.is_true(h.wait(function()
      return vim.g.heph_status and vim.g.heph_status.state == "removed"
    end, 15000), vim.inspect(vim.g.heph_status))
    assert.are.equal("heph removed from the hub", require("heph").statusline())
  end)

  it("takes the token as an argument and explains a used one", function()
    local token = owner(db, { "join-token", "create", "--label", "tablet" })
    vim.ui.input = function()
      error("no prompt when the token is given")
    end
    local seen, stop = h.capture_notifications()
    vim.cmd("HephJoin " .. hub_url .. " " .. token)
    assert.truthy(notified(seen, "^heph: joined"), vim.inspect(seen))
    -- Another replica presenting the same token is refused with the reason.
    require("heph.rpc").stop()
    h.fresh()
    require("heph").setup({ cmd = { h.bin }, data_dir = h.data_dir, hub_url = hub_url, sync_interval = 3600 })
    vim.cmd("HephJoin " .. hub_url .. " " .. token)
    local failed = notified(seen, "already used")
    stop()
    assert.truthy(failed, vim.inspect(seen))
    assert.are.equal(vim.log.levels.ERROR, failed.level)
  end)
end)

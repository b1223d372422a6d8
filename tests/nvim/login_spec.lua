local h = require("helpers")

local oidc_dir = vim.fn.getcwd() .. "/tests/e2e/oidc"

---Starts a process and waits for a line matching `pattern` on stdout.
local function start(cmd, opts, pattern)
  local found
  local job = vim.fn.jobstart(cmd, vim.tbl_extend("force", opts or {}, {
    on_stdout = function(_, data)
      for _, line in ipairs(data) do
        found = found or line:match(pattern)
      end
    end,
  }))
  assert(h.wait(function()
    return found ~= nil
  end, 10000), "did not start: " .. table.concat(cmd, " "))
  return job, found
end

describe("login in Neovim", function()
  local provider, issuer, hub, hub_url
  local function setup(ttl)
    provider, issuer = start({ "node", "provider.js", "--access-ttl", tostring(ttl) }, { cwd = oidc_dir }, "^issuer (%S+)")
    local db = vim.uv.fs_mkdtemp((os.getenv("HEPH_TEST_TMP") or "/tmp") .. "/hub-XXXXXX") .. "/hub.db"
    hub, hub_url = start({
      h.bin, "hub", "--listen", "127.0.0.1:0", "--db", db,
      "--issuer", issuer, "--audience", "urn:heph:hub", "--owner-sub", "alice",
    }, {}, "listening on (http://%S+)")
    local dir = h.fresh()
    require("heph").setup({
      cmd = { h.bin }, data_dir = dir, hub_url = hub_url, sync_interval = 3600,
      issuer = issuer, client_id = "heph-cli", audience = "urn:heph:hub",
      -- The most the sidecar logs: tokens must not be in it even so.
      log_level = "debug",
    })
  end
  local orig_select
  before_each(function()
    assert(vim.uv.fs_stat(oidc_dir .. "/node_modules/oidc-provider"), "run npm ci in tests/e2e/oidc (tests/all.sh does)")
    orig_select = vim.ui.select
    vim.ui.select = function(_, _, on_choice)
      on_choice("Not now")
    end
  end)
  after_each(function()
    vim.ui.select = orig_select
    require("heph.rpc").stop()
    pcall(vim.fn.jobstop, hub)
    pcall(vim.fn.jobstop, provider)
  end)

  local function approve(code)
    local r = vim.system({
      "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
      issuer .. "/test/approve", "-d", vim.json.encode({ user_code = code, sub = "alice" }),
    }, { text = true }):wait(10000)
    assert.are.equal("204", r.stdout)
  end

  ---:HephLogin, until its window shows the code; the code and the lines.
  ---@return string code, string[] lines
  local function show_code()
    local login = require("heph.login")
    vim.cmd("HephLogin")
    assert.is_true(h.wait(function()
      return login.window() ~= nil
    end, 10000), "no login window")
    local lines = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(login.window()), 0, -1, false)
    return lines[2]:match("^Code: (%S+)$"), lines
  end

  it("shows the code, stays responsive while polling, then syncs", function()
    setup(300)
    local login = require("heph.login")
    local code, lines = show_code()
    assert.truthy(code, vim.inspect(lines))
    assert.truthy(lines[1]:match("^Open: http://127%.0%.0%.1:%d+/device$"))
    -- The editor is free while the sidecar polls.
    vim.cmd("Heph task Written while logging in")
    assert.are.equal("title: Written while logging in", h.lines()[2])
    -- :HephLogin again shows the same code.
    vim.cmd("HephLogin")
    assert.is_true(h.wait(function()
      local win = login.window()
      return win ~= nil and vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 1, 2, false)[1] == "Code: " .. code
    end))
    local seen, stop = h.capture_notifications()
    approve(code)
    local done
    assert.is_true(h.wait(function()
      for _, n in ipairs(seen) do
        if n.msg:find("^heph: logged in") then
          done = n
        end
      end
      return done ~= nil
    end, 15000), vim.inspect(seen))
    stop()
    -- tests/keyring-session.sh provides a Secret Service: no fallback.
    assert.are.equal("heph: logged in; tokens are kept in Secret Service (OS keyring)", done.msg)
    assert.are.equal(vim.log.levels.INFO, done.level)
    assert.is_nil(login.window())
    local ok, report = pcall(require("heph.rpc").request, "sync", {})
    assert.is_true(ok, tostring(report))
    assert.truthy(h.wait(function()
      return vim.g.heph_status and vim.g.heph_status.state == "synced"
    end))
    -- After a logout the status line says what the hub says now.
    h.notifications(function()
      vim.cmd("HephLogout")
    end)
    assert.is_true(h.wait(function()
      return vim.g.heph_status and vim.g.heph_status.state == "login_needed"
    end, 10000), vim.inspect(vim.g.heph_status))
    assert.are.equal("heph login needed", require("heph").statusline())
  end)

  it(":HephLogout while the code waits cancels the login: an approval after it stores nothing", function()
    setup(300)
    local login = require("heph.login")
    local code = show_code()
    h.notifications(function()
      vim.cmd("HephLogout")
    end)
    assert.is_nil(login.window(), "the code window stays after the logout")
    approve(code)
    -- Longer than the provider's polling interval.
    vim.wait(6500)
    local status = require("heph.sync").clean(require("heph.rpc").request("status", {}))
    assert.are.equal(false, status.logged_in, vim.inspect(status))
    assert.is_nil(vim.uv.fs_stat(h.data_dir .. "/auth/session.json"))
    local stats = vim.system({ "curl", "-s", issuer .. "/test/stats" }, { text = true }):wait(10000)
    assert.are.equal(0, vim.json.decode(stats.stdout).device_code, stats.stdout)
  end)

  it("warns when the tokens had to go to the file", function()
    local seen = h.notifications(function()
      require("heph.login").on_event({
        state = "done",
        store = "file /x/auth/session.json (mode 0600): no usable keyring (Secret Service: no D-Bus session)",
        fallback = true,
      })
    end)
    assert.are.equal(1, #seen)
    assert.are.equal(vim.log.levels.WARN, seen[1].level)
    assert.truthy(seen[1].msg:find("no usable keyring", 1, true), seen[1].msg)
  end)

  it("says once that the issuer is unreachable and keeps the code", function()
    setup(300)
    local login = require("heph.login")
    show_code()
    local seen, stop = h.capture_notifications()
    -- The provider goes away while the sidecar polls.
    vim.fn.jobstop(provider)
    local warned = h.wait(function()
      return #vim.tbl_filter(function(n)
        return n.msg:find("still trying until the code expires", 1, true) ~= nil
      end, seen) > 0
    end, 20000)
    vim.wait(300)
    stop()
    assert.is_true(warned, vim.inspect(seen))
    local warnings = vim.tbl_filter(function(n)
      return n.level == vim.log.levels.WARN
    end, seen)
    assert.are.equal(1, #warnings, vim.inspect(seen))
    assert.truthy(warnings[1].msg:find("cannot reach the issuer", 1, true), warnings[1].msg)
    -- The code stays up: the user may still approve once the issuer is back.
    assert.is_not_nil(login.window())
    -- The login dies with its sidecar, and its code window with it.
    require("heph.rpc").stop()
    assert.is_nil(login.window())
  end)

  ---:HephLogin, approved at the provider; the session file's path.
  ---@return string
  local function log_in()
    local login = require("heph.login")
    approve((show_code()))
    local session = h.data_dir .. "/auth/session.json"
    assert.is_true(h.wait(function()
      return vim.uv.fs_stat(session) ~= nil and login.window() == nil
    end, 15000))
    return session
  end

  it("is offline, not in error, when the token needs a refresh and the issuer is out of reach", function()
    setup(2)
    log_in()
    vim.fn.jobstop(provider)
    -- The access token expires; its refresh cannot reach the issuer.
    vim.wait(2500)
    h.notifications(function()
      vim.cmd("HephSync")
    end)
    assert.is_true(h.wait(function()
      return vim.g.heph_status and vim.g.heph_status.state == "offline"
    end, 10000), vim.inspect(vim.g.heph_status))
  end)

  it("shows 'login needed' after a rejected refresh", function()
    -- The test edits the stored refresh token, so keep it in the file.
    vim.env.HEPH_TOKEN_STORE = "file"
    setup(2)
    local session = log_in()
    local rpc = require("heph.rpc")
    local ok, report = pcall(rpc.request, "sync", {})
    assert.is_true(ok, tostring(report))
    -- Tokens reach no log, status, reply or message.
    local stored = vim.json.decode(table.concat(vim.fn.readfile(session), "\n"))
    local log = table.concat(vim.fn.readfile(rpc.log_file()), "\n")
    assert.truthy(log:find("DEBUG", 1, true), "the sidecar logged nothing at debug level")
    local shown = table.concat({
      log,
      vim.inspect(rpc.request("status", {})),
      vim.inspect(report),
      vim.inspect(vim.g.heph_status),
      vim.fn.execute("messages"),
    }, "\n")
    for _, token in ipairs({ stored.access_token, stored.refresh_token }) do
      assert.is_true(#token > 20, token)
      assert.is_nil(shown:find(token, 1, true), "a token was shown")
    end
    -- The grant is revoked at the issuer: the stored refresh token is dead.
    stored.refresh_token = "revoked"
    vim.fn.writefile({ vim.json.encode(stored) }, session)
    vim.wait(2200)
    h.notifications(function()
      vim.cmd("HephSync")
    end)
    assert.is_true(h.wait(function()
      return vim.g.heph_status and vim.g.heph_status.state == "login_needed"
    end), vim.inspect(vim.g.heph_status))
    assert.are.equal("heph login needed", require("heph").statusline())
    vim.env.HEPH_TOKEN_STORE = nil
  end)
end)

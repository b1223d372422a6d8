local h = require("helpers")
local rpc = require("heph.rpc")

---Runs `fn` with rpc.request answering `status` with `reply`.
local function with_status_reply(reply, fn)
  local orig = rpc.request
  rpc.request = function(method, params)
    if method == "status" then
      return reply
    end
    return orig(method, params)
  end
  local ok, err = pcall(fn)
  rpc.request = orig
  assert(ok, err)
end

describe(":HephSync status", function()
  before_each(function()
    h.fresh()
  end)

  it("works with no hub configured (real sidecar)", function()
    local seen = h.notifications(function()
      vim.cmd("HephSync status")
    end)
    assert.are.equal(1, #seen, vim.inspect(seen))
    assert.are_not.equal(vim.log.levels.ERROR, seen[1].level)
    assert.truthy(seen[1].msg:match("^heph sync: "), seen[1].msg)
    assert.truthy(seen[1].msg:match("last sync: never"), seen[1].msg)
  end)

  local states = {
    ["never synced"] = { state = "pending", pending = 2, hub = "http://hub", last_sync = vim.NIL, last_error = vim.NIL },
    ["no hub"] = { state = "disabled", pending = 0, hub = vim.NIL, last_sync = vim.NIL, last_error = vim.NIL },
    ["error"] = { state = "error", pending = 1, hub = "http://hub", last_sync = vim.NIL, last_error = "hub said 500", offline_since = vim.NIL },
    ["synced"] = { state = "synced", pending = 0, hub = "http://hub", last_sync = "2026-11-30 12:00", last_error = vim.NIL },
  }
  for name, reply in pairs(states) do
    it("reads msgpack nils (vim.NIL) when " .. name, function()
      for _, cmd in ipairs({ "HephSync status", "Heph status" }) do
        local seen
        with_status_reply(reply, function()
          seen = h.notifications(function()
            vim.cmd(cmd)
          end)
        end)
        assert.are.equal(1, #seen, vim.inspect(seen))
        assert.are_not.equal(vim.log.levels.ERROR, seen[1].level, seen[1].msg)
        assert.truthy(seen[1].msg:match("heph sync: " .. reply.state), seen[1].msg)
        assert.is_nil(seen[1].msg:match("vim.NIL"))
        if reply.last_error ~= vim.NIL then
          assert.truthy(seen[1].msg:match("last error: hub said 500"))
        end
        assert.are.equal(reply.state, vim.g.heph_status.state)
        -- The status line reads the stored status without choking either.
        assert.is_string(require("heph").statusline())
      end
    end)
  end
end)

describe("status line", function()
  local saved = {}
  before_each(function()
    h.fresh()
    saved.statusline, saved.laststatus = vim.o.statusline, vim.o.laststatus
    _G.heph_rendered = {}
    _G.heph_status_probe = function()
      local text = require("heph").statusline()
      table.insert(_G.heph_rendered, text)
      return text
    end
    vim.o.laststatus = 2
    vim.o.statusline = "%{v:lua.heph_status_probe()}"
  end)
  after_each(function()
    vim.o.statusline, vim.o.laststatus = saved.statusline, saved.laststatus
    _G.heph_status_probe = nil
  end)

  it("is blank before the first status", function()
    local text = vim.api.nvim_eval_statusline("%{v:lua.require'heph'.statusline()}", {}).str
    assert.are.equal("", text)
  end)

  it("is redrawn when the status changes (hub outage and return)", function()
    vim.cmd("redraw")
    local events = require("heph.events")
    events.dispatch("status", { state = "offline", pending = 1, offline_since = "14:02", last_error = vim.NIL })
    assert.is_true(h.wait(function()
      return _G.heph_rendered[#_G.heph_rendered] == "heph offline since 14:02 · 1 pending"
    end, 1000), vim.inspect(_G.heph_rendered))
    events.dispatch("status", { state = "synced", pending = 0, offline_since = vim.NIL, last_sync = "14:03" })
    assert.is_true(h.wait(function()
      return _G.heph_rendered[#_G.heph_rendered] == "heph ✓"
    end, 1000), vim.inspect(_G.heph_rendered))
    local text = vim.api.nvim_eval_statusline("%{v:lua.require'heph'.statusline()}", {}).str
    assert.are.equal("heph ✓", text)
  end)

  it("survives vim.NIL in a status event", function()
    require("heph.events").dispatch("status", { state = "offline", offline_since = vim.NIL, hub = vim.NIL })
    assert.is_true(h.wait(function()
      return type(vim.g.heph_status) == "table" and vim.g.heph_status.state == "offline"
    end, 1000))
    assert.are.equal("heph offline", require("heph").statusline())
  end)
end)

describe("a background sync's warnings", function()
  it("are shown once per session, each", function()
    local seen, stop = h.capture_notifications()
    local events = require("heph.events")
    local warning = "this device's clock is wrong (ahead by 2 h of the hub's clock)"
    events.dispatch("nodes_changed", { ids = {}, conflicts = {}, warnings = { warning } })
    events.dispatch("nodes_changed", { ids = {}, conflicts = vim.NIL, warnings = { warning } })
    events.dispatch("nodes_changed", { ids = {}, warnings = { warning, "1 pulled op(s) set aside" } })
    events.dispatch("nodes_changed", { ids = {} })
    vim.wait(100)
    stop()
    assert.are.same({
      { msg = "heph: background sync — " .. warning, level = vim.log.levels.WARN },
      { msg = "heph: background sync — 1 pulled op(s) set aside", level = vim.log.levels.WARN },
    }, seen)
  end)
end)

describe("the status line", function()
  it("shows ops set aside until they apply", function()
    local sync = require("heph.sync")
    assert.are.equal("heph ✓", sync.statusline({ state = "synced", pending = 0, quarantined = 0, refused = vim.NIL }))
    assert.are.equal(
      "heph ✓ · 3 set aside",
      sync.statusline({ state = "synced", pending = 0, quarantined = 2, refused = 1, quarantine_reason = vim.NIL })
    )
    assert.are.equal("heph 2 pending · 1 set aside", sync.statusline({ state = "pending", pending = 2, refused = 1 }))
    -- Body edits held for a version that never came count too.
    assert.are.equal("heph ✓ · 2 set aside", sync.statusline({ state = "synced", pending = 0, held = 2 }))
  end)
end)

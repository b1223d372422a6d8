local h = require("helpers")

describe(":HephLogin code", function()
  before_each(function()
    h.fresh()
  end)

  it("is shown before the browser question is asked", function()
    local orig = vim.ui.select
    local prompt, float_open
    vim.ui.select = function(_, opts, on_choice)
      prompt = opts.prompt
      float_open = require("heph.login").window() ~= nil
      on_choice("Not now")
    end
    require("heph.login").on_event({
      state = "code",
      user_code = "WXYZ-1234",
      verification_uri = "http://127.0.0.1:9/device",
    })
    vim.ui.select = orig
    require("heph.login").forget()
    assert.is_true(float_open)
    assert.truthy(prompt and prompt:find("WXYZ-1234", 1, true), prompt)
  end)
end)

describe(":checkhealth heph", function()
  before_each(function()
    h.fresh()
  end)

  ---Runs the health check; its calls. `status`, when given, is what the
  ---sidecar's `status` answers.
  ---@param status? table
  ---@return {kind: string, msg: string}[]
  local function check(status)
    local rpc = require("heph.rpc")
    local orig_request, orig_health = rpc.request, vim.health
    local calls = {}
    local record = function(kind)
      return function(msg)
        table.insert(calls, { kind = kind, msg = msg })
      end
    end
    vim.health = {
      start = record("start"),
      ok = record("ok"),
      info = record("info"),
      warn = record("warn"),
      error = record("error"),
    }
    rpc.request = function(method, params)
      if method == "status" and status then
        return status
      end
      return orig_request(method, params)
    end
    local ok, err = pcall(require("heph.health").check)
    rpc.request, vim.health = orig_request, orig_health
    assert(ok, err)
    return calls
  end

  ---The calls of `kind` whose message matches `pattern`.
  local function said(calls, kind, pattern)
    return vim.tbl_filter(function(c)
      return c.kind == kind and c.msg:match(pattern)
    end, calls)
  end

  it("shows login needed as a warning", function()
    local calls = check({ state = "login_needed", pending = 1, hub = "http://hub", last_sync = vim.NIL, token_store = vim.NIL })
    assert.are.equal(1, #said(calls, "warn", "login needed"), vim.inspect(calls))
  end)

  it("a first pass still running after the wait is a warning, not fine", function()
    local calls = check({ state = "syncing", pending = 0, hub = "http://hub", last_sync = vim.NIL })
    assert.are.equal(0, #said(calls, "ok", "^sync:"), vim.inspect(calls))
    assert.are.equal(1, #said(calls, "warn", "first sync with http://hub has not finished"), vim.inspect(calls))
  end)

  it("without a binary says what to do once", function()
    require("heph").setup({ cmd = { "/nonexistent/heph" }, data_dir = h.data_dir })
    local calls = check()
    assert.are.equal(1, #said(calls, "error", "/nonexistent/heph %-%-version failed"), vim.inspect(calls))
    assert.are.equal(0, #said(calls, "error", "^heph: heph"), vim.inspect(calls))
  end)

  it("run first, waits for the first pass instead of calling it fine", function()
    require("heph").setup({ cmd = { h.bin }, data_dir = h.data_dir, hub_url = "http://127.0.0.1:1" })
    local calls = check()
    assert.are.equal(0, #said(calls, "ok", "^sync:"), vim.inspect(calls))
    assert.are.equal(1, #said(calls, "warn", "^sync: "), vim.inspect(calls))
    -- No credential: one line that says what to do, not "token store:
    -- not logged in".
    assert.are.equal(1, #said(calls, "info", "^no credential stored %(:HephLogin"), vim.inspect(calls))
    assert.are.equal(0, #said(calls, "info", "token store"), vim.inspect(calls))
  end)
end)

describe(":help heph", function()
  it("works once try.sh has generated the help tags", function()
    local try = table.concat(vim.fn.readfile("scripts/try.sh"), "\n")
    assert.truthy(try:match("helptags"), "try.sh generates help tags")
    assert.is_nil(try:match("install%-deps"), "try.sh installs no test packages")
    local dir = vim.fn.tempname() .. "/rtp"
    vim.fn.mkdir(dir .. "/doc", "p")
    vim.fn.writefile(vim.fn.readfile("doc/heph.txt"), dir .. "/doc/heph.txt")
    vim.cmd("helptags " .. vim.fn.fnameescape(dir .. "/doc"))
    vim.opt.rtp:append(dir)
    vim.cmd("help heph")
    assert.are.equal("help", vim.bo.buftype)
    -- `:help heph` lands on the top of heph's help, not a section of it.
    assert.truthy(vim.api.nvim_get_current_line():find("*heph*", 1, true), vim.api.nvim_get_current_line())
    vim.cmd("helpclose")
    vim.opt.rtp:remove(dir)
  end)
end)

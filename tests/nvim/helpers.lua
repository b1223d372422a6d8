-- Shared spec helpers: a fresh replica per test, the CLI on that replica,
-- and clean buffers.
local M = {}

M.bin = os.getenv("HEPH_BIN")
M.nvim = os.getenv("HEPH_NVIM") or "nvim"

---Starts each test on a new, empty replica with a fresh sidecar.
---@return string data_dir
function M.fresh()
  require("heph.rpc").stop()
  vim.cmd("silent! %bwipeout!")
  -- busted loads this module afresh per spec file: a unique directory per
  -- test comes from mkdtemp, not a counter.
  local base = os.getenv("HEPH_TEST_TMP") or vim.fn.fnamemodify(vim.fn.tempname(), ":h")
  M.data_dir = assert(vim.uv.fs_mkdtemp(base .. "/replica-XXXXXX"))
  require("heph").setup({ cmd = { M.bin }, data_dir = M.data_dir })
  -- Events the last test's sidecar sent are queued (vim.schedule): they
  -- run now, not in the middle of this test.
  vim.wait(50)
  vim.g.heph_status = nil
  return M.data_dir
end

---Runs the heph CLI on the test replica.
---@param args string[]
---@param stdin? string
---@return string stdout, integer code, string stderr
function M.cli(args, stdin)
  local cmd = { M.bin, "--data-dir", M.data_dir }
  vim.list_extend(cmd, args)
  local r = vim.system(cmd, { text = true, stdin = stdin }):wait(10000)
  return r.stdout or "", r.code, r.stderr or ""
end

---The CLI's JSON for a node.
---@param id string
---@return table
function M.show(id)
  local out, code, err = M.cli({ "show", id, "--json" })
  assert(code == 0, err)
  return vim.json.decode(out)
end

---Adds a node through the CLI; returns its id.
---@param args string[]
---@return string
function M.add(args)
  local out, code, err = M.cli(vim.list_extend({ "add" }, args))
  assert(code == 0, err)
  return vim.trim(out)
end

---Lines of the current buffer.
---@return string[]
function M.lines()
  return vim.api.nvim_buf_get_lines(0, 0, -1, false)
end

---Waits (bounded) until `fn` returns true.
---@param fn fun(): boolean
---@param ms? integer
function M.wait(fn, ms)
  return vim.wait(ms or 5000, fn, 20)
end

---Records vim.notify messages until `stop()` is called (for waits that
---span the event loop).
---@return {msg: string, level: integer}[] seen, fun() stop
function M.capture_notifications()
  local seen = {}
  local orig = vim.notify
  vim.notify = function(msg, level)
    table.insert(seen, { msg = msg, level = level or vim.log.levels.INFO })
  end
  return seen, function()
    vim.notify = orig
  end
end

---Captures vim.notify messages while running `fn`.
---@param fn fun()
---@return {msg: string, level: integer}[]
function M.notifications(fn)
  local seen, stop = M.capture_notifications()
  local ok, err = pcall(fn)
  stop()
  assert(ok, err)
  return seen
end

---Starts `heph hub` on a free loopback port; returns job id and URL.
---@return integer job, string url
function M.start_hub()
  local url
  local db = vim.uv.fs_mkdtemp((os.getenv("HEPH_TEST_TMP") or "/tmp") .. "/hub-XXXXXX") .. "/hub.db"
  local job = vim.fn.jobstart({ M.bin, "hub", "--listen", "127.0.0.1:0", "--db", db }, {
    stdout_buffered = false,
    on_stdout = function(_, data)
      for _, line in ipairs(data) do
        url = url or line:match("listening on (http://%S+)")
      end
    end,
  })
  assert(M.wait(function()
    return url ~= nil
  end), "hub did not start")
  return job, url
end

---Runs :HephSync and waits (bounded) for its report, which comes later;
---then `settle_ms` more for what it does to open buffers.
---@param settle_ms? integer
---@return {msg: string, level: integer}[] messages
function M.sync_and_wait(settle_ms)
  local seen, stop = M.capture_notifications()
  vim.cmd("HephSync")
  M.wait(function()
    return vim.iter(seen):any(function(n)
      return n.msg:match("^heph: synced") or n.msg:match("^heph: sync failed")
    end)
  end, 10000)
  if settle_ms then
    vim.wait(settle_ms)
  end
  stop()
  return seen
end

return M

-- Measures every view of DESIGN §11 inside Neovim against the 100k-node
-- corpus replica in HEPH_DATA (see run.sh): plugin load, sidecar start,
-- :Heph next/home/list, saving a list after one toggle, open and save a
-- node, search over the corpus query set (HEPH_QUERIES), and the
-- sidecar's memory after all of it. Prints one line per figure.
local root = vim.fn.getcwd()
local rpc_mod

---@param t number[]
---@param p number 0..1
local function pct(t, p)
  local s = vim.deepcopy(t)
  table.sort(s)
  return s[math.max(1, math.ceil(#s * p))]
end
local function median(t)
  return pct(t, 0.5)
end
local function ms(start)
  return (vim.uv.hrtime() - start) / 1e6
end
local function say(fmt, ...)
  io.stdout:write(fmt:format(...) .. "\n")
  io.stdout:flush()
end

-- Plugin load cost: sourcing plugin/heph.lua (what startup pays).
vim.opt.rtp:prepend(root)
local loads = {}
for _ = 1, 50 do
  vim.g.loaded_heph = nil
  local t = vim.uv.hrtime()
  dofile(root .. "/plugin/heph.lua")
  table.insert(loads, ms(t))
end
require("heph").setup({ cmd = { os.getenv("HEPH_BIN") }, data_dir = os.getenv("HEPH_DATA") })
rpc_mod = require("heph.rpc")
-- Time spent in requests (the sidecar and the transfer), so each view
-- reports it beside the Lua and drawing time.
local in_requests = 0
local request = rpc_mod.request
rpc_mod.request = function(...)
  local t0 = vim.uv.hrtime()
  local ok, r = pcall(request, ...)
  in_requests = in_requests + (vim.uv.hrtime() - t0)
  if not ok then
    error(r, 0)
  end
  return r
end
-- Confirmations would block a headless run; the bench saves only toggles.
require("heph.buffers").confirm = function()
  return true
end
vim.notify = function() end

local t = vim.uv.hrtime()
rpc_mod.request("hello", {})
local ready = ms(t)
say("plugin/heph.lua load: median %.3f ms", median(loads))
say("sidecar start to first reply: %.1f ms", ready)

---Search over the corpus query set (see below for the memory figure).
local function run_search()
  -- Search over the corpus query set, each query once (cold for that
  -- query), as typed in a picker.
  local by_class, all = {}, {}
  local slowest = {}
  -- HEPH_BENCH_PAUSE_MS: idle time before each query, as between keys.
  local pause_ms = tonumber(os.getenv("HEPH_BENCH_PAUSE_MS") or "0")
  for line in io.lines(os.getenv("HEPH_QUERIES")) do
    local class, q = line:match("^([^\t]+)\t(.*)$")
    if pause_ms > 0 then
      vim.uv.sleep(pause_ms)
    end
    t = vim.uv.hrtime()
    rpc_mod.request("search", { query = q, limit = 50 })
    local took = ms(t)
    by_class[class] = by_class[class] or {}
    table.insert(by_class[class], took)
    table.insert(all, took)
    table.insert(slowest, { took, q })
  end
  table.sort(slowest, function(a, b)
    return a[1] > b[1]
  end)
  -- The round trip of a request that does nothing, for scale.
  local trips = {}
  for _ = 1, 100 do
    t = vim.uv.hrtime()
    rpc_mod.request("versions", { ids = {} })
    table.insert(trips, ms(t))
  end
  say("empty request round trip: p50 %.2f ms, p95 %.2f ms", median(trips), pct(trips, 0.95))
  say("search (%d queries): p50 %.2f ms, p95 %.2f ms, max %.2f ms", #all, median(all), pct(all, 0.95), pct(all, 1))
  for class, times in vim.spairs(by_class) do
    say("  %s: p50 %.2f ms, p95 %.2f ms, max %.2f ms", class, median(times), pct(times, 0.95), pct(times, 1))
  end
  say(
    "  slowest: %s",
    table.concat(
      vim.tbl_map(function(s)
        return ("%q %.1f ms"):format(s[2], s[1])
      end, vim.list_slice(slowest, 1, 5)),
      ", "
    )
  )
end

---Prints the sidecar's memory.
local function report_memory()
  -- Memory after every view above.
  local status = {}
  for line in io.lines("/proc/" .. rpc_mod.pid() .. "/status") do
    local key, kb = line:match("^(Vm%u%w+):%s+(%d+) kB")
    if key then
      status[key] = tonumber(kb)
    end
  end
  say("sidecar memory after the run: %.1f MB RSS (peak %.1f MB)", status.VmRSS / 1024, status.VmHWM / 1024)
end

-- HEPH_BENCH_ONLY=search measures search alone (and the memory after it).
local search_only = os.getenv("HEPH_BENCH_ONLY") == "search"
if search_only then
  run_search()
  report_memory()
  vim.cmd("qa!")
  return
end

---Runs `cmd` `n` times on a fresh buffer each time, then draws the screen
---(headless Neovim still draws its grid: syntax and treesitter
---highlighting run then). Returns medians of: the command, the command
---and the drawing, the requests within; the line count of the last
---buffer shown, and the slowest command and drawing.
local function view(cmd, n)
  local times, drawn, requests, lines = {}, {}, {}, 0
  for _ = 1, n do
    in_requests = 0
    t = vim.uv.hrtime()
    vim.cmd(cmd)
    table.insert(times, ms(t))
    vim.cmd("redraw")
    table.insert(drawn, ms(t))
    table.insert(requests, in_requests / 1e6)
    lines = vim.api.nvim_buf_line_count(0)
    vim.cmd("enew | bwipeout! #")
  end
  return median(times), median(drawn), median(requests), lines, pct(drawn, 1)
end

local project = os.getenv("HEPH_PROJECT") or "garden"
for _, v in ipairs({
  { "Heph next", 10 },
  { "Heph home", 10 },
  { "Heph list project:" .. project, 10 },
  { "Heph list", 5 },
}) do
  local med, drawn, req, lines, max = view(v[1], v[2])
  say(
    ":%s: median %.1f ms (requests %.1f ms), drawn %.1f ms, max drawn %.1f ms (%d lines)",
    v[1],
    med,
    req,
    drawn,
    max,
    lines
  )
end

-- The sidecar's part of each view: the RPC alone (the rest is Neovim
-- showing the lines).
for _, v in ipairs({
  { "list_get", { query = "next" } },
  { "home", {} },
  { "list_get", { query = "project:" .. project } },
  { "list_get", { query = "tasks" } },
}) do
  local times = {}
  for _ = 1, 5 do
    t = vim.uv.hrtime()
    rpc_mod.request(v[1], v[2])
    table.insert(times, ms(t))
  end
  say("  %s %s RPC alone: median %.1f ms", v[1], v[2].query or "", median(times))
end

-- Save a project list after toggling one line (the list re-renders
-- without the completed task). The toggled tasks are reopened at the end.
vim.cmd("Heph list project:" .. project)
local buf = vim.api.nvim_get_current_buf()
local done_ids, saves, save_requests = {}, {}, {}
for i = 1, 10 do
  local row = i * 37
  local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1]
  table.insert(done_ids, line:match("^/([%w_-]+) "))
  vim.api.nvim_buf_set_lines(buf, row - 1, row, false, { (line:gsub("%[ %]", "[x]", 1)) })
  in_requests = 0
  t = vim.uv.hrtime()
  vim.cmd("silent write")
  table.insert(saves, ms(t))
  table.insert(save_requests, in_requests / 1e6)
end
local list_lines = vim.api.nvim_buf_line_count(buf)
vim.cmd("enew | bwipeout! #")
say(
  "save a list after toggling one line (%d lines): median %.1f ms (requests %.1f ms), max %.1f ms",
  list_lines,
  median(saves),
  median(save_requests),
  pct(saves, 1)
)
for _, id in ipairs(done_ids) do
  rpc_mod.request("node_set", { id = id, fields = { status = "todo" } })
end

-- Open and save nodes: ids from the project list (tasks with bodies).
local ids = {}
for _, line in ipairs(rpc_mod.request("list_get", { query = "project:" .. project }).lines) do
  table.insert(ids, line:match("^/([%w_-]+) "))
end
local opens, drawn, node_saves, gets = {}, {}, {}, {}
for i = 1, 40 do
  local id = ids[(i * 97) % #ids + 1]
  t = vim.uv.hrtime()
  vim.cmd("Heph open " .. id)
  table.insert(opens, ms(t))
  vim.cmd("redraw")
  table.insert(drawn, ms(t))
  local nb = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(nb, -1, -1, false, { "edit " .. i })
  t = vim.uv.hrtime()
  vim.cmd("silent write")
  table.insert(node_saves, ms(t))
  -- Put the body back (not timed), so every run sees the same corpus.
  vim.api.nvim_buf_set_lines(nb, -2, -1, false, {})
  vim.cmd("silent write")
  vim.cmd("enew | bwipeout! #")
end
for i = 1, 40 do
  local id = ids[(i * 53) % #ids + 1]
  t = vim.uv.hrtime()
  rpc_mod.request("node_get", { id = id })
  table.insert(gets, ms(t))
end
say(
  "open a node (:Heph open → buffer shown): median %.2f ms, max %.2f ms; drawn: median %.2f ms, max %.2f ms",
  median(opens),
  pct(opens, 1),
  median(drawn),
  pct(drawn, 1)
)
say("  of which node_get RPC: median %.2f ms", median(gets))
say("save a node (:w round trip): median %.2f ms, max %.2f ms", median(node_saves), pct(node_saves, 1))

run_search()
report_memory()
vim.cmd("qa!")

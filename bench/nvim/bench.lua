-- Measures, inside Neovim, against the 100k-node replica in HEPH_DATA.
local root = vim.fn.getcwd()
local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end
local function ms(start)
  return (vim.uv.hrtime() - start) / 1e6
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

-- Sidecar ready: first request includes the process start.
local t = vim.uv.hrtime()
require("heph.rpc").request("hello", {})
local ready = ms(t)

local opens, saves = {}, {}
for i = 1, 40 do
  local id = ("bench-%06d"):format((i * 2477) % 100000)
  t = vim.uv.hrtime()
  vim.cmd("Heph open " .. id)
  table.insert(opens, ms(t))
  vim.api.nvim_buf_set_lines(0, -1, -1, false, { "edit " .. i })
  t = vim.uv.hrtime()
  vim.cmd("silent write")
  table.insert(saves, ms(t))
  vim.cmd("bwipeout!")
end
-- The RPC part of opening: node_get alone (the rest is Neovim loading the
-- markdown filetype for the new buffer).
local gets = {}
for i = 1, 40 do
  local id = ("bench-%06d"):format((i * 7919) % 100000)
  t = vim.uv.hrtime()
  require("heph.rpc").request("node_get", { id = id })
  table.insert(gets, ms(t))
end
local searches = {}
for _, q in ipairs({ "garden", "invoice meeting", "doc", "bicycle review", "paint" }) do
  for _ = 1, 10 do
    t = vim.uv.hrtime()
    require("heph.rpc").request("search", { query = q, limit = 50 })
    table.insert(searches, ms(t))
  end
end
local mem = vim.fn.system({ "ps", "-o", "rss=", "-p", tostring(require("heph.rpc").pid()) })
print(("plugin/heph.lua load: median %.3f ms"):format(median(loads)))
print(("sidecar start to first reply: %.1f ms"):format(ready))
print(("open a node (:Heph open → buffer shown): median %.2f ms"):format(median(opens)))
print(("  of which node_get RPC: median %.2f ms"):format(median(gets)))
print(("save a node (:w round trip): median %.2f ms"):format(median(saves)))
print(("search round trip from Neovim: median %.2f ms"):format(median(searches)))
print(("sidecar memory after the run: %.1f MB RSS"):format(tonumber(mem) / 1024))
vim.cmd("qa!")

---@mod heph heph.nvim
---
--- Tasks, notes and a daily journal inside Neovim, kept in a local SQLite
--- replica by a Rust sidecar and synced through a hub. `setup()` is
--- optional; nothing starts until the first :Heph command.

local M = {}

---Configures heph. Optional: heph works with no configuration at all.
---@param opts? heph.SetupOpts
function M.setup(opts)
  require("heph.config").apply(opts)
  if require("heph.config").values.keymaps then
    local map = function(lhs, plug, desc)
      vim.keymap.set("n", lhs, plug, { desc = desc })
    end
    map("<leader>hh", "<Plug>(heph-home)", "heph home")
    map("<leader>ht", "<Plug>(heph-today)", "heph today")
    map("<leader>hn", "<Plug>(heph-next)", "heph next tasks")
    map("<leader>hs", "<Plug>(heph-search)", "heph search")
    map("<leader>ha", "<Plug>(heph-task)", "heph add task")
    map("<leader>hd", "<Plug>(heph-done)", "heph done")
    vim.keymap.set({ "n", "x" }, "<leader>hp", "<Plug>(heph-promote)", { desc = "heph promote" })
  end
end

---Short sync status for a status line. Cheap: no RPC, reads vim.g.heph_status.
---@return string
function M.statusline()
  return require("heph.sync").statusline()
end

---Sends a request to the sidecar (see doc/rpc.md).
---@param method string
---@param params? table
---@return table
function M.request(method, params)
  return require("heph.rpc").request(method, params)
end

return M

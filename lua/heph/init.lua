---@mod heph heph.nvim
---
--- Tasks, notes and a daily journal inside Neovim, kept in a local SQLite
--- replica by a Rust sidecar and synced through a hub. `setup()` is
--- optional; nothing starts until the first :Heph command.

local M = {}

---Configures heph. Optional: heph works with no configuration at all.
---@param opts? heph.SetupOpts
function M.setup(opts)
  local changed = require("heph.config").apply(opts)
  -- The sidecar read its options when it started.
  local for_sidecar = vim.tbl_filter(function(name)
    return name ~= "keymaps"
  end, changed)
  if #for_sidecar > 0 and package.loaded["heph.rpc"] and require("heph.rpc").running() then
    vim.notify(
      ("heph: %s changed after the sidecar started; restart Neovim for the change to apply"):format(table.concat(for_sidecar, ", ")),
      vim.log.levels.WARN
    )
  end
  if require("heph.config").values.keymaps then
    -- A map the user has already is theirs: left as it is.
    local map = function(lhs, plug, desc, modes)
      for _, mode in ipairs(modes or { "n" }) do
        if vim.fn.maparg(lhs, mode) == "" then
          vim.keymap.set(mode, lhs, plug, { desc = desc })
        end
      end
    end
    map("<leader>hh", "<Plug>(heph-home)", "heph home")
    map("<leader>ht", "<Plug>(heph-today)", "heph today")
    map("<leader>hn", "<Plug>(heph-next)", "heph next tasks")
    map("<leader>hs", "<Plug>(heph-search)", "heph search")
    map("<leader>ha", "<Plug>(heph-task)", "heph add task")
    map("<leader>hd", "<Plug>(heph-done)", "heph done")
    map("<leader>hp", "<Plug>(heph-promote)", "heph promote", { "n", "x" })
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

---@mod heph.events Notifications from the sidecar
---
--- The sidecar calls `require("heph.events").dispatch(event, payload)`
--- through nvim_exec_lua (doc/rpc.md).

local M = {}

---@param event string
---@param payload table
function M.dispatch(event, payload)
  vim.schedule(function()
    if event == "status" then
      require("heph.sync").set_status(payload)
    elseif event == "nodes_changed" then
      require("heph.buffers").nodes_changed(payload and payload.ids or {})
      require("heph.sync").on_background(payload)
    elseif event == "sync_done" then
      require("heph.sync").on_done(payload)
    elseif event == "login" then
      require("heph.login").on_event(payload)
    end
  end)
end

return M

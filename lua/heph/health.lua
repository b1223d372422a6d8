---@mod heph.health :checkhealth heph

local M = {}

function M.check()
  local health = vim.health
  local rpc = require("heph.rpc")
  health.start("heph: sidecar binary")
  local cmd, why = rpc.command()
  if not cmd then
    health.error(why)
  else
    local out = vim.fn.system(vim.list_extend(vim.deepcopy(cmd), { "--version" }))
    if vim.v.shell_error == 0 then
      health.ok(("%s (%s)"):format(table.concat(cmd, " "), vim.trim(out)))
    else
      health.error(("%s --version failed: %s"):format(cmd[1], vim.trim(out)))
    end
  end
  health.start("heph: sidecar")
  local ok, hello = pcall(rpc.request, "hello", {})
  if not ok then
    health.error(tostring(hello))
    return
  end
  health.ok(("running, pid %d"):format(hello.pid))
  local size = vim.fn.getfsize(hello.replica or "")
  health.info(("replica: %s (%s)"):format(hello.replica or "?", size >= 0 and (math.floor(size / 1024) .. " KiB") or "missing"))
  health.info("log file: " .. (hello.log_file or rpc.log_file()))
  local sok, status = pcall(rpc.request, "status", {})
  if sok then
    health.info("sync: " .. (status.state or "unknown") .. (status.hub and (" with " .. status.hub) or ""))
    if status.token_store then
      health.info("token store: " .. status.token_store)
    end
  end
end

return M

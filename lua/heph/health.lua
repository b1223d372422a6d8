---@mod heph.health :checkhealth heph

local M = {}

function M.check()
  local health = vim.health
  local rpc = require("heph.rpc")
  health.start("heph: sidecar binary")
  local cmd, why = rpc.command()
  if not cmd then
    health.error(why, { "Build it: cargo build --release --locked in the plugin's folder, or set `cmd` in setup()" })
  else
    local ran, out = pcall(vim.fn.system, vim.list_extend(vim.deepcopy(cmd), { "--version" }))
    if ran and vim.v.shell_error == 0 then
      health.ok(("%s (%s)"):format(table.concat(cmd, " "), vim.trim(out)))
    else
      -- Not executable (a wrong `cmd`): said here, and the rest still runs.
      local why = ran and vim.trim(out) or tostring(out):gsub("^Vim:", "")
      health.error(("%s --version failed: %s"):format(cmd[1], why), { "Check `cmd` in setup(), or build heph: cargo build --release --locked" })
    end
  end
  health.start("heph: sidecar")
  local ok, hello = pcall(rpc.request, "hello", {})
  if not ok then
    if not cmd then
      -- Said above, with what to do.
      return health.error("not started: no binary")
    end
    health.error((tostring(hello):gsub("^heph: ", "")), { "See the log file: " .. rpc.log_file() })
    return
  end
  health.ok(("running, pid %d"):format(hello.pid))
  local size = vim.fn.getfsize(hello.replica or "")
  health.info(("replica: %s (%s)"):format(hello.replica or "?", size >= 0 and (math.floor(size / 1024) .. " KiB") or "missing"))
  health.info("log file: " .. (hello.log_file or rpc.log_file()))
  local sok, status = pcall(rpc.request, "status", {})
  if sok then
    status = require("heph.sync").clean(status)
    health.start("heph: sync")
    -- Started by this check: give the first pass a moment, so what is
    -- shown is its result rather than "syncing".
    if status.state == "syncing" and not status.last_sync then
      vim.wait(5000, function()
        local got, now = pcall(rpc.request, "status", {})
        if got then
          status = require("heph.sync").clean(now)
        end
        return not got or status.state ~= "syncing"
      end, 100)
    end
    local text = "sync: " .. (status.state or "unknown") .. (status.hub and (" with " .. status.hub) or "")
    if status.state == "login_needed" then
      health.warn("login needed: sync is paused", { "Run :HephLogin", "Or join with a token: :HephJoin URL" })
    elseif status.state == "removed" then
      health.warn("this device was removed from the hub: sync is stopped", { "Ask the hub's owner for a new join token, then :HephJoin URL" })
    elseif status.state == "error" or status.state == "offline" then
      health.warn(text .. (status.last_error and (": " .. status.last_error) or ""), { "See :HephSync status and the log file" })
    elseif status.state == "disabled" and status.last_error then
      -- A config that does not load turns sync off.
      health.error("sync is off: " .. status.last_error, { "Fix $XDG_CONFIG_HOME/heph/config.toml: see :help heph-config-file" })
    elseif status.state == "syncing" and not status.last_sync then
      -- Still on its first pass after 5 s: a hub that is slow or does not
      -- answer. Not yet something that works.
      health.warn("the first sync with " .. (status.hub or "the hub") .. " has not finished yet", {
        "Check again in a moment; see :HephSync status and the log file",
      })
    elseif status.state == "synced" or status.state == "pending" or status.state == "syncing" then
      health.ok(text)
    else
      health.info(text)
    end
    local plain = status.auth == nil or status.auth == "not logged in"
    if status.state == "disabled" and status.logged_in == false then
      -- No hub and nothing stored: nothing to say about credentials.
      return
    elseif status.logged_in == false and not plain then
      -- A credential that cannot be read says why.
      health.warn("credentials: " .. status.auth, { "Log in again: :HephLogin, or :HephJoin URL" })
    elseif status.logged_in == false then
      health.info(
        (status.state == "synced" or status.state == "pending")
            and "no credential stored: this hub lets the device sync without one"
          or "no credential stored (:HephLogin, or :HephJoin URL with a token from the hub's owner)"
      )
    else
      if status.auth then
        -- "device credential (label …)" or "OIDC login".
        health.info("authenticated by: " .. status.auth)
      end
      if status.token_store then
        health.info("token store: " .. status.token_store)
      end
    end
  end
end

return M

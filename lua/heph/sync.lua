---@mod heph.sync Sync status, :HephSync and the status line
---
--- Status is published as `vim.g.heph_status` and a `User HephStatus`
--- autocmd that fires only when something changed (gitsigns style), so
--- statusline() never talks to the sidecar.

local rpc = require("heph.rpc")

local M = {}
local H = {}

---@class heph.Status
---@field state "synced"|"pending"|"syncing"|"offline"|"error"|"login_needed"|"removed"|"disabled"
---@field auth? string how this device authenticates ("device credential (label …)", "OIDC login")
---@field pending? integer ops not yet on the hub
---@field last_sync? string time of the last successful sync
---@field last_error? string
---@field offline_since? string
---@field quarantined? integer pulled ops set aside (retried on every sync)
---@field quarantine_reason? string why the newest one was set aside
---@field refused? integer this device's ops the hub refused (kept locally)
---@field refused_reason? string why the newest one was refused
---@field held? integer body edits waiting for a version never received

---A reply without its msgpack nils: they arrive as vim.NIL, which is truthy.
---@param value any
---@return table
function M.clean(value)
  if type(value) ~= "table" then
    return {}
  end
  -- (`v ~= vim.NIL and v or nil` would drop every `false` too.)
  return vim.tbl_map(function(v)
    if v == vim.NIL then
      return nil
    end
    return v
  end, value)
end

---Stores a new status; fires User HephStatus and redraws the status lines
---when it differs.
---@param status heph.Status
function M.set_status(status)
  status = M.clean(status)
  if vim.deep_equal(vim.g.heph_status, status) then
    return
  end
  -- Sync turned off by a config that does not load: said once.
  if status.state == "disabled" and type(status.last_error) == "string" and H.told_off ~= status.last_error then
    H.told_off = status.last_error
    vim.notify("heph: sync is off: " .. status.last_error, vim.log.levels.WARN)
  end
  vim.g.heph_status = status
  vim.api.nvim_exec_autocmds("User", { pattern = "HephStatus", modeline = false })
  vim.cmd("redrawstatus!")
end

---A short status text for a status line.
---@param status? heph.Status defaults to vim.g.heph_status
---@return string
function M.statusline(status)
  status = M.clean(status or vim.g.heph_status)
  if type(status) ~= "table" or not status.state or status.state == "disabled" then
    return ""
  end
  local text = H.state_text(status)
  -- Ops set aside (quarantined pulls, pushes the hub refused) stay visible
  -- until they apply: `:HephSync status` says why.
  local aside = (tonumber(status.quarantined) or 0) + (tonumber(status.refused) or 0) + (tonumber(status.held) or 0)
  if aside > 0 then
    text = ("%s · %d set aside"):format(text, aside)
  end
  return text
end

---@param status heph.Status
---@return string
function H.state_text(status)
  local s = status.state
  if s == "synced" then
    return "heph ✓"
  elseif s == "pending" then
    return ("heph %d pending"):format(status.pending or 0)
  elseif s == "syncing" then
    return "heph syncing…"
  elseif s == "offline" then
    local text = status.offline_since and ("heph offline since " .. status.offline_since) or "heph offline"
    -- What waits for the hub is worth knowing while it cannot be reached.
    local pending = tonumber(status.pending) or 0
    return pending > 0 and ("%s · %d pending"):format(text, pending) or text
  elseif s == "login_needed" then
    return "heph login needed"
  elseif s == "removed" then
    -- The owner revoked this device: no retries until it joins again.
    return "heph removed from the hub"
  elseif s == "error" then
    return "heph sync error"
  elseif s == "stopped" then
    -- The sidecar exited; the next heph command starts it again.
    return "heph stopped"
  end
  return "heph " .. s
end

---:HephSync [status]
---@param arg? string
function M.command(arg)
  if arg == "status" then
    local ok, status = pcall(rpc.request, "status", {})
    if not ok then
      return vim.notify(tostring(status), vim.log.levels.ERROR)
    end
    status = M.clean(status)
    M.set_status(status)
    local lines = { "heph sync: " .. (status.state or "unknown") }
    if status.hub then
      table.insert(lines, "hub: " .. status.hub)
    end
    table.insert(lines, "pending: " .. tostring(status.pending or 0))
    if status.auth then
      table.insert(lines, "auth: " .. status.auth)
    end
    table.insert(lines, "last sync: " .. (status.last_sync or "never"))
    if status.last_error then
      table.insert(lines, "last error: " .. status.last_error)
    end
    if (tonumber(status.quarantined) or 0) > 0 then
      local reason = type(status.quarantine_reason) == "string" and status.quarantine_reason or ""
      table.insert(lines, ("set aside: %d pulled op(s), retried on each sync; newest: %s"):format(status.quarantined, reason))
    end
    if (tonumber(status.refused) or 0) > 0 then
      local reason = type(status.refused_reason) == "string" and status.refused_reason or ""
      table.insert(lines, ("refused by the hub: %d op(s) kept on this device; newest: %s"):format(status.refused, reason))
    end
    if (tonumber(status.held) or 0) > 0 then
      table.insert(
        lines,
        ("held: %d body edit(s) of other devices wait for the version they change, which never came (refused by the hub on the device that made it?)"):format(
          status.held
        )
      )
    end
    return vim.notify(table.concat(lines, "\n"))
  elseif arg ~= nil then
    return vim.notify("heph: :HephSync takes no argument or 'status'", vim.log.levels.ERROR)
  end
  -- A sync whose sidecar died never reports: it runs no more once that
  -- sidecar is gone (a new one has another pid), and after 2 min at most.
  if H.running and H.running_pid == rpc.pid() and vim.uv.now() - H.running < 120000 then
    return vim.notify("heph: a sync is already running; you will be told when it is done")
  end
  local ok, err = pcall(rpc.request, "sync_start", {})
  if not ok then
    return vim.notify(tostring(err), vim.log.levels.ERROR)
  end
  H.running = vim.uv.now()
  H.running_pid = rpc.pid()
  vim.notify("heph: syncing…")
end

---The outcome of a :HephSync (the `sync_done` notification).
---@param payload {ok: boolean, report?: table, error?: string}
function M.on_done(payload)
  H.running = nil
  payload = M.clean(payload) or {}
  if payload.ok ~= true then
    return vim.notify("heph: sync failed: " .. tostring(payload.error or "unknown error"), vim.log.levels.ERROR)
  end
  local report = M.clean(payload.report) or {}
  local text = ("heph: synced — pushed %d, pulled %d%s%s"):format(
    report.pushed or 0,
    report.pulled or 0,
    (report.merged or 0) > 0 and (", merged %d concurrent edit(s)"):format(report.merged) or "",
    report.push_only == true and " (this device may only push: a capture credential)" or ""
  )
  local level = vim.log.levels.INFO
  -- (Either may be nil: no ipairs over the pair.)
  for _, extra in pairs({ H.conflicts_text(report.conflict_nodes), H.revived_text(report.revived_nodes) }) do
    text = text .. "\n" .. extra
    level = vim.log.levels.WARN
  end
  for _, warning in ipairs(type(report.warnings) == "table" and report.warnings or {}) do
    text = text .. "\n" .. warning
    level = vim.log.levels.WARN
  end
  vim.notify(text, level)
end

---What a background sync (timer, saves) did that the user should know:
---nodes where it kept concurrent edits side by side, and its warnings. A
---warning is said once per session: a background pass repeats it until
---its cause is fixed, and the status line keeps showing what is set aside.
---@param payload {conflicts?: string[], warnings?: string[], revived?: string[]}
function M.on_background(payload)
  payload = M.clean(payload)
  local lines = {}
  table.insert(lines, H.conflicts_text(payload.conflicts))
  table.insert(lines, H.revived_text(payload.revived))
  H.told = H.told or {}
  for _, warning in ipairs(type(payload.warnings) == "table" and payload.warnings or {}) do
    if type(warning) == "string" and not H.told[warning] then
      H.told[warning] = true
      table.insert(lines, warning)
    end
  end
  if #lines > 0 then
    vim.notify("heph: background sync — " .. table.concat(lines, "\n"), vim.log.levels.WARN)
  end
end

---Each node of `ids` by its title, with the command that opens it.
---@param ids any
---@return string? nil without any
function H.named(ids)
  if type(ids) ~= "table" or #ids == 0 then
    return nil
  end
  local titles = {}
  for _, id in ipairs(ids) do
    local got, node = pcall(rpc.request, "node_get", { id = id })
    table.insert(titles, got and type(node) == "table" and ('"%s" (:Heph open %s)'):format(vim.fn.strtrans(node.title), id) or id)
  end
  return table.concat(titles, ", ")
end

---"conflicting edits kept side by side in …"; nil without any.
---@param ids any
---@return string?
function H.conflicts_text(ids)
  local named = H.named(ids)
  return named and "conflicting edits kept side by side in " .. named
end

---Deleted nodes a sync brought back; nil without any.
---@param ids any
---@return string?
function H.revived_text(ids)
  local named = H.named(ids)
  return named and ("came back, edited or restored on another device after it was deleted here (:Heph delete there to delete it again): " .. named)
end

return M

---@mod heph.config Configuration
---
--- One schema entry per option (type, default, description): it drives
--- validation and defaults; tests/nvim/config_spec.lua checks that the
--- annotations below and |heph-options| in doc/heph.txt name exactly these
--- options with these types.

local M = {}

---@class heph.SetupOpts
---@field cmd? string[] Command that starts the sidecar (default: found automatically).
---@field data_dir? string Replica directory (default: heph's XDG data dir).
---@field log_level? string Sidecar log level: error, warn, info, debug.
---@field keymaps? boolean Set the default keymaps (off unless true).
---@field hub_url? string Hub URL for sync (default: from config.toml).
---@field sync_interval? integer Seconds between background syncs.
---@field issuer? string OIDC issuer URL for :HephLogin.
---@field client_id? string OAuth client id for :HephLogin.
---@field audience? string The hub's audience (resource indicator) for :HephLogin.

---@type table<string, {type: string|string[], default: any, desc: string}>
M.schema = {
  cmd = { type = { "table", "nil" }, default = nil, desc = "command that starts the sidecar" },
  data_dir = { type = { "string", "nil" }, default = nil, desc = "replica directory" },
  log_level = { type = "string", default = "info", desc = "sidecar log level" },
  keymaps = { type = "boolean", default = false, desc = "set the default keymaps" },
  hub_url = { type = { "string", "nil" }, default = nil, desc = "hub URL" },
  sync_interval = { type = { "number", "nil" }, default = nil, desc = "seconds between syncs" },
  issuer = { type = { "string", "nil" }, default = nil, desc = "OIDC issuer" },
  client_id = { type = { "string", "nil" }, default = nil, desc = "OAuth client id" },
  audience = { type = { "string", "nil" }, default = nil, desc = "hub audience for login" },
}

---@type heph.SetupOpts
M.values = {}
for name, entry in pairs(M.schema) do
  M.values[name] = entry.default
end

---Validates and applies user options. Each call starts from the
---defaults, as a second `setup()` in a reloaded config expects. A bad
---value is reported and left out (the default stays): an error thrown
---here would stop the rest of the user's init.lua with a stack trace.
---@param opts heph.SetupOpts|nil
---@return string[] changed names of options whose value changed
function M.apply(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    vim.notify("heph: setup() takes a table of options; ignored", vim.log.levels.ERROR)
    return {}
  end
  local before = M.values
  M.values = {}
  for name, entry in pairs(M.schema) do
    M.values[name] = entry.default
  end
  local function refuse(name, why)
    vim.notify(("heph: option '%s' %s; ignored"):format(name, why), vim.log.levels.ERROR)
  end
  for name, value in pairs(opts) do
    local entry = M.schema[name]
    if not entry then
      vim.notify(("heph: unknown option '%s' ignored"):format(name), vim.log.levels.WARN)
    else
      local types = type(entry.type) == "table" and entry.type or { entry.type }
      if not vim.tbl_contains(types, type(value)) then
        refuse(name, ("must be %s, got %s"):format(table.concat(types, " or "), type(value)))
      elseif name == "log_level" and not vim.tbl_contains({ "error", "warn", "info", "debug", "trace" }, value) then
        refuse(name, "must be one of error, warn, info, debug, trace")
      elseif name == "sync_interval" and (value < 1 or value % 1 ~= 0) then
        refuse(name, "must be a whole number of seconds, 1 or more")
      elseif name == "cmd" and (#value == 0 or not vim.iter(value):all(function(v)
        return type(v) == "string"
      end)) then
        refuse(name, "must be a list of strings, the heph binary first")
      elseif name == "data_dir" and vim.trim(value) == "" then
        refuse(name, "must name a folder")
      elseif name == "data_dir" then
        -- `~`, `$HOME` and relative paths: one folder wherever Neovim
        -- starts (a literal `~` folder appeared in the current directory).
        local full = vim.fn.fnamemodify(vim.fn.expand(value), ":p")
        M.values[name] = full == "/" and full or (full:gsub("/$", ""))
      elseif name == "cmd" then
        local cmd = vim.deepcopy(value)
        cmd[1] = cmd[1]:find("[/~$]") and vim.fn.expand(cmd[1]) or cmd[1]
        M.values[name] = cmd
      elseif name == "hub_url" and value ~= "" and not value:match("^https?://[^/]") then
        refuse(name, ("must be an http:// or https:// URL, got %q"):format(value))
      else
        M.values[name] = value
      end
    end
  end
  local changed = {}
  for name in pairs(M.schema) do
    if not vim.deep_equal(before[name], M.values[name]) then
      table.insert(changed, name)
    end
  end
  table.sort(changed)
  return changed
end

return M

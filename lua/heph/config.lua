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

---Validates and applies user options.
---@param opts heph.SetupOpts|nil
function M.apply(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("heph.setup: opts must be a table")
  end
  for name, value in pairs(opts) do
    local entry = M.schema[name]
    if not entry then
      vim.notify(("heph: unknown option '%s' ignored"):format(name), vim.log.levels.WARN)
    else
      local types = type(entry.type) == "table" and entry.type or { entry.type }
      if not vim.tbl_contains(types, type(value)) then
        error(("heph.setup: option '%s' must be %s, got %s"):format(name, table.concat(types, " or "), type(value)))
      end
      M.values[name] = value
    end
  end
  if M.values.log_level and not vim.tbl_contains({ "error", "warn", "info", "debug", "trace" }, M.values.log_level) then
    error("heph.log_level must be one of error, warn, info, debug, trace")
  end
end

return M

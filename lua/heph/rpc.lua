---@mod heph.rpc The sidecar process
---
--- Starts `heph sidecar` on first use with jobstart({rpc = true}), restarts
--- it when it dies (at most three times a minute) and turns its failures into
--- clear messages.

local config = require("heph.config")

local M = {}
local H = {}

---@type integer|nil
H.chan = nil
---@type integer[] times of recent unexpected exits, for the restart limit
H.crashes = {}
---@type string|nil
H.log_file = nil

---A failed request: the sidecar's typed error (doc/rpc.md, "Errors"), or
---`sidecar` when the process itself failed. `tostring()` gives the message
---as users see it.
---@class heph.RpcError
---@field code "bad_request"|"invalid"|"not_found"|"stale"|"busy"|"damaged"|"failed"|"sidecar"
---@field message string
---@field line? integer 1-based buffer line the error is about
---@field errors? {line: integer, message: string}[] every error of a buffer that does not parse
local RpcError = {}
RpcError.__index = RpcError
RpcError.__tostring = function(e)
  return "heph: " .. e.message
end

---What users are told to do, by code, after the message.
---(A busy replica's message says what to do itself.)
H.advice = {
  damaged = "see :checkhealth heph",
}

---@param code string
---@param message string
---@return heph.RpcError
function H.error(code, message)
  return setmetatable({ code = code, message = message }, RpcError)
end

---Reads the error text of a failed request: the sidecar's JSON object, or
---plain text from Neovim itself.
---@param text string
---@return heph.RpcError
function H.decode_error(text)
  local json = text:match("^%s*(%b{})%s*$")
  local ok, obj = pcall(vim.json.decode, json or "", { luanil = { object = true, array = true } })
  if not (ok and type(obj) == "table" and type(obj.code) == "string" and type(obj.message) == "string") then
    return H.error("failed", text)
  end
  if H.advice[obj.code] then
    obj.message = obj.message .. " (" .. H.advice[obj.code] .. ")"
  end
  return setmetatable(obj, RpcError)
end

---Whether `err` (from a pcall of `request`) is a typed error, of `code` when given.
---@param err any
---@param code? string
---@return boolean
function M.is_error(err, code)
  return getmetatable(err) == RpcError and (code == nil or err.code == code)
end

---The plugin's root folder (two levels above this file's lua/heph/).
---@return string
function M.plugin_root()
  local source = debug.getinfo(1, "S").source:sub(2)
  return vim.fn.fnamemodify(source, ":p:h:h:h")
end

---The command that starts the sidecar: opts.cmd, then the plugin's own
---release build, then `heph` on PATH.
---@return string[]|nil cmd, string|nil why
function M.command()
  if config.values.cmd then
    return vim.deepcopy(config.values.cmd)
  end
  local own = M.plugin_root() .. "/target/release/heph"
  if vim.fn.executable(own) == 1 then
    return { own }
  end
  if vim.fn.executable("heph") == 1 then
    return { "heph" }
  end
  return nil, "heph binary not found: run `cargo build --release --locked` in the plugin folder or set cmd in setup()"
end

---Path of the sidecar log file.
---@return string
function M.log_file()
  return vim.fn.stdpath("log") .. "/heph-sidecar.log"
end

---Whether the sidecar is running now.
---@return boolean
function M.running()
  return H.chan ~= nil
end

---The channel id, starting the sidecar when needed.
---@return integer
function M.ensure()
  if H.chan then
    return H.chan
  end
  local now = vim.uv.now()
  H.crashes = vim.tbl_filter(function(t)
    return now - t < 60000
  end, H.crashes)
  if #H.crashes > 3 then
    local last = H.last_failure and (" (last: %s)"):format(H.last_failure) or ""
    error(
      H.error("sidecar", ("the sidecar keeps dying%s; see %s (restart Neovim to try again)"):format(last, M.log_file())),
      0
    )
  end
  local cmd, why = M.command()
  if not cmd then
    error(H.error("sidecar", why), 0)
  end
  if config.values.data_dir then
    vim.list_extend(cmd, { "--data-dir", config.values.data_dir })
  end
  vim.list_extend(cmd, { "sidecar", "--log-file", M.log_file() })
  local env = { HEPH_LOG = config.values.log_level }
  if config.values.hub_url then
    env.HEPH_HUB_URL = config.values.hub_url
  end
  if config.values.sync_interval then
    env.HEPH_SYNC_INTERVAL = tostring(config.values.sync_interval)
  end
  env.HEPH_ISSUER = config.values.issuer
  env.HEPH_CLIENT_ID = config.values.client_id
  env.HEPH_AUDIENCE = config.values.audience
  local chan
  H.stderr = nil
  local ok, err = pcall(function()
    chan = vim.fn.jobstart(cmd, {
      rpc = true,
      env = env,
      on_stderr = function(_, data)
        local text = table.concat(data or {}, "\n")
        if text:match("%S") then
          H.stderr = text
        end
      end,
      on_exit = function(id, code)
        if H.chan == id then
          H.chan = nil
          vim.schedule(H.forget_login)
          if not H.stopping then
            table.insert(H.crashes, vim.uv.now())
          end
          if not H.stopping and package.loaded["heph.sync"] and vim.g.heph_status then
            -- Nothing syncs until the next command starts a new sidecar:
            -- the status line must not keep saying all is well.
            vim.schedule(function()
              require("heph.sync").set_status({ state = "stopped" })
            end)
          end
          if code ~= 0 and not H.stopping then
            vim.schedule(function()
              vim.notify(
                ("heph: sidecar exited (%d)%s; it restarts on the next command"):format(code, H.stderr and (": " .. H.stderr) or ""),
                vim.log.levels.WARN
              )
            end)
          end
        end
      end,
    })
  end)
  if not ok or not chan or chan <= 0 then
    error(H.error("sidecar", ("cannot start %s: %s"):format(cmd[1], ok and "jobstart failed" or tostring(err))), 0)
  end
  H.chan = chan
  H.stopping = false
  local answered, why = H.learn_writes(chan)
  -- A closed channel, not an error reply (an older sidecar without hello).
  if not answered and (why:match("[Ii]nvalid channel") or why:match("[Cc]hannel was closed")) then
    H.check_started(chan)
  end
  return chan
end

---A sidecar that did not answer `hello` and exited could not start (a
---replica it refuses: damaged, not heph's, from a newer heph; a data dir
---that is a file): its own words, from stderr, are the error, not "the
---sidecar stopped during …" for whatever the user asked.
---@param chan integer
function H.check_started(chan)
  -- Ours to report: its on_exit (which may run while we wait) stays quiet.
  H.chan = nil
  local code = vim.fn.jobwait({ chan }, 2000)[1]
  if code == -1 then
    H.chan = chan
    return
  end
  table.insert(H.crashes, vim.uv.now())
  vim.wait(200, function()
    return H.stderr ~= nil
  end, 10)
  local said = H.stderr and vim.trim((H.stderr:gsub("^heph: ", ""):gsub("^error: ", ""))) or nil
  H.last_failure = said or ("exit code %d"):format(code)
  error(H.error("sidecar", "the sidecar could not start: " .. H.last_failure), 0)
end

---A login in progress dies with its sidecar: its code is of no use.
function H.forget_login()
  local login = package.loaded["heph.login"]
  if login then
    login.forget()
  end
end

-- On exit: pending ops are pushed first, waiting at most 1.5 s (the
-- sidecar bounds it). Asked whenever a sidecar runs, from here (loaded
-- with the sidecar, unlike the sync module, which a `:wq` right after the
-- first save may never load), and without the status line's count, which
-- comes through the event loop `:wq` never gives a turn: the sidecar
-- answers at once when nothing is pending.
vim.api.nvim_create_autocmd("VimLeavePre", {
  callback = function()
    if H.chan then
      pcall(M.request, "sync_flush", { timeout_ms = 1500 })
    end
    H.stopping = true
  end,
})

---Requests that change the replica, as the sidecar's `hello` names them:
---never sent twice. Until a sidecar has said, every request counts as one.
---@type table<string, boolean>|nil
M.writes = nil

---@param method string
---@return boolean
function H.writes(method)
  return M.writes == nil or M.writes[method] == true
end

---Greets a fresh sidecar and learns from it which requests write.
---@param chan integer
---@return boolean answered
---@return string why when not
function H.learn_writes(chan)
  local ok, hello = pcall(vim.rpcrequest, chan, "hello", vim.empty_dict())
  if not ok then
    return false, tostring(hello)
  end
  if type(hello) == "table" and type(hello.writes) == "table" then
    local writes = {}
    for _, name in ipairs(hello.writes) do
      writes[name] = true
    end
    M.writes = writes
  end
  return true, ""
end

---Sends a request and waits for the reply. Failures are raised as
---`heph.RpcError` objects (no Lua traceback; `tostring` gives the message);
---a dead sidecar is restarted once.
---@param method string
---@param params? table
---@return table
function M.request(method, params)
  params = params or vim.empty_dict()
  for attempt = 1, 2 do
    local chan = M.ensure()
    if H.writes(method) and vim.fn.jobwait({ chan }, 0)[1] ~= -1 then
      -- Died since the last request: start a fresh one before writing.
      H.chan = nil
      chan = M.ensure()
    end
    local ok, result = pcall(vim.rpcrequest, chan, method, params)
    if ok then
      return result
    end
    local msg = tostring(result)
    -- A dead channel: forget it and try once more with a fresh sidecar,
    -- unless the request writes: it may have landed before the sidecar
    -- died, and sending it again would apply it twice.
    local dead = msg:match("[Ii]nvalid channel") or msg:match("[Cc]hannel was closed") or vim.fn.jobwait({ chan }, 0)[1] ~= -1
    if dead then
      H.chan = nil
    end
    if dead and H.writes(method) then
      error(H.error("sidecar", ("the sidecar stopped during %s; the change may or may not have been saved: check, then try again"):format(method)), 0)
    elseif not dead then
      msg = msg:gsub("^Vim:", ""):gsub("^Error invoking '[^']*' on channel %d+:%s*", "")
      error(H.decode_error(msg), 0)
    elseif attempt == 2 then
      error(H.error("sidecar", "the sidecar stopped while answering " .. method), 0)
    end
  end
  error(H.error("sidecar", "the sidecar is not answering"), 0)
end

---Stops the sidecar (tests). The next request starts a new one with a
---clean slate: earlier crashes no longer count.
function M.stop()
  H.crashes = {}
  H.last_failure = nil
  if H.chan then
    H.stopping = true
    pcall(vim.fn.jobstop, H.chan)
    H.chan = nil
    H.forget_login()
  end
end

---The sidecar's process id, when running.
---@return integer|nil
function M.pid()
  if not H.chan then
    return nil
  end
  local ok, pid = pcall(vim.fn.jobpid, H.chan)
  return ok and pid or nil
end

return M

---@mod heph.login :HephLogin, :HephJoin and :HephLogout
---
--- The sidecar runs the device-code flow and reports progress as `login`
--- events; this module shows the code in a floating window, copies it to
--- the + register and offers to open the browser. Polling happens in the
--- sidecar, so the editor stays responsive.

local rpc = require("heph.rpc")

local M = {}
local H = {}

---@type integer|nil
H.win = nil
---The code the browser was last offered for.
---@type string|nil
H.offered = nil
---Whether the last poll failed (a notice was shown).
---@type boolean
H.retrying = false

function H.close()
  if H.win and vim.api.nvim_win_is_valid(H.win) then
    vim.api.nvim_win_close(H.win, true)
  end
  H.win = nil
end

---@param lines string[]
function H.float(lines)
  H.close()
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  local width = 0
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l))
  end
  H.win = vim.api.nvim_open_win(buf, false, {
    relative = "editor",
    row = 1,
    col = math.max(vim.o.columns - width - 4, 0),
    width = width + 2,
    height = #lines,
    style = "minimal",
    border = "rounded",
    title = " heph login ",
  })
  vim.keymap.set("n", "q", H.close, { buffer = buf })
end

---Handles a `login` event from the sidecar (also the outcome of :HephJoin).
---@param ev {state: string, verification_uri?: string, verification_uri_complete?: string, user_code?: string, message?: string, store?: string, fallback?: boolean, hub?: string, label?: string, scope?: string, device_id?: string, configured?: boolean}
function M.on_event(ev)
  if ev.state == "joined" then
    local text = ("heph: joined %s as %q (scope %s); the credential is kept in %s"):format(
      ev.hub or "the hub",
      ev.label or "device",
      ev.scope or "full",
      ev.store or "the token store"
    )
    if ev.configured == false then
      -- The credential is stored, but sync talks to another hub (or none).
      text = text .. ("\nset hub_url = %q in setup() or config.toml to sync with it"):format(ev.hub or "")
    end
    return vim.notify(text, (ev.fallback or ev.configured == false) and vim.log.levels.WARN or vim.log.levels.INFO)
  elseif ev.state == "join_failed" then
    return vim.notify("heph: " .. (ev.message or "cannot join"), vim.log.levels.ERROR)
  elseif ev.state == "code" then
    local lines = {
      "Open: " .. (ev.verification_uri or "?"),
      "Code: " .. (ev.user_code or "?"),
    }
    if ev.verification_uri_complete then
      table.insert(lines, "or:   " .. ev.verification_uri_complete)
    end
    if vim.fn.has("clipboard") == 1 then
      pcall(vim.fn.setreg, "+", ev.user_code)
      table.insert(lines, "(code copied to the + register)")
    end
    H.float(lines)
    if H.offered == ev.user_code then
      return
    end
    H.offered = ev.user_code
    -- The built-in vim.ui.select blocks on a prompt before the float is
    -- drawn: draw it first, and put the code in the question too.
    vim.cmd.redraw()
    local prompt = ("heph login: enter code %s at %s — open the browser?"):format(
      ev.user_code or "?",
      ev.verification_uri or "?"
    )
    vim.ui.select({ "Open the browser", "Not now" }, { prompt = prompt }, function(choice)
      if choice == "Open the browser" and vim.ui.open then
        vim.ui.open(ev.verification_uri_complete or ev.verification_uri)
      end
    end)
  elseif ev.state == "retrying" then
    -- The sidecar keeps polling (slower) until the code expires.
    H.retrying = true
    vim.notify(
      ("heph login: %s; still trying until the code expires"):format(ev.message or "the issuer is unreachable"),
      vim.log.levels.WARN
    )
  elseif ev.state == "polling" then
    if H.retrying then
      H.retrying = false
      vim.notify("heph login: the issuer answers again")
    end
  elseif ev.state == "done" then
    H.retrying = false
    H.close()
    -- Where the tokens went; a warning when no keyring could take them.
    vim.notify(
      ("heph: logged in; tokens are kept in %s"):format(ev.store or "the token store"),
      ev.fallback and vim.log.levels.WARN or vim.log.levels.INFO
    )
  elseif ev.state == "failed" then
    H.retrying = false
    H.close()
    vim.notify("heph: login failed: " .. (ev.message or "unknown reason"), vim.log.levels.ERROR)
  end
end

---:HephLogin — the sidecar polls; the editor stays free. A second
---:HephLogin while one is pending shows the same code again.
function M.start()
  local ok, reply = pcall(rpc.request, "login", {})
  if not ok then
    return vim.notify(tostring(reply), vim.log.levels.ERROR)
  end
  if reply.state == "started" then
    vim.notify("heph: asking the issuer for a login code…")
  end
end

---Drops a login in progress (the sidecar that ran it is gone): closes the
---code window, so a later :HephLogin starts afresh.
function M.forget()
  H.close()
  H.offered = nil
  H.retrying = false
end

---:HephJoin URL [TOKEN] — redeems a single-use join token from the hub's
---owner (`heph hub join-token create`); asks for the token when it is not
---given, so it stays out of the command history. The sidecar redeems it in
---the background and reports as a `login` event.
---@param url? string
---@param token? string
function M.join(url, token)
  if not url or url == "" then
    return vim.notify("heph: :HephJoin needs the hub's URL: :HephJoin URL [TOKEN]", vim.log.levels.ERROR)
  end
  local function send(tok)
    tok = tok and vim.trim(tok) or ""
    -- The built-in prompt keeps what was typed in the input history, which
    -- ShaDa saves: the token comes out of it again.
    for i = vim.fn.histnr("@"), math.max(vim.fn.histnr("@") - 3, 1), -1 do
      if tok ~= "" and vim.trim(vim.fn.histget("@", i)) == tok then
        vim.fn.histdel("@", i)
      end
    end
    if tok == "" then
      return vim.notify("heph: join cancelled (no token)")
    end
    local ok, reply = pcall(rpc.request, "join", { url = url, token = tok })
    if not ok then
      return vim.notify(tostring(reply), vim.log.levels.ERROR)
    end
    vim.notify(("heph: joining %s…"):format(url))
  end
  if token and token ~= "" then
    return send(token)
  end
  vim.ui.input({ prompt = ("heph: join token for %s: "):format(url) }, send)
end

---:HephLogout
function M.logout()
  local ok, reply = pcall(rpc.request, "logout", {})
  -- A login waiting for its code is cancelled with it, even by a logout
  -- that could not forget the stored tokens.
  M.forget()
  if not ok then
    return vim.notify(tostring(reply), vim.log.levels.ERROR)
  end
  if reply.removed == false then
    return vim.notify("heph: not logged in")
  end
  local note = type(reply.note) == "string" and reply.note or nil
  if note then
    -- The issuer did not revoke the refresh token: worth a warning.
    return vim.notify(
      "heph: logged out; the tokens and the device credential are forgotten here, but " .. note,
      vim.log.levels.WARN
    )
  end
  vim.notify("heph: logged out; the tokens and the device credential are forgotten")
end

---The floating window, when shown (tests).
---@return integer|nil
function M.window()
  return H.win
end

return M

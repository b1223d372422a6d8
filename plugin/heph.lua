-- heph.nvim: tasks, notes and a daily journal. This file only defines
-- commands and autocmds; everything else loads on first use.
if vim.g.loaded_heph or vim.g.heph_disable then
  return
end
vim.g.loaded_heph = true

vim.api.nvim_create_user_command("Heph", function(cmd)
  require("heph.commands").run(cmd)
end, {
  nargs = "*",
  range = true,
  desc = "heph: tasks, notes, journal",
  complete = function(arglead, line)
    return require("heph.commands").complete(arglead, line)
  end,
})
vim.api.nvim_create_user_command("HephSync", function(cmd)
  require("heph.sync").command(cmd.fargs[1])
end, {
  nargs = "?",
  desc = "heph: sync with the hub now (or :HephSync status)",
  complete = function()
    return { "status" }
  end,
})
vim.api.nvim_create_user_command("HephLogin", function()
  require("heph.login").start()
end, { desc = "heph: log in to the hub (device code)" })
vim.api.nvim_create_user_command("HephJoin", function(cmd)
  if #cmd.fargs > 2 then
    return vim.notify("heph: :HephJoin takes the hub's URL and, optionally, the token", vim.log.levels.ERROR)
  end
  require("heph.login").join(cmd.fargs[1], cmd.fargs[2])
end, { nargs = "*", desc = "heph: join a hub with a token from its owner (:HephJoin URL [TOKEN])" })
vim.api.nvim_create_user_command("HephLogout", function()
  require("heph.login").logout()
end, { desc = "heph: forget the stored tokens" })

local group = vim.api.nvim_create_augroup("heph", { clear = true })
vim.api.nvim_create_autocmd("BufReadCmd", {
  group = group,
  pattern = "heph://*",
  callback = function(ev)
    require("heph.buffers").read(ev.buf)
  end,
})
vim.api.nvim_create_autocmd("BufWriteCmd", {
  group = group,
  pattern = "heph://*",
  callback = function(ev)
    require("heph.buffers").write(ev.buf, ev.match)
  end,
})
-- :saveas and :file rename a heph buffer to a file: it is that file now
-- (to another heph buffer's name: refused).
vim.api.nvim_create_autocmd("BufFilePre", {
  group = group,
  callback = function(ev)
    if vim.api.nvim_buf_is_valid(ev.buf) and vim.b[ev.buf].heph then
      require("heph.buffers").renaming(ev.buf)
    end
  end,
})
vim.api.nvim_create_autocmd("BufFilePost", {
  group = group,
  callback = function(ev)
    if vim.api.nvim_buf_is_valid(ev.buf) and vim.b[ev.buf].heph then
      require("heph.buffers").renamed(ev.buf)
    end
  end,
})
-- A buffer undone back to its saved text after a change elsewhere.
vim.api.nvim_create_autocmd("BufModifiedSet", {
  group = group,
  pattern = "heph://*",
  callback = function(ev)
    if package.loaded["heph.buffers"] then
      require("heph.buffers").modified_set(ev.buf)
    end
  end,
})
-- Another Neovim, the CLI or sync may have changed open nodes.
local function check_versions()
  if package.loaded["heph.rpc"] and require("heph.rpc").running() then
    require("heph.buffers").check_versions()
    require("heph.buffers").refresh_others()
  end
end
vim.api.nvim_create_autocmd("FocusGained", { group = group, callback = check_versions })
-- Entering a list or home buffer shows the replica as it is now.
vim.api.nvim_create_autocmd("BufEnter", {
  group = group,
  pattern = "heph://*",
  callback = function(ev)
    if not vim.b[ev.buf].heph then
      -- Nothing loaded from heph (a restored session, a lazy load): read
      -- it now; during a session load, once it is done.
      if not vim.g.SessionLoad then
        require("heph.buffers").revive(ev.buf)
      end
    elseif package.loaded["heph.rpc"] and require("heph.rpc").running() then
      require("heph.buffers").entered(ev.buf)
    end
  end,
})

-- heph:// buffers with nothing loaded from heph: those a session made (as
-- empty buffers), or those Neovim made before a lazy load defined
-- BufReadCmd (`nvim heph://…` with lazy.nvim's `cmd = …`).
local function revive_all()
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    -- By name first: no heph module is loaded for other buffers.
    if vim.api.nvim_buf_get_name(buf):match("^heph://") then
      require("heph.buffers").revive(buf)
    end
  end
end
vim.api.nvim_create_autocmd("SessionLoadPost", { group = group, callback = revive_all })
if vim.v.vim_did_enter == 1 then
  vim.schedule(revive_all)
end

local plugs = {
  ["<Plug>(heph-home)"] = "home",
  ["<Plug>(heph-today)"] = "today",
  ["<Plug>(heph-next)"] = "next",
  ["<Plug>(heph-search)"] = "search",
  ["<Plug>(heph-task)"] = "task",
  ["<Plug>(heph-new)"] = "new",
  ["<Plug>(heph-done)"] = "done",
  ["<Plug>(heph-sync)"] = "sync",
  ["<Plug>(heph-notes)"] = "notes",
  ["<Plug>(heph-journal-next)"] = "journal next",
  ["<Plug>(heph-journal-prev)"] = "journal prev",
}
for lhs, sub in pairs(plugs) do
  vim.keymap.set("n", lhs, function()
    vim.cmd("Heph " .. sub)
  end, { desc = "heph " .. sub })
end
vim.keymap.set({ "n", "x" }, "<Plug>(heph-promote)", ":Heph promote<CR>", { silent = true, desc = "heph promote" })


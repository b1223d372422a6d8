-- Runs busted inside this headless Neovim (`nvim -l tests/nvim/busted.lua`).
package.path = table.concat({
  "/usr/share/lua/5.1/?.lua",
  "/usr/share/lua/5.1/?/init.lua",
  vim.fn.getcwd() .. "/tests/nvim/?.lua",
  package.path,
}, ";")
package.cpath = "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;" .. package.cpath
vim.opt.rtp:prepend(vim.fn.getcwd())
dofile(vim.fn.getcwd() .. "/plugin/heph.lua")
require("busted.runner")({ standalone = false })

-- A heph list buffer's syntax (lua/heph/buffers.lua sets it at every
-- render); here so that `:syntax on` brings it back instead of clearing it.
if vim.b.current_syntax then
  return
end
require("heph.buffers").syntax(vim.api.nvim_get_current_buf(), true)
vim.b.current_syntax = "heph_list"

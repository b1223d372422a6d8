-- The option schema in lua/heph/config.lua is the one definition of the
-- options: its LuaCATS class and |heph-options| must say the same.
local config = require("heph.config")

---@param path string
---@return string
local function read(path)
  return table.concat(vim.fn.readfile(path), "\n")
end

---The Lua types a schema entry allows, without nil, sorted.
---@param entry {type: string|string[]}
---@return string[]
local function types(entry)
  local list = type(entry.type) == "table" and entry.type or { entry.type }
  list = vim.tbl_filter(function(t)
    return t ~= "nil"
  end, vim.deepcopy(list))
  table.sort(list)
  return list
end

-- LuaCATS / vimdoc type names for Lua's.
local spelled = { table = "string[]", number = "integer", string = "string", boolean = "boolean" }
local doc_spelled = { table = "string[]", number = "number", string = "string", boolean = "boolean" }

describe("options", function()
  local names = vim.tbl_keys(config.schema)
  table.sort(names)

  it("the heph.SetupOpts annotations list exactly the schema's options, with its types", function()
    local source = read("lua/heph/config.lua")
    local annotated = {}
    for name, ty in source:gmatch("%-%-%-@field ([%w_]+)%? (%S+)") do
      annotated[name] = ty
    end
    local annotated_names = vim.tbl_keys(annotated)
    table.sort(annotated_names)
    assert.are.same(names, annotated_names)
    for _, name in ipairs(names) do
      local t = types(config.schema[name])
      assert.are.equal(1, #t, name)
      assert.are.equal(spelled[t[1]], annotated[name], name)
    end
  end)

  it("|heph-options| documents exactly the schema's options, with its types and defaults", function()
    local help = read("doc/heph.txt")
    local section = help:match("%*heph%-options%*(.-)%*heph%-lua%*")
    assert.truthy(section, "no |heph-options| section")
    local documented = {}
    for name, ty in section:gmatch("%*heph%-opt%-([%w_]+)%*%s+%((%S+)%)") do
      documented[name] = ty
    end
    local documented_names = vim.tbl_keys(documented)
    table.sort(documented_names)
    assert.are.same(names, documented_names)
    for _, name in ipairs(names) do
      assert.are.equal(doc_spelled[types(config.schema[name])[1]], documented[name], name)
      local default = config.schema[name].default
      if default ~= nil and type(default) ~= "boolean" then
        -- A default the schema sets is the one the help names.
        local entry = section:match("%*heph%-opt%-" .. name .. "%*(.-)\n  %w") or section:match("%*heph%-opt%-" .. name .. "%*(.*)")
        assert.truthy(entry:find(tostring(default), 1, true), ("%s: default %s not in the help"):format(name, tostring(default)))
      end
    end
  end)

  it("setup() refuses a bad value and ignores an unknown option, each said, without a stack trace", function()
    local before = vim.deepcopy(config.values)
    local seen = {}
    local notify = vim.notify
    vim.notify = function(msg, level)
      table.insert(seen, { msg = msg, level = level })
    end
    -- No error thrown: the rest of the user's init.lua still runs.
    local ok, err = pcall(config.apply, { keymaps = "yes" })
    local ok2 = pcall(config.apply, { sync_interval = 1.5, log_level = "loud", cmd = {} })
    config.apply({ no_such_option = 1 })
    vim.notify = notify
    assert.is_true(ok, err)
    assert.is_true(ok2)
    local defaults = {}
    for name, entry in pairs(config.schema) do
      defaults[name] = entry.default
    end
    assert.are.same(defaults, config.values)
    local said = vim.tbl_map(function(n)
      return n.msg
    end, seen)
    table.sort(said)
    assert.are.same({
      "heph: option 'cmd' must be a list of strings, the heph binary first; ignored",
      "heph: option 'keymaps' must be boolean, got string; ignored",
      "heph: option 'log_level' must be one of error, warn, info, debug, trace; ignored",
      "heph: option 'sync_interval' must be a whole number of seconds, 1 or more; ignored",
      "heph: unknown option 'no_such_option' ignored",
    }, said)
    assert.are.equal(vim.log.levels.ERROR, seen[1].level)
    config.values = before
  end)

  it("setup() expands paths, refuses a hub URL without a scheme, and starts from the defaults", function()
    local before = vim.deepcopy(config.values)
    local first, second
    local seen = require("helpers").notifications(function()
      config.apply({ data_dir = "~/notes/heph", hub_url = "http://127.0.0.1:8787", cmd = { 1, 2 } })
      first = vim.deepcopy(config.values)
      config.apply({ data_dir = "relative/dir", hub_url = "localhost:8787" })
      second = vim.deepcopy(config.values)
    end)
    config.values = before
    -- `~` is the home folder, not a folder named `~` in the current one.
    assert.are.equal(vim.fn.expand("~") .. "/notes/heph", first.data_dir)
    assert.are.equal("http://127.0.0.1:8787", first.hub_url)
    assert.is_nil(first.cmd)
    assert.are.equal(vim.fn.getcwd() .. "/relative/dir", second.data_dir)
    -- A second setup() starts from the defaults: the first's hub is gone.
    assert.is_nil(second.hub_url)
    local said = table.concat(
      vim.tbl_map(function(n)
        return n.msg
      end, seen),
      "\n"
    )
    assert.truthy(said:find("option 'cmd' must be a list of strings", 1, true), said)
    assert.truthy(said:find([[option 'hub_url' must be an http:// or https:// URL, got "localhost:8787"]], 1, true), said)
  end)

  it("setup() after the sidecar started says which options wait for a restart; keymaps keep the user's", function()
    local h = require("helpers")
    h.fresh()
    vim.keymap.set("n", "<leader>hs", "<cmd>echo 'mine'<cr>")
    h.add({ "anything" })
    vim.cmd("Heph next")
    assert.is_true(require("heph.rpc").running())
    local seen = h.notifications(function()
      require("heph").setup({ cmd = { h.bin }, data_dir = h.data_dir, hub_url = "http://127.0.0.1:9", keymaps = true })
    end)
    assert.are.equal(1, #seen, vim.inspect(seen))
    assert.truthy(seen[1].msg:find("hub_url changed after the sidecar started; restart Neovim", 1, true), seen[1].msg)
    assert.are.equal("<Cmd>echo 'mine'<CR>", vim.fn.maparg("<leader>hs", "n"))
    assert.are.equal("<Plug>(heph-home)", vim.fn.maparg("<leader>hh", "n"))
    for _, lhs in ipairs({ "<leader>hs", "<leader>hh", "<leader>ht", "<leader>hn", "<leader>ha", "<leader>hd", "<leader>hp" }) do
      pcall(vim.keymap.del, "n", lhs)
    end
    pcall(vim.keymap.del, "x", "<leader>hp")
    h.fresh()
  end)
end)

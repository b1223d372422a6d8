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
    assert.are.same(before, config.values)
    local said = vim.tbl_map(function(n)
      return n.msg
    end, seen)
    table.sort(said)
    assert.are.same({
      "heph: option 'cmd' must name the heph binary; ignored",
      "heph: option 'keymaps' must be boolean, got string; ignored",
      "heph: option 'log_level' must be one of error, warn, info, debug, trace; ignored",
      "heph: option 'sync_interval' must be a whole number of seconds, 1 or more; ignored",
      "heph: unknown option 'no_such_option' ignored",
    }, said)
    assert.are.equal(vim.log.levels.ERROR, seen[1].level)
    config.values = before
  end)
end)

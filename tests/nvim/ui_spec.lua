local h = require("helpers")
local sync = require("heph.sync")

describe("status line", function()
  before_each(function()
    h.fresh()
  end)

  it("renders each state without RPC", function()
    assert.are.equal("", require("heph").statusline())
    assert.are.equal("heph ✓", sync.statusline({ state = "synced" }))
    assert.are.equal("heph 3 pending", sync.statusline({ state = "pending", pending = 3 }))
    assert.are.equal("heph offline since 14:02", sync.statusline({ state = "offline", offline_since = "14:02" }))
    assert.are.equal(
      "heph offline since 14:02 · 3 pending",
      sync.statusline({ state = "offline", offline_since = "14:02", pending = 3 })
    )
    assert.are.equal("heph login needed", sync.statusline({ state = "login_needed" }))
    assert.is_false(require("heph.rpc").running())
  end)

  it("fires User HephStatus only on change", function()
    local fired = 0
    local id = vim.api.nvim_create_autocmd("User", {
      pattern = "HephStatus",
      callback = function()
        fired = fired + 1
      end,
    })
    require("heph.events").dispatch("status", { state = "pending", pending = 1 })
    vim.wait(100, function()
      return fired > 0
    end)
    require("heph.events").dispatch("status", { state = "pending", pending = 1 })
    require("heph.events").dispatch("status", { state = "synced", pending = 0 })
    vim.wait(100, function()
      return fired > 1
    end)
    vim.api.nvim_del_autocmd(id)
    assert.are.equal(2, fired)
    assert.are.equal("synced", vim.g.heph_status.state)
    assert.are.equal("heph ✓", require("heph").statusline())
  end)
end)

describe(":Heph", function()
  before_each(function()
    h.fresh()
  end)

  it("completes subcommands", function()
    local subs = require("heph.commands").complete("", "Heph ")
    assert.is_true(vim.tbl_contains(subs, "today"))
    assert.are.same({ "search" }, require("heph.commands").complete("sea", "Heph sea"))
    assert.is_true(vim.tbl_contains(require("heph.commands").complete("", "Heph list "), "project:"))
  end)

  it("search goes through vim.ui.select", function()
    local id = h.add({ "--kind", "note", "--body", "zebra crossing", "Walk" })
    local orig = vim.ui.select
    local offered
    vim.ui.select = function(items, opts, on_choice)
      offered = vim.tbl_map(opts.format_item, items)
      on_choice(items[1])
    end
    vim.cmd("Heph search zebra")
    vim.ui.select = orig
    assert.truthy(offered[1]:match("Walk"))
    assert.are.equal(id, require("heph.buffers").state(0).id)
  end)

  it("new asks for a title with vim.ui.input when none is given", function()
    local orig = vim.ui.input
    vim.ui.input = function(_, on_text)
      on_text("From input")
    end
    vim.cmd("Heph task")
    vim.ui.input = orig
    assert.are.equal("title: From input", h.lines()[2])
  end)

  it("home lists tasks and opens them with <CR>", function()
    local id = h.add({ "--project", "garden", "Water plants" })
    vim.cmd("Heph home")
    assert.is_false(vim.bo.modifiable)
    local row
    for i, line in ipairs(h.lines()) do
      if line:match("Water plants") then
        row = i
      end
    end
    assert.truthy(row)
    vim.api.nvim_win_set_cursor(0, { row, 0 })
    vim.cmd("normal \r")
    assert.are.equal(id, require("heph.buffers").state(0).id)
  end)

  it("unknown subcommands explain themselves", function()
    local seen = h.notifications(function()
      vim.cmd("Heph frobnicate")
    end)
    assert.truthy(seen[1].msg:match("unknown subcommand"))
  end)
end)

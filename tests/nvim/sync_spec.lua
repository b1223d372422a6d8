local h = require("helpers")

---Starts `heph hub` on a free loopback port; returns job id and URL.
local function start_hub()
  local url
  local db = vim.uv.fs_mkdtemp((os.getenv("HEPH_TEST_TMP") or "/tmp") .. "/hub-XXXXXX") .. "/hub.db"
  local job = vim.fn.jobstart({ h.bin, "hub", "--listen", "127.0.0.1:0", "--db", db }, {
    stdout_buffered = false,
    on_stdout = function(_, data)
      for _, line in ipairs(data) do
        url = url or line:match("listening on (http://%S+)")
      end
    end,
  })
  assert(h.wait(function()
    return url ~= nil
  end), "hub did not start")
  return job, url
end

describe("sync in Neovim", function()
  local hub, url, child, other_dir
  before_each(function()
    hub, url = start_hub()
    local dir = h.fresh()
    require("heph").setup({ cmd = { h.bin }, data_dir = dir, hub_url = url, sync_interval = 3600 })
    other_dir = vim.uv.fs_mkdtemp((os.getenv("HEPH_TEST_TMP") or "/tmp") .. "/replica-b-XXXXXX")
    child = vim.fn.jobstart({ h.nvim, "--embed", "--headless", "--clean" }, { rpc = true })
    vim.rpcrequest(child, "nvim_exec_lua", [[
      local root, bin, dir, url = ...
      vim.opt.rtp:prepend(root)
      dofile(root .. "/plugin/heph.lua")
      require("heph").setup({ cmd = { bin }, data_dir = dir, hub_url = url, sync_interval = 3600 })
    ]], { vim.fn.getcwd(), h.bin, other_dir, url })
  end)
  after_each(function()
    pcall(vim.fn.jobstop, child)
    require("heph.rpc").stop()
    pcall(vim.fn.jobstop, hub)
  end)

  it("an edit in A reaches B's open buffer after :HephSync", function()
    vim.cmd("Heph task Shared task")
    local id = require("heph.buffers").state(0).id
    local seen = h.notifications(function()
      vim.cmd("HephSync")
    end)
    assert.truthy(seen[#seen].msg:match("pushed %d+"), vim.inspect(seen))
    -- B pulls and opens the task.
    vim.rpcrequest(child, "nvim_command", "HephSync")
    vim.rpcrequest(child, "nvim_command", "edit heph://node/" .. id)
    assert.are.equal("title: Shared task", vim.rpcrequest(child, "nvim_buf_get_lines", 0, 1, 2, false)[1])
    -- A renames; B's unmodified buffer follows after its next sync.
    vim.api.nvim_buf_set_lines(0, 1, 2, false, { "title: Renamed in A" })
    vim.cmd.write()
    vim.cmd("HephSync")
    vim.rpcrequest(child, "nvim_command", "HephSync")
    assert.is_true(h.wait(function()
      return vim.rpcrequest(child, "nvim_buf_get_lines", 0, 1, 2, false)[1] == "title: Renamed in A"
    end))
  end)

  it("publishes status for the status line", function()
    assert.are.equal("", require("heph").statusline())
    vim.cmd("Heph task Count me")
    assert.is_true(h.wait(function()
      local s = vim.g.heph_status
      return s ~= nil and s.state ~= nil
    end), "no status arrived")
    vim.cmd("HephSync")
    assert.is_true(h.wait(function()
      return vim.g.heph_status.state == "synced"
    end), vim.inspect(vim.g.heph_status))
    assert.are.equal("heph ✓", require("heph").statusline())
    -- The hub goes away: the next sync reports the outage.
    vim.fn.jobstop(hub)
    vim.fn.jobwait({ hub }, 5000)
    vim.cmd("Heph task Offline work")
    h.notifications(function()
      vim.cmd("HephSync")
    end)
    assert.is_true(h.wait(function()
      return vim.g.heph_status.state == "offline"
    end), vim.inspect(vim.g.heph_status))
    assert.truthy(require("heph").statusline():match("^heph offline since %d%d:%d%d$"))
    assert.truthy(vim.g.heph_status.pending > 0)
  end)
end)

-- The journal and `today` follow the user's local date in the sidecar (a
-- multi-threaded process), also in zones far from UTC.
local h = require("helpers")
local rpc = require("heph.rpc")

---Today's date in `zone`, as the system's `date` sees it.
local function date_in(zone)
  local r = vim.system({ "date", "+%Y-%m-%d" }, { env = { TZ = zone }, text = true }):wait()
  return vim.trim(r.stdout)
end

describe("the local day", function()
  local saved_tz
  before_each(function()
    saved_tz = vim.env.TZ
  end)
  after_each(function()
    vim.env.TZ = saved_tz
    rpc.stop()
  end)

  for _, zone in ipairs({ "Pacific/Kiritimati", "Etc/GMT+12" }) do
    it("is the date in " .. zone, function()
      vim.env.TZ = zone
      h.fresh()
      local expected = date_in(zone)
      -- Around midnight the two reads can straddle the date change.
      local journal = rpc.request("journal", {})
      if journal.date ~= expected then
        expected = date_in(zone)
      end
      assert.are.equal(expected, journal.date)
      local id = h.add({ "--due", "today", "due today" })
      assert.are.equal(expected, h.show(id).due)
    end)
  end
end)

describe("a write interrupted by a sidecar crash", function()
  after_each(function()
    vim.env.HEPH_TEST_EXIT_AFTER = nil
    rpc.stop()
  end)

  it("is not sent again", function()
    h.fresh()
    vim.env.HEPH_TEST_EXIT_AFTER = "node_create"
    local ok, err = pcall(rpc.request, "node_create", { kind = "task", title = "only once" })
    vim.env.HEPH_TEST_EXIT_AFTER = nil
    assert.is_false(ok)
    assert.truthy(tostring(err):match("may or may not have been saved"), err)
    local all = vim.json.decode((h.cli({ "list", "--json" })))
    assert.are.equal(1, #vim.tbl_filter(function(n)
      return n.title == "only once"
    end, all))
    -- The next request starts a fresh sidecar.
    assert.truthy(rpc.request("hello", {}).pid)
  end)
end)

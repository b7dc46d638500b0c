-- Appended to report.lua for the many-users runs (see there).
function request()
  idx = idx % #cookies + 1
  return wrk.format("GET", path, { ["Host"] = wrk.headers["Host"], ["Cookie"] = cookies[idx] })
end

-- TechEmpower plaintext style: 16 pipelined GET requests in every write. wrk parses the
-- request string, counts the requests in it and counts every response (requests/s is
-- responses/s); a connection writes its next batch once all 16 answers arrived, and the
-- latency it records is that of the whole batch. `wrk ... -- 32` changes the depth.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format()
  end
  pipelined = table.concat(batch)
end

request = function()
  return pipelined
end

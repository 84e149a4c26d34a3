-- 1 MiB POST echo: every request uploads 1 MiB that the server sends back.
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"

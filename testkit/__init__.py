"""What the tests and the benchmarks share, one module per kind of thing:

- settings: the test secrets and `make_settings`
- tokens: bearer tokens signed with the test secret
- http: the app over real HTTP in-process (`asgi_client`), `gql`, `graphql_post`
- logs: log lines captured exactly as production renders them
- database: scratch databases on a PostgreSQL server, reads by SQL
- seed: rows written straight into `events`
- stats: a seeded database and `eventStats` recounted independently in Python
- hashing: the userHash contract recomputed with hmac/hashlib
- processes: free ports, a clean environment, the `signals` CLI, peak RSS of a process
- servers: the service running beside a test (uvicorn in a thread, `signals serve` subprocess)
- faultproxy: a loopback TCP proxy that cuts a database (or Redis) off on demand
- nginx: a real nginx load balancer in front of `signals serve` replicas
- trackload: retrying trackEvent clients (same clientEventId until acknowledged) that record every refusal
- postgres: a dedicated embedded PostgreSQL to crash (SIGKILL, stop -m immediate) and restart
- browser: the browser scripts under tests/e2e/browser, run with node and Chromium
- agents: real User-Agent strings
- strategies: hypothesis strategies for hostile input

Nothing here is imported by `testkit` itself, so a benchmark loads only what it uses (no
pytest, no hypothesis).
"""

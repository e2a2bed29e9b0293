#!/usr/bin/env python3
"""vorg's backbone benchmark (not a timed test).

Measures, on this machine and in one run: cold start to the first `200 /health`, idle RSS,
requests/s and p50/p99 latency of `GET /auth/me` (JWT) and of a paginated `GET /users?limit=50`
on SQLite and on PostgreSQL, RSS under load; and, as the reference for what the load
generator and loopback allow here, nginx answering a fixed 200. Writes bench/results/<date>.json.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "vorg")
BENCH_BIN = os.path.join(ROOT, "target", "release", "vorg-bench")
QUEUE_JOBS = int(os.environ.get("BENCH_QUEUE_JOBS", "5000"))
SSE_CLIENTS = [int(n) for n in os.environ.get("BENCH_SSE_CLIENTS", "1000,10000").split(",")]
DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNS = os.environ.get("BENCH_CONNECTIONS", "32")
THREADS = os.environ.get("BENCH_THREADS", "2")
USERS = int(os.environ.get("BENCH_USERS", "300"))
PG_ADMIN = os.environ.get("TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def cpu_secs(pid):
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk(url, token=None, pid=None):
    cmd = ["wrk", "-t", THREADS, "-c", CONNS, "-d", DURATION, "--latency", url]
    if token:
        cmd[1:1] = ["-H", f"Authorization: Bearer {token}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        if pid:
            peak = max(peak, rss_kib(pid))
        time.sleep(0.2)
    out = proc.stdout.read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": round(rps),
        "p50_ms": round(to_ms(lat["50"]), 3),
        "p99_ms": round(to_ms(lat["99"]), 3),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "peak_rss_mib": round(peak / 1024, 1) if pid else None,
    }


def start_vorg(env, port):
    t0 = time.perf_counter()
    proc = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit(f"vorg exited with {proc.returncode}")
        if time.perf_counter() - t0 > 30:
            sys.exit("vorg did not answer /health within 30 s")
        time.sleep(0.002)
    return proc, (time.perf_counter() - t0) * 1000


def psql(sql):
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", sql], check=True, stdout=subprocess.DEVNULL)


def bench_backend(name):
    data = tempfile.mkdtemp(prefix=f"vorg-bench-{name}-")
    env = dict(os.environ, VORG_DATA_DIR=data, ALLOW_SIGNUP="true", RUST_LOG="warn",
               VORG_LOGIN_PER_MINUTE_PER_IP="1000000", VORG_CONFIG=os.path.join(data, "none.toml"))
    db = None
    if name == "postgres":
        db = f"vorg_bench_{os.getpid()}"
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db}")
        env["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    else:
        env.pop("DATABASE_URL", None)
    port = free_port()
    # Cold start on an empty data directory (creates and migrates the database).
    proc, cold_ms = start_vorg(env, port)
    time.sleep(2)
    idle = rss_kib(proc.pid)
    base = f"http://127.0.0.1:{port}"
    admin = http("POST", base + "/auth/register", {"email": "admin@example.com", "password": "benchmark password"})
    token = admin["access_token"]
    for i in range(USERS):
        http("POST", base + "/auth/register", {"email": f"user{i}@example.com", "password": "benchmark password"})
    proc.send_signal(signal.SIGTERM); proc.wait()
    # Warm restart on the existing database: the start a user sees every day.
    proc, warm_ms = start_vorg(env, port)
    time.sleep(1)
    idle_after = rss_kib(proc.pid)
    me = wrk(base + "/auth/me", token, proc.pid)
    users = wrk(base + "/users?limit=50", token, proc.pid)
    proc.send_signal(signal.SIGTERM); proc.wait()
    reference = pgbench_list_query(env["DATABASE_URL"]) if db else None
    shutil.rmtree(data, ignore_errors=True)
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    out = {"cold_start_ms": round(cold_ms, 1), "warm_start_ms": round(warm_ms, 1),
           "idle_rss_mib": round(max(idle, idle_after) / 1024, 1), "auth_me": me, "list_users": users}
    if reference:
        out["reference_pgbench_list_query"] = reference
    return out


# The exact statement GET /users?limit=50 runs (vorg-store users.rs), for pgbench.
LIST_SQL = """SELECT u.id, u.org_id, u.email, u.is_admin, u.created_at, u.last_login_at, r.name AS role
FROM (SELECT id, org_id, email, is_admin, created_at, last_login_at FROM users
      WHERE org_id = 1 AND id < 9223372036854775807 ORDER BY id DESC LIMIT 50) u
LEFT JOIN user_roles ur ON ur.user_id = u.id LEFT JOIN roles r ON r.id = ur.role_id ORDER BY u.id DESC;
"""


def pgbench_list_query(url):
    """PostgreSQL alone running the list query from pgbench on the same cores: the ceiling
    for the endpoint on this machine, whatever vorg does."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(LIST_SQL)
    try:
        out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", CONNS, "-j", THREADS,
                              "-T", DURATION.rstrip("s"), "-f", f.name, url],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    return {"queries_per_s": round(tps), "latency_avg_ms": float(lat.group(1)) if lat else None}


def bench_queue(backend, workers):
    """No-op jobs claimed and completed per second by `workers` claim loops."""
    data = tempfile.mkdtemp(prefix="vorg-bench-queue-")
    db = None
    if backend == "postgres":
        db = f"vorg_bench_queue_{os.getpid()}_{workers}"
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db}")
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    else:
        url = f"sqlite://{data}/queue.db"
    out = subprocess.run([BENCH_BIN, "queue", "--database-url", url, "--jobs", str(QUEUE_JOBS),
                          "--workers", str(workers)], check=True, capture_output=True, text=True).stdout
    shutil.rmtree(data, ignore_errors=True)
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return json.loads(out.strip().splitlines()[-1])


def bench_sse(clients):
    """`clients` SSE connections on one run whose steps come every 500 ms: how long each
    live event takes from its row's timestamp to each client, and the server's RSS."""
    data = tempfile.mkdtemp(prefix="vorg-bench-sse-")
    env = dict(os.environ, VORG_DATA_DIR=data, RUST_LOG="warn", VORG_CONFIG=os.path.join(data, "none.toml"))
    env.pop("DATABASE_URL", None)
    # One token from one address holds every connection here: lift the per-caller and
    # per-address stream caps (the global cap still follows the open-files limit).
    env.update(VORG_STREAMS_PER_CALLER="100000", VORG_STREAMS_PER_IP="100000",
               VORG_STREAMS_MAX="100000")
    port = free_port()
    proc, _ = start_vorg(env, port)
    base = f"http://127.0.0.1:{port}"
    token = http("POST", base + "/auth/register", {"email": "admin@example.com", "password": "benchmark password"})["access_token"]
    idle = rss_kib(proc.pid)
    run = http("POST", base + "/runs/start_demo", {"steps": 30, "step_ms": 500}, token)["run_id"]
    server_cpu0 = cpu_secs(proc.pid)
    client = subprocess.Popen([BENCH_BIN, "sse", "--addr", f"127.0.0.1:{port}", "--token", token,
                               "--run", str(run), "--clients", str(clients)], stdout=subprocess.PIPE, text=True)
    peak = 0
    client_cpu = 0.0
    while client.poll() is None:
        peak = max(peak, rss_kib(proc.pid))
        try:
            client_cpu = cpu_secs(client.pid)
        except OSError:
            pass
        time.sleep(0.2)
    server_cpu = cpu_secs(proc.pid) - server_cpu0
    result = json.loads(client.stdout.read().strip().splitlines()[-1])
    proc.send_signal(signal.SIGTERM); proc.wait()
    shutil.rmtree(data, ignore_errors=True)
    # CPU per delivery explains the tail: one step's burst of `clients` deliveries needs
    # clients x (server + client) CPU time, shared by the machine's cores.
    per = (server_cpu + client_cpu) / max(result["deliveries"], 1)
    result["cpu_us_per_delivery_server"] = round(server_cpu / max(result["deliveries"], 1) * 1e6, 1)
    result["cpu_us_per_delivery_client"] = round(client_cpu / max(result["deliveries"], 1) * 1e6, 1)
    result["burst_cpu_ms_on_all_cores"] = round(per * clients * 1000 / (os.cpu_count() or 1), 1)
    result["server_idle_rss_mib"] = round(idle / 1024, 1)
    result["server_peak_rss_mib"] = round(peak / 1024, 1)
    return result


COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
})
CHAT_BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say ok"}]})


def nginx_upstream(tmp, port):
    """nginx answering every chat completion at once: the instant upstream."""
    conf = os.path.join(tmp, "nginx.conf")
    body = COMPLETION.replace("'", "\\'")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{body}'; }} }} }}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def wrk_post(url, token, connections, threads):
    script = os.path.join(tempfile.mkdtemp(prefix="vorg-bench-lua-"), "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write("wrk.body = [[" + CHAT_BODY + "]]\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", DURATION, "--latency", "-s", script, url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "requests_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))),
        "p50_ms": round(to_ms(lat["50"]), 3),
        "p99_ms": round(to_ms(lat["99"]), 3),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


LITELLM_VERSION = "1.106.12"
LITELLM_ENV = os.path.join(ROOT, "target", "litellm-env")
# LiteLLM refuses to start without a strong master key; clients send it (as vorg's clients send
# their API token): both proxies authenticate every request.
LITELLM_KEY = "sk-" + "5e" * 32


def ensure_litellm():
    """LiteLLM proxy, pinned, in its own venv under target/ (installed from PyPI once)."""
    exe = os.path.join(LITELLM_ENV, "bin", "litellm")
    if os.path.exists(exe):
        return exe
    subprocess.run([sys.executable, "-m", "venv", LITELLM_ENV], check=True)
    subprocess.run([os.path.join(LITELLM_ENV, "bin", "pip"), "install", "-q",
                    f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    return exe


def tree_pids(pid):
    """`pid` and every process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu(pid):
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += cpu_secs(p)
        except OSError:
            pass
    return total


def tree_rss_kib(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            total += rss_kib(p)
        except OSError:
            pass
    return total


SSE_CHUNKS = 50


def sse_body():
    """An OpenAI stream of 50 content chunks and a usage chunk, as one response body."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1741569952,
            "model": "gpt-4o-mini-2024-07-18"}
    events = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "finish_reason": None}])]
    events += [dict(head, choices=[{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}])
               for _ in range(SSE_CHUNKS - 2)]
    events.append(dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    events.append(dict(head, choices=[], usage={"prompt_tokens": 9, "completion_tokens": SSE_CHUNKS,
                                                "total_tokens": 9 + SSE_CHUNKS}))
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def nginx_references(tmp, up_port, sse_port, hop_port):
    """nginx as the instant upstream (JSON on one port, a 50-chunk SSE stream on another) and
    as a minimal proxy hop (proxy_pass with keep-alive) to the JSON upstream."""
    conf = os.path.join(tmp, "nginx.conf")
    body = COMPLETION.replace("'", "\\'")
    # Too long for a `return` string: served from a file (a POST is redirected to it as a GET).
    with open(os.path.join(tmp, "sse.txt"), "w") as f:
        f.write(sse_body())
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp}; keepalive_requests 1000000;
  upstream up {{ server 127.0.0.1:{up_port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{up_port};
    location / {{ default_type application/json; return 200 '{body}'; }} }}
  server {{ listen 127.0.0.1:{sse_port};
    location = /sse.txt {{ root {tmp}; default_type text/event-stream; }}
    location / {{ error_page 405 =200 /sse.txt; return 405; }} }}
  server {{ listen 127.0.0.1:{hop_port};
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def raw_request(port, path, body, token):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


def fixed_rate(port, path, body, token, rate, seconds):
    """vorg-bench rate: open-loop at `rate` req/s; latency from each request's due time."""
    tmp = tempfile.mkdtemp(prefix="vorg-bench-rate-")
    req = os.path.join(tmp, "request")
    with open(req, "wb") as f:
        f.write(raw_request(port, path, body, token))
    out = subprocess.run([BENCH_BIN, "rate", "--addr", f"127.0.0.1:{port}", "--request-file", req,
                          "--rate", str(rate), "--seconds", str(seconds), "--connections", "64"],
                         check=True, capture_output=True, text=True).stdout
    shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(out.strip().splitlines()[-1])


def max_throughput(url, token, pid=None):
    """wrk at 32 connections; with `pid`, the process tree's CPU per request and peak RSS."""
    cpu0 = tree_cpu(pid) if pid else 0
    peak = [0]
    stop = [False]

    def sample():
        while not stop[0]:
            peak[0] = max(peak[0], tree_rss_kib(pid))
            time.sleep(0.2)
    import threading
    t = threading.Thread(target=sample) if pid else None
    if t:
        t.start()
    r = wrk_post(url, token, 32, 2)
    stop[0] = True
    if t:
        t.join()
        r["cpu_us_per_request"] = round((tree_cpu(pid) - cpu0) * 1e6 / max(r["requests"], 1), 1)
        r["peak_rss_mib"] = round(peak[0] / 1024, 1)
    return r


def count_usage_rows(base, session):
    rows, cursor = 0, None
    while True:
        page = http("GET", base + "/usage/events?limit=200" + (f"&cursor={cursor}" if cursor else ""), None, session)
        rows += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return rows


def vorg_gateway(tmp, name, up_port, budgets=True, postgres=False):
    """A vorg on `up_port`'s instant upstream; returns (proc, base, port, session, token, env)."""
    data = os.path.join(tmp, name)
    env = dict(os.environ, VORG_DATA_DIR=data, RUST_LOG="warn", VORG_CONFIG=os.path.join(tmp, "none.toml"),
               OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{up_port}/v1", VORG_WORKERS="0",
               VORG_SCHEDULER="false")
    env.pop("DATABASE_URL", None)
    if postgres:
        db = f"vorg_bench_gw_{name}"
        psql(f"DROP DATABASE IF EXISTS {db}"); psql(f"CREATE DATABASE {db}")
        env["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    if not budgets:
        cfg = os.path.join(tmp, "config-" + name)
        os.makedirs(os.path.join(cfg, "governance"))
        with open(os.path.join(cfg, "governance", "policies.yaml"), "w") as f:
            f.write("spend_thresholds:\n  auto_approve_usd: 50\n")
        env["VORG_CONFIG_DIR"] = cfg
    port = free_port()
    proc, _ = start_vorg(env, port)
    base = f"http://127.0.0.1:{port}"
    session = http("POST", base + "/auth/register", {"email": "admin@example.com", "password": "benchmark password"})["access_token"]
    token = http("POST", base + "/auth/tokens", {"name": "bench"}, session)["token"]
    return proc, base, port, session, token, env


def ledger_check(env):
    out = subprocess.run([BIN, "budgets", "check"], env=env, capture_output=True, text=True)
    return {"balanced": out.returncode == 0, "summary": (out.stdout.strip().splitlines() or [""])[-1]}


def start_litellm(tmp, up_port, workers):
    exe = ensure_litellm()
    cfg = os.path.join(tmp, f"litellm-{workers}.yaml")
    with open(cfg, "w") as f:
        f.write(f"""model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{up_port}/v1
      api_key: sk-bench
litellm_settings:
  drop_params: true
""")
    port = free_port()
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR",
               LITELLM_TELEMETRY="False", DISABLE_ADMIN_UI="True", LITELLM_MASTER_KEY=LITELLM_KEY)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([exe, "--config", cfg, "--port", str(port), "--host", "127.0.0.1",
                             "--num_workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            http("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json.loads(CHAT_BODY), LITELLM_KEY)
            return proc, port
        except Exception:
            time.sleep(0.5)
    proc.terminate()
    sys.exit("LiteLLM did not answer within 120 s")


def stop(proc):
    for p in reversed(tree_pids(proc.pid)):
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill(); proc.wait()


def bench_gateway_references():
    """/v1/chat/completions through vorg beside, in the same run and load generator: the
    upstream direct, an nginx proxy_pass hop and LiteLLM's proxy (one and two workers)."""
    tmp = tempfile.mkdtemp(prefix="vorg-bench-gwref-")
    up_port, sse_port, hop_port = free_port(), free_port(), free_port()
    ng = nginx_references(tmp, up_port, sse_port, hop_port)
    path = "/v1/chat/completions"
    stream_body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                              "messages": [{"role": "user", "content": "Say ok"}]})
    r = {"litellm_version": LITELLM_VERSION}
    r["direct"] = {"max": max_throughput(f"http://127.0.0.1:{up_port}{path}", "sk-bench"),
                   "rate_1000": fixed_rate(up_port, path, CHAT_BODY, "sk-bench", 1000, 10),
                   "rate_100": fixed_rate(up_port, path, CHAT_BODY, "sk-bench", 100, 10),
                   "stream_rate_100": fixed_rate(sse_port, path, stream_body, "sk-bench", 100, 5)}
    r["nginx_hop"] = {"max": max_throughput(f"http://127.0.0.1:{hop_port}{path}", "sk-bench"),
                      "rate_1000": fixed_rate(hop_port, path, CHAT_BODY, "sk-bench", 1000, 10)}
    for name, budgets, pg in (("vorg_budgets_sqlite", True, False), ("vorg_no_budgets_sqlite", False, False),
                              ("vorg_budgets_postgres", True, True)):
        proc, base, port, session, token, env = vorg_gateway(tmp, name, up_port, budgets, pg)
        m = {"max": max_throughput(base + path, token, proc.pid)}
        m["rate_1000"] = fixed_rate(port, path, CHAT_BODY, token, 1000, 10)
        m["rate_100"] = fixed_rate(port, path, CHAT_BODY, token, 100, 10)
        sent = m["max"]["requests"] + m["rate_1000"]["requests"] + m["rate_100"]["requests"]
        time.sleep(1)
        m["usage_rows"] = count_usage_rows(base, session)
        m["requests_answered"] = sent
        stop(proc)
        m["ledger"] = ledger_check(env)
        r[name] = m
    # Streaming: a vorg whose upstream streams 50 chunks.
    proc, base, port, session, token, env = vorg_gateway(tmp, "vorg_stream", sse_port, True, False)
    r["vorg_stream"] = {"stream_rate_100": fixed_rate(port, path, stream_body, token, 100, 5)}
    time.sleep(1)
    r["vorg_stream"]["usage_rows"] = count_usage_rows(base, session)
    stop(proc)
    for workers in (1, 2):
        proc, port = start_litellm(tmp, up_port, workers)
        m = {"max": max_throughput(f"http://127.0.0.1:{port}{path}", LITELLM_KEY, proc.pid),
             "rate_100": fixed_rate(port, path, CHAT_BODY, LITELLM_KEY, 100, 10)}
        stop(proc)
        r[f"litellm_{workers}_worker"] = m
    ng.terminate(); ng.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    hop = r["nginx_hop"]["max"]["requests_per_s"]
    d1000, d100 = r["direct"]["rate_1000"]["p99_ms"], r["direct"]["rate_100"]["p99_ms"]
    best_litellm = min((r[k] for k in ("litellm_1_worker", "litellm_2_worker")),
                       key=lambda m: m["rate_100"]["p99_ms"])
    lite_cpu = min(r[k]["max"]["cpu_us_per_request"] for k in ("litellm_1_worker", "litellm_2_worker"))
    summary = {}
    for name in ("vorg_budgets_sqlite", "vorg_no_budgets_sqlite", "vorg_budgets_postgres"):
        m = r[name]
        summary[name] = {
            "throughput_vs_nginx_hop": round(m["max"]["requests_per_s"] / hop, 3),
            "added_p99_ms_at_1000": round(m["rate_1000"]["p99_ms"] - d1000, 3),
            "added_p99_ms_at_100": round(m["rate_100"]["p99_ms"] - d100, 3),
            "added_p99_vs_litellm_at_100": round((m["rate_100"]["p99_ms"] - d100) /
                                                 max(best_litellm["rate_100"]["p99_ms"] - d100, 1e-6), 4),
            "cpu_us_per_request": m["max"]["cpu_us_per_request"],
            "cpu_vs_litellm": round(m["max"]["cpu_us_per_request"] / lite_cpu, 4),
            "peak_rss_mib": m["max"]["peak_rss_mib"],
            # wrk stops with up to 32 requests in flight: they reach the upstream and are
            # accounted, but wrk does not count their answers.
            "usage_rows_minus_requests_answered": m["usage_rows"] - m["requests_answered"],
            "ledger_balanced": m["ledger"]["balanced"],
        }
    summary["stream_added_ttfb_p50_ms"] = round(r["vorg_stream"]["stream_rate_100"]["first_byte_p50_ms"] -
                                                r["direct"]["stream_rate_100"]["first_byte_p50_ms"], 3)
    summary["nginx_hop_vs_direct"] = round(hop / r["direct"]["max"]["requests_per_s"], 3)
    r["summary"] = summary
    return r


def print_gateway_references(r):
    print("\nLLM gateway: /v1/chat/completions, one instant upstream (nginx), the same load generator:")
    print(f"  {'target':<26} {'max req/s':>9} {'p99@1000':>9} {'p99@100':>8} {'CPU us/req':>10} {'RSS MiB':>8}")
    for name in ("direct", "nginx_hop", "vorg_budgets_sqlite", "vorg_no_budgets_sqlite",
                 "vorg_budgets_postgres", "litellm_1_worker", "litellm_2_worker"):
        m = r[name]
        p1000 = m.get("rate_1000", {}).get("p99_ms", "")
        p100 = m.get("rate_100", {}).get("p99_ms", "")
        print(f"  {name:<26} {m['max']['requests_per_s']:>9} {p1000!s:>9} {p100!s:>8} "
              f"{m['max'].get('cpu_us_per_request', '')!s:>10} {m['max'].get('peak_rss_mib', '')!s:>8}")
    print("  " + json.dumps(r["summary"], indent=2).replace("\n", "\n  "))


def mcp_session(url, token):
    """Opens an MCP session over streamable HTTP (initialize, initialized): its id."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    for k, v in (("content-type", "application/json"), ("accept", "application/json, text/event-stream"),
                 ("authorization", f"Bearer {token}")):
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=30) as r:
        session = r.headers["mcp-session-id"]
        r.read()
    note = urllib.request.Request(url, data=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', method="POST")
    for k, v in (("content-type", "application/json"), ("accept", "application/json, text/event-stream"),
                 ("authorization", f"Bearer {token}"), ("mcp-session-id", session),
                 ("mcp-protocol-version", "2025-06-18")):
        note.add_header(k, v)
    urllib.request.urlopen(note, timeout=30).read()
    return session


def wrk_script(url, lines, connections, threads):
    script = os.path.join(tempfile.mkdtemp(prefix="vorg-bench-lua-"), "req.lua")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", DURATION, "--latency", "-s", script, url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))),
        "p50_ms": round(to_ms(lat["50"]), 3),
        "p99_ms": round(to_ms(lat["99"]), 3),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def bench_mcp():
    """An MCP `tools/call` of a cheap read (get_run) over streamable HTTP, beside the same read
    over REST (GET /runs/{id}): one connection (round trip) and 32 (throughput). The tool
    makes the REST call in-process, plus the permission check (GET /auth/me) every call does."""
    tmp = tempfile.mkdtemp(prefix="vorg-bench-mcp-")
    env = dict(os.environ, VORG_DATA_DIR=os.path.join(tmp, "data"), RUST_LOG="warn",
               VORG_CONFIG=os.path.join(tmp, "none.toml"))
    env.pop("DATABASE_URL", None)
    port = free_port()
    proc, _ = start_vorg(env, port)
    base = f"http://127.0.0.1:{port}"
    session = http("POST", base + "/auth/register", {"email": "admin@example.com", "password": "benchmark password"})["access_token"]
    token = http("POST", base + "/auth/tokens", {"name": "bench", "roles": ["engineer"]}, session)["token"]
    run = http("POST", base + "/runs/start_demo", {"steps": 1, "step_ms": 0}, token)["run_id"]
    mcp = mcp_session(base + "/mcp", token)
    call = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": "get_run", "arguments": {"run_id": run}}})
    mcp_lines = ['wrk.method = "POST"', "wrk.body = [[" + call + "]]",
                 'wrk.headers["Content-Type"] = "application/json"',
                 'wrk.headers["Accept"] = "application/json, text/event-stream"',
                 f'wrk.headers["Authorization"] = "Bearer {token}"',
                 f'wrk.headers["Mcp-Session-Id"] = "{mcp}"',
                 'wrk.headers["MCP-Protocol-Version"] = "2025-06-18"']
    rest_lines = [f'wrk.headers["Authorization"] = "Bearer {token}"']
    # The 2026-07-28 protocol: no session, each request stands alone (what concurrent agents
    # use); a legacy session serialises its requests, so it is measured on one connection.
    stateless = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                            "params": {"name": "get_run", "arguments": {"run_id": run},
                                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                                 "io.modelcontextprotocol/clientCapabilities": {}}}})
    stateless_lines = ['wrk.method = "POST"', "wrk.body = [[" + stateless + "]]",
                       'wrk.headers["Content-Type"] = "application/json"',
                       'wrk.headers["Accept"] = "application/json, text/event-stream"',
                       f'wrk.headers["Authorization"] = "Bearer {token}"',
                       'wrk.headers["MCP-Protocol-Version"] = "2026-07-28"',
                       'wrk.headers["Mcp-Method"] = "tools/call"',
                       'wrk.headers["Mcp-Name"] = "get_run"']
    result = {
        "rest_1_conn": wrk_script(f"{base}/runs/{run}", rest_lines, 1, 1),
        "mcp_session_1_conn": wrk_script(base + "/mcp", mcp_lines, 1, 1),
        "mcp_1_conn": wrk_script(base + "/mcp", stateless_lines, 1, 1),
        "rest_32_conn": wrk_script(f"{base}/runs/{run}", rest_lines, 32, 2),
        "mcp_32_conn": wrk_script(base + "/mcp", stateless_lines, 32, 2),
    }
    proc.send_signal(signal.SIGTERM); proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    result["mcp_vs_rest_throughput_32_conn"] = round(
        result["mcp_32_conn"]["requests_per_s"] / max(result["rest_32_conn"]["requests_per_s"], 1), 3)
    return result


def print_mcp(m):
    print("\nMCP tools/call get_run over streamable HTTP (2026-07-28, stateless; and one legacy session) vs REST GET /runs/{id}:")
    for name in ("rest_1_conn", "mcp_1_conn", "mcp_session_1_conn", "rest_32_conn", "mcp_32_conn"):
        r = m[name]
        print(f"  {name:<14} {r['requests_per_s']:>8} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  non-2xx {r['non_2xx']}")
    print(f"  MCP throughput {m['mcp_vs_rest_throughput_32_conn']:.0%} of REST")


def workflow_files(tmp, steps):
    """A `steps`-step DAG chain, a graph looping `steps` times, and a one-step DAG."""
    dag = ["engine: dag", "name: chain", "max_parallel: 4", "steps:"]
    for i in range(steps):
        dep = f", depends_on: [s{i - 1}]" if i else ""
        dag.append(f"  - {{ id: s{i}, agent: cto, prompt: \"Step {i}\"{dep} }}")
    graph = f"""engine: graph
name: loop
state: {{ n: integer, last: string }}
start: work
max_steps: {steps + 1}
nodes:
  - id: work
    agent: cto
    prompt: "Iteration {{{{ state.n }}}}"
    output: last
    increment: [n]
    branches:
      - when: "state.n < {steps}"
        to: work
      - to: END
"""
    one = "engine: dag\nname: one\nsteps:\n  - { id: s0, agent: cto, prompt: \"Step 0\" }\n"
    paths = {}
    for name, text in (("dag", "\n".join(dag) + "\n"), ("graph", graph), ("one", one)):
        paths[name] = os.path.join(tmp, f"{name}.yaml")
        with open(paths[name], "w") as f:
            f.write(text)
    return paths


def bench_workflows(backend, steps=1000):
    """Engine overhead: `vorg workflow run` of a 1,000-step DAG chain and a 1,000-iteration
    graph (a checkpoint per iteration) with the simulated provider at zero latency. Each
    step is a model turn through the gateway (usage row, run log lines); the process's fixed
    cost (start, org load) is measured with a one-step workflow and subtracted."""
    data = tempfile.mkdtemp(prefix=f"vorg-bench-wf-{backend}-")
    env = dict(os.environ, VORG_DATA_DIR=data, RUST_LOG="warn",
               VORG_CONFIG=os.path.join(data, "absent.toml"))
    db = None
    if backend == "postgres":
        db = f"vorg_bench_wf_{os.getpid()}"
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db}")
        env["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    files = workflow_files(data, steps)
    # The shipped run_limits (100 steps, 200 model calls) would stop a 1,000-step run: the
    # shipped policies with limits above the bench's.
    cfg = os.path.join(data, "config")
    os.makedirs(os.path.join(cfg, "governance"))
    with open(os.path.join(ROOT, "governance", "policies.yaml")) as f:
        shipped = f.read()
    with open(os.path.join(cfg, "governance", "policies.yaml"), "w") as f:
        f.write(re.sub(r"run_limits:\n(  .*\n)+", f"run_limits:\n  max_llm_calls: {steps * 4}\n  max_steps: {steps * 4}\n", shipped))
    env["VORG_CONFIG_DIR"] = cfg

    def timed(name):
        t0 = time.perf_counter()
        subprocess.run([BIN, "workflow", "run", files[name]], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return (time.perf_counter() - t0) * 1000

    timed("one")  # migrations and the default organization
    fixed = min(timed("one") for _ in range(3))
    out = {"steps": steps, "fixed_cost_ms": round(fixed, 1)}
    for name in ("dag", "graph"):
        wall = timed(name)
        out[name] = {"wall_ms": round(wall, 1),
                     "per_step_ms": round((wall - fixed) / steps, 3)}
    # The engines alone: instant turns, checkpoints written to the same kind of database.
    url = env.get("DATABASE_URL") or f"sqlite://{data}/engine.db"
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        psql(f"CREATE DATABASE {db}")
    run = subprocess.run([BENCH_BIN, "engine", "--database-url", url, "--steps", str(steps)],
                         check=True, capture_output=True, text=True).stdout
    out["engine_only"] = json.loads(run.strip().splitlines()[-1])
    shutil.rmtree(data, ignore_errors=True)
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return out


def print_workflows(w):
    print("\nworkflow engines (vorg workflow run, simulated provider at zero latency):")
    for b, r in w.items():
        for name in ("dag", "graph"):
            print(f"  {b:<8} {name:<5} {r['steps']} steps in {r[name]['wall_ms']:.0f} ms: "
                  f"{r[name]['per_step_ms']} ms per step (fixed process cost {r['fixed_cost_ms']:.0f} ms "
                  f"subtracted)")
        e = r["engine_only"]
        print(f"  {b:<8} engines alone (instant turns, checkpoints written): dag {e['dag']['per_step_ms']} ms, "
              f"graph {e['graph']['per_step_ms']} ms per step")


def console_sizes():
    """Gzipped bytes of what the console's first page loads (its HTML's scripts and styles)."""
    dist = os.path.join(ROOT, "console", "dist")
    html = open(os.path.join(dist, "index.html")).read()
    assets = re.findall(r'(?:src|href)="/console/(assets/[^"]+)"', html)
    sizes = {a: os.path.getsize(os.path.join(dist, a + ".gz")) for a in assets}
    lazy = {f"assets/{f}": os.path.getsize(os.path.join(dist, "assets", f + ".gz"))
            for f in os.listdir(os.path.join(dist, "assets"))
            if not f.endswith(".gz") and f"assets/{f}" not in sizes}
    return {"first_page_gzip_bytes": sum(sizes.values()), "first_page_assets": sizes,
            "lazy_chunks_gzip_bytes": lazy}


def bench_console(runs=10_000, usage=100_000, log_lines=10_000):
    """The dashboard's first render against `runs` runs and `usage` usage events, and the
    run page holding `log_lines` lines, in headless Chromium (SQLite)."""
    data = tempfile.mkdtemp(prefix="vorg-bench-console-")
    env = dict(os.environ, VORG_DATA_DIR=data, RUST_LOG="warn", VORG_WORKERS="0",
               VORG_CONFIG=os.path.join(data, "absent.toml"))
    env.pop("DATABASE_URL", None)
    subprocess.run([BIN, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    seeded = json.loads(subprocess.run(
        [BENCH_BIN, "seed", "--database-url", f"sqlite://{data}/vorg.db", "--runs", str(runs),
         "--usage", str(usage), "--log-lines", str(log_lines)],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    password = "bench-password-123"
    subprocess.run([BIN, "user", "create", "--email", "bench@example.com", "--admin"],
                   env=dict(env, VORG_USER_PASSWORD=password), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proc, _ = start_vorg(env, port)
    try:
        out = subprocess.run(["node", os.path.join(ROOT, "console", "e2e", "bench.mjs"),
                              f"http://127.0.0.1:{port}", "bench@example.com", password,
                              str(seeded["log_run_id"]), str(log_lines)],
                             check=True, capture_output=True, text=True).stdout
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    result = json.loads(out.strip().splitlines()[-1])
    result.update({"runs_in_db": runs, "usage_events_in_db": usage})
    result["assets"] = console_sizes()
    return result


def print_console(c):
    print("\nconsole (headless Chromium, SQLite):")
    print(f"  first page: {c['assets']['first_page_gzip_bytes'] / 1024:.0f} KiB gzipped (JS + CSS; target 250 KB)")
    print(f"  dashboard with data, {c['runs_in_db']} runs and {c['usage_events_in_db']} usage events: "
          f"{c['dashboard_first_render_ms_cold']} ms cold, {c['dashboard_first_render_ms_warm']} ms warm (target 1 s)")
    print(f"  run page with {c['log_lines']} log lines: all shown in {c['log_page_ms_to_all_lines']} ms, "
          f"{c['log_scroll_ms_per_frame']} ms per scroll frame, {c['log_rows_in_dom']} rows in the DOM")


def bench_nginx():
    tmp = tempfile.mkdtemp(prefix="vorg-bench-nginx-")
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; location / {{ default_type application/json; return 200 '{{"status":"ok"}}'; }} }} }}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    result = wrk(f"http://127.0.0.1:{port}/")
    proc.terminate(); proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    return result



def nginx_receiver(tmp, port):
    """nginx as a webhook receiver: answers 204 and logs each request's arrival (ms) and
    webhook-id."""
    conf = os.path.join(tmp, "nginx-rx.conf")
    log = os.path.join(tmp, "rx.log")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx-rx.pid; error_log {tmp}/rx-error.log;
events {{ worker_connections 4096; }}
http {{ log_format rx '$msec $http_webhook_id'; access_log {log} rx;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }} }}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, log


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def pool_map(fn, items, threads=8):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(fn, items))


def bench_webhooks(backend, runs=400, subscriptions=5):
    """Webhook deliveries end to end: demo runs succeed, the dispatcher fans each run.succeeded
    out to `subscriptions` receivers (nginx), each delivery is a signed POST from a job.
    Reference: wrk POSTing straight to the same nginx."""
    tmp = tempfile.mkdtemp(prefix="vorg-bench-hooks-")
    env = dict(os.environ, VORG_DATA_DIR=os.path.join(tmp, "data"), RUST_LOG="warn",
               VORG_CONFIG=os.path.join(tmp, "none.toml"), VORG_WEBHOOKS_ALLOW_PRIVATE="true")
    env.pop("DATABASE_URL", None)
    db = None
    if backend == "postgres":
        db = f"vorg_bench_hooks_{os.getpid()}"
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db}")
        env["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    rx_port = free_port()
    rx, log = nginx_receiver(tmp, rx_port)
    reference = wrk_script(f"http://127.0.0.1:{rx_port}/ref", ['wrk.method = "POST"', 'wrk.body = [[{"type":"x"}]]'], 32, 2)
    open(log, "w").close()
    port = free_port()
    proc, _ = start_vorg(env, port)
    base = f"http://127.0.0.1:{port}"
    token = http("POST", base + "/auth/register", {"email": "admin@example.com", "password": "benchmark password"})["access_token"]
    hooks = [http("POST", base + "/webhooks", {"name": f"rx{i}", "url": f"http://127.0.0.1:{rx_port}/h{i}",
                                               "events": ["run.succeeded"]}, token)["id"] for i in range(subscriptions)]
    cpu0 = cpu_secs(proc.pid)
    t0 = time.time()
    pool_map(lambda _: http("POST", base + "/runs/start_demo", {"steps": 1, "step_ms": 0}, token), range(runs))
    want = runs * subscriptions
    deadline = time.time() + 300
    while True:
        with open(log) as f:
            got = sum(1 for _ in f)
        if got >= want or time.time() > deadline:
            break
        time.sleep(0.2)
    t1 = time.time()
    cpu = cpu_secs(proc.pid) - cpu0

    def read_arrivals():
        out = {}
        with open(log) as f:
            for line in f:
                ms, msg = line.split()
                out[msg] = float(ms)
        return out

    arrivals = read_arrivals()
    # Then one run at a time on the idle server: the latency of a lone event.
    for _ in range(20):
        before = len(read_arrivals())
        http("POST", base + "/runs/start_demo", {"steps": 1, "step_ms": 0}, token)
        deadline = time.time() + 10
        while len(read_arrivals()) < before + subscriptions and time.time() < deadline:
            time.sleep(0.005)
    lone = {k: v for k, v in read_arrivals().items() if k not in arrivals}
    lone_latencies = []
    latencies = []
    for h in hooks:
        cursor = None
        while True:
            page = http("GET", f"{base}/webhooks/{h}/deliveries?limit=200" + (f"&cursor={cursor}" if cursor else ""), token=token)
            for d in page["items"]:
                event_at = datetime.fromisoformat(d["payload"]["timestamp"]).timestamp()
                if d["msg_id"] in arrivals:
                    latencies.append((arrivals[d["msg_id"]] - event_at) * 1000)
                elif d["msg_id"] in lone:
                    lone_latencies.append((lone[d["msg_id"]] - event_at) * 1000)
            cursor = page.get("next_cursor")
            if not cursor:
                break
    first_arrival = min(arrivals.values()) if arrivals else t1
    proc.send_signal(signal.SIGTERM); proc.wait()
    rx.send_signal(signal.SIGTERM); rx.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return {
        "runs": runs, "subscriptions": subscriptions, "deliveries_expected": want,
        "deliveries_received": len(arrivals),
        "seconds_from_first_run_to_last_delivery": round(t1 - t0, 2),
        "deliveries_per_s": round(len(arrivals) / max(max(arrivals.values(), default=t1) - t0, 1e-3)),
        "deliveries_per_s_after_first": round(len(arrivals) / max(max(arrivals.values(), default=t1) - first_arrival, 1e-3)),
        "event_to_receiver_p50_ms": round(percentile(latencies, 50) or 0, 1),
        "event_to_receiver_p99_ms": round(percentile(latencies, 99) or 0, 1),
        "server_cpu_ms_per_delivery": round(cpu * 1000 / max(len(arrivals), 1), 3),
        "lone_event_to_receiver_p50_ms": round(percentile(lone_latencies, 50) or 0, 1),
        "lone_event_to_receiver_p99_ms": round(percentile(lone_latencies, 99) or 0, 1),
        "reference_wrk_to_receiver": reference,
    }


def print_webhooks(w):
    print("\nwebhooks (demo runs -> run.succeeded -> signed deliveries to nginx):")
    for b, r in w.items():
        print(f"  {b:<9} {r['deliveries_received']}/{r['deliveries_expected']} delivered, "
              f"{r['deliveries_per_s']} deliveries/s end to end ({r['deliveries_per_s_after_first']}/s once flowing), "
              f"event->receiver under the burst p50 {r['event_to_receiver_p50_ms']} ms p99 {r['event_to_receiver_p99_ms']} ms, "
              f"a lone event p50 {r['lone_event_to_receiver_p50_ms']} ms p99 {r['lone_event_to_receiver_p99_ms']} ms, "
              f"{r['server_cpu_ms_per_delivery']} ms CPU per delivery; reference wrk->nginx "
              f"{r['reference_wrk_to_receiver']['requests_per_s']} req/s")


def bench_scheduler(backend, idle=10_000, firing=100, idle_secs=30, fire_secs=30):
    """Scheduler overhead: CPU of an idle vorg holding `idle` schedules (none due), then the
    firing skew of `firing` schedules that fire every 5 s among them (run created - slot)."""
    tmp = tempfile.mkdtemp(prefix="vorg-bench-sched-")
    env = dict(os.environ, VORG_DATA_DIR=os.path.join(tmp, "data"), RUST_LOG="warn",
               VORG_CONFIG=os.path.join(tmp, "none.toml"))
    env.pop("DATABASE_URL", None)
    db = None
    if backend == "postgres":
        db = f"vorg_bench_sched_{os.getpid()}"
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db}")
        env["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    port = free_port()
    proc, _ = start_vorg(env, port)
    base = f"http://127.0.0.1:{port}"
    token = http("POST", base + "/auth/register", {"email": "admin@example.com", "password": "benchmark password"})["access_token"]
    target = {"kind": "meeting", "type": "standup", "body": {"today": ["bench"]}}
    t0 = time.time()
    pool_map(lambda i: http("POST", base + "/schedules", {"name": f"idle {i}", "cron": f"{i % 60} {i % 24} 1 1 *",
                                                         "timezone": "Europe/Berlin", "target": target}, token), range(idle))
    create_secs = time.time() - t0
    time.sleep(3)
    rss_idle = rss_kib(proc.pid)
    c0 = cpu_secs(proc.pid)
    time.sleep(idle_secs)
    idle_cpu = cpu_secs(proc.pid) - c0
    ids = pool_map(lambda i: http("POST", base + "/schedules", {"name": f"fire {i}", "cron": "*/5 * * * * *",
                                                              "target": target}, token)["id"], range(firing))
    c0 = cpu_secs(proc.pid)
    time.sleep(fire_secs)
    fire_cpu = cpu_secs(proc.pid) - c0
    skews = []
    for i in ids:
        for r in http("GET", f"{base}/schedules/{i}/runs", token=token):
            slot = datetime.fromisoformat(r["summary"].rsplit(", ", 1)[1].rstrip(")"))
            created = datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))
            skews.append((created - slot).total_seconds() * 1000)
    proc.send_signal(signal.SIGTERM); proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return {
        "schedules": idle + firing, "created_per_s": round(idle / create_secs),
        "idle_cpu_ms_per_minute": round(idle_cpu * 1000 * 60 / idle_secs, 1),
        "idle_rss_mib": round(rss_idle / 1024, 1),
        "firing_schedules": firing, "firings": len(skews),
        "firing_cpu_ms_per_s": round(fire_cpu * 1000 / fire_secs, 1),
        "skew_p50_ms": round(percentile(skews, 50) or 0, 1),
        "skew_p99_ms": round(percentile(skews, 99) or 0, 1),
        "skew_max_ms": round(max(skews, default=0), 1),
    }


def print_scheduler(s):
    print("\nscheduler (10,000 schedules; 100 of them firing every 5 s):")
    for b, r in s.items():
        print(f"  {b:<9} idle CPU {r['idle_cpu_ms_per_minute']} ms per minute (RSS {r['idle_rss_mib']} MiB), "
              f"{r['firings']} firings, skew p50 {r['skew_p50_ms']} ms p99 {r['skew_p99_ms']} ms "
              f"max {r['skew_max_ms']} ms, {r['firing_cpu_ms_per_s']} ms CPU/s while firing; "
              f"created {r['created_per_s']} schedules/s over HTTP")

def main():
    if not os.path.exists(BIN):
        sys.exit("build the release binary first: make release")
    only = os.environ.get("BENCH_ONLY")
    if only == "console":
        c = bench_console()
        print_console(c)
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-console.json")
        with open(out, "w") as f:
            json.dump({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "machine": {"cores": os.cpu_count()}, "console": c}, f, indent=2)
        return
    if only == "workflows":
        w = {b: bench_workflows(b) for b in ("sqlite", "postgres")}
        print_workflows(w)
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-workflows.json")
        with open(out, "w") as f:
            json.dump({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "machine": {"cores": os.cpu_count()}, "workflows": w}, f, indent=2)
        return
    if only == "automation":
        a = {"webhooks": {b: bench_webhooks(b) for b in ("sqlite", "postgres")},
             "scheduler": {b: bench_scheduler(b) for b in ("sqlite", "postgres")}}
        print_webhooks(a["webhooks"])
        print_scheduler(a["scheduler"])
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-automation.json")
        with open(out, "w") as f:
            json.dump({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "machine": {"cores": os.cpu_count()}, "automation": a}, f, indent=2)
        return
    if only == "mcp":
        m = bench_mcp()
        print_mcp(m)
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-mcp.json")
        with open(out, "w") as f:
            json.dump({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "machine": {"cores": os.cpu_count()}, "mcp": m}, f, indent=2)
        return
    if only == "backbone":
        # The API's own hot paths and the queue: GET /users beside pgbench of its query, and
        # the job queue with one and four workers.
        b = {"sqlite": bench_backend("sqlite"), "postgres": bench_backend("postgres"),
             "queue": {f"{k}_{w}_workers": bench_queue(k, w) for k in ("sqlite", "postgres") for w in (1, 4)}}
        print(json.dumps(b, indent=2))
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-backbone.json")
        with open(out, "w") as f:
            json.dump({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "machine": {"cores": os.cpu_count()}, "backbone": b}, f, indent=2)
        return
    if only == "gateway":
        # A quick run of one section: printed, and written beside the full results.
        g = bench_gateway_references()
        print_gateway_references(g)
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-gateway.json")
        with open(out, "w") as f:
            json.dump({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "machine": {"cores": os.cpu_count()}, "gateway": g}, f, indent=2)
        return
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "kernel": os.uname().release},
        "load": {"tool": "wrk", "threads": THREADS, "connections": CONNS, "duration": DURATION,
                 "users_in_db": USERS + 1},
        "reference_nginx_return_200": bench_nginx(),
        "sqlite": bench_backend("sqlite"),
        "postgres": bench_backend("postgres"),
        "queue": {f"{b}_{w}_workers": bench_queue(b, w) for b in ("sqlite", "postgres") for w in (1, 4)},
        "sse_fanout": {str(n): bench_sse(n) for n in SSE_CLIENTS},
        "gateway": bench_gateway_references(),
        "workflows": {b: bench_workflows(b) for b in ("sqlite", "postgres")},
        "console": bench_console(),
        "mcp": bench_mcp(),
        "webhooks": {b: bench_webhooks(b) for b in ("sqlite", "postgres")},
        "scheduler": {b: bench_scheduler(b) for b in ("sqlite", "postgres")},
    }
    ref = results["reference_nginx_return_200"]["requests_per_s"]
    rows = [("reference: nginx return 200", results["reference_nginx_return_200"])]
    for b in ("sqlite", "postgres"):
        rows += [(f"{b}: GET /auth/me (JWT)", results[b]["auth_me"]),
                 (f"{b}: GET /users?limit=50", results[b]["list_users"])]
    print(f"\n{'measurement':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs nginx':>9} {'peak RSS':>9}")
    for label, r in rows:
        rss = f"{r['peak_rss_mib']} MiB" if r.get("peak_rss_mib") else ""
        print(f"{label:<34} {r['requests_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['requests_per_s'] / ref:>8.2f}x {rss:>9}")
    for b in ("sqlite", "postgres"):
        r = results[b]
        print(f"{b}: cold start {r['cold_start_ms']} ms (empty data dir, migrations), warm start "
              f"{r['warm_start_ms']} ms, idle RSS {r['idle_rss_mib']} MiB")
    pg = results["postgres"].get("reference_pgbench_list_query")
    if pg:
        print(f"reference: pgbench running the same list query directly: {pg['queries_per_s']} "
              f"queries/s ({results['postgres']['list_users']['requests_per_s'] / pg['queries_per_s']:.2f}x "
              f"through vorg)")
    print("\njob queue (no-op jobs, one process):")
    for name, r in results["queue"].items():
        print(f"  {name:<22} {r['jobs_per_s']:>8.0f} jobs/s  ({r['jobs']} jobs in {r['seconds']:.2f} s)")
    print("\nSSE fan-out (one run, a step every 500 ms, load generator on the same 2 cores):")
    for n, r in results["sse_fanout"].items():
        print(f"  {n:>6} clients: {r['connected']} connected, {r['failures']} failed, "
              f"{r['deliveries']} live deliveries, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
              f"server RSS {r['server_peak_rss_mib']} MiB (idle {r['server_idle_rss_mib']} MiB); "
              f"CPU per delivery {r['cpu_us_per_delivery_server']} us server + "
              f"{r['cpu_us_per_delivery_client']} us client, so one step's burst needs "
              f"{r['burst_cpu_ms_on_all_cores']} ms of both cores")
    print_gateway_references(results["gateway"])
    print_workflows(results["workflows"])
    print_console(results["console"])
    print_mcp(results["mcp"])
    print_webhooks(results["webhooks"])
    print_scheduler(results["scheduler"])
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, datetime.now(timezone.utc).strftime("%Y-%m-%d") + "-backbone.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwritten to {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()

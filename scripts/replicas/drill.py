#!/usr/bin/env python3
"""The store's promises, checked through the balancer in front of three replicas (run.sh starts
them). Only the balancer is called over HTTP; the database is read (psql) to count what happened.
HAProxy names the replica that answered in `X-Served-By`. Clients are told apart by the
`X-Forwarded-For` they send (the replicas trust the balancer, which appends the peer).

Prints one line per check and exits 1 when any failed. Standard library only.
"""

import argparse
import collections
import concurrent.futures as cf
import os
import signal
import socket
import threading
import hashlib
import hmac
import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ADMIN = ("admin@dispensario.local", "Admin12345!")
PASSWORD = "secreto123"
TEST_PAYMENT_SECRET = "dev-test-payment-secret"
ADDRESS = {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000a49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)

FAILED = []


def check(name, ok, detail=""):
    print(("ok    " if ok else "FAIL  ") + name + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        FAILED.append(name)
    return ok


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def server(self):
        return self.headers.get("X-Served-By")

    def __repr__(self):
        return f"{self.status} via {self.server}: {self.body[:120]!r}"


class Balancer:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, token=None, body=None, ip=None, headers=None, raw=None,
             content_type=None, timeout=30):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if content_type:
            h["Content-Type"] = content_type
        if token:
            h["Authorization"] = f"Bearer {token}"
        if ip:
            h["X-Forwarded-For"] = ip
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            return Resp(0, {}, str(e).encode())

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, body=None, **kw):
        return self.call("POST", path, token, body if body is not None else {}, **kw)


def multipart(fields):
    """(content type, body) of a multipart/form-data request; a field's value is text or
    (filename, bytes)."""
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, data = value
            out += (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", out


class Database:
    def __init__(self, url):
        self.url = url

    def value(self, query):
        out = subprocess.run(["psql", self.url, "-Atc", query], check=True, capture_output=True,
                             text=True).stdout.strip()
        return out

    def int(self, query):
        return int(self.value(query) or 0)


def ip(n):
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Shop:
    """Set-up through the balancer: the admin, customers, a product of a few units."""

    def __init__(self, lb, db):
        self.lb = lb
        self.db = db
        self.next_ip = 1000
        r = lb.post("/api/auth/login", body={"email": ADMIN[0], "password": ADMIN[1]}, ip=self.ip())
        assert r.status == 200, r
        self.admin = r.json["accessToken"]

    def ip(self):
        self.next_ip += 1
        return ip(self.next_ip)

    def customer(self, email):
        r = self.lb.post("/api/auth/register", body={"name": "Cliente Drill", "email": email,
                                                     "password": PASSWORD}, ip=self.ip())
        assert r.status == 201, r
        return r.json["accessToken"]

    def customers(self, prefix, n):
        with cf.ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda i: self.customer(f"{prefix}{i}@example.cl"), range(n)))

    def product(self, sku, stock):
        category = self.db.int("SELECT MIN(id) FROM categories")
        r = self.lb.post("/api/products", self.admin, {
            "categoryId": category, "name": f"Producto {sku}",
            "variants": [{"sku": sku, "optionLabel": "1u", "priceCents": 5000, "stock": stock}]},
            ip=self.ip())
        assert r.status == 201, r
        return self.db.int(f"SELECT id FROM product_variants WHERE sku = '{sku}'")

    def checkout(self, token, variant, key=None, ip_=None):
        headers = {"Idempotency-Key": key} if key else None
        return self.lb.post("/api/checkout/confirm", token, {
            "items": [{"variantId": variant, "quantity": 1}], "address": ADDRESS,
            "shippingMethod": "starken"}, ip=ip_ or self.ip(), headers=headers)

    def start_payment(self, token, order):
        r = self.lb.post("/api/payments/start", token, {"orderId": order, "provider": "test"},
                         ip=self.ip())
        assert r.status == 200, r
        return r.json["providerTxnId"]

    def pay(self, token, order):
        self.start_payment(token, order)
        return self.lb.post("/api/payments/confirm", token, {
            "orderId": order, "provider": "test", "params": {"mock": "paid"}}, ip=self.ip())


def each_replica(call, want=3, tries=12):
    """Calls until three different replicas answered (round robin gets there in three)."""
    seen = {}
    for _ in range(tries):
        r = call()
        seen.setdefault(r.server, r)
        if len(seen) >= want:
            break
    return seen


def race_for_stock(shop, lb, db):
    variant = shop.product("DRILL-RACE", 5)
    tokens = shop.customers("carrera", 40)
    with cf.ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda t: (t, shop.checkout(t, variant)), tokens))
    created = [(t, r.json["id"]) for t, r in answers if r.status == 201]
    others = sorted({r.status for _, r in answers if r.status != 201})
    servers = {r.server for _, r in answers}
    check("40 customers race for 5 units: 5 orders created, the rest refused with 409",
          len(created) == 5 and others == [409], f"created {len(created)}, others {others}, "
          f"served by {sorted(s for s in servers if s)}")
    with cf.ThreadPoolExecutor(5) as pool:
        paid = list(pool.map(lambda c: shop.pay(*c), created))
    check("the 5 are paid", all(r.status == 200 and r.json.get("status") == "paid" for r in paid),
          str([r.status for r in paid]))
    sold = db.int("SELECT COALESCE(SUM(oi.quantity), 0) FROM order_items oi JOIN orders o ON "
                  f"o.id = oi.order_id WHERE oi.variant_id = {variant} AND o.status = 'paid'")
    stock = db.int(f"SELECT stock FROM product_variants WHERE id = {variant}")
    check("exactly 5 units sold, none oversold", sold == 5 and stock == 0,
          f"sold {sold}, stock left {stock}")


def duplicate_notifications(shop, lb, db):
    variant = shop.product("DRILL-NOTIFY", 3)
    token = shop.customer("notificada@example.cl")
    order = shop.checkout(token, variant)
    assert order.status == 201, order
    txn = shop.start_payment(token, order.json["id"])
    body = json.dumps({"eventId": "evt-drill-repeated", "providerTxnId": txn, "status": "paid",
                       "amountCents": order.json["totalCents"], "timestamp": int(time.time())})
    signature = hmac.new(TEST_PAYMENT_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()

    def send(_):
        return lb.call("POST", "/webhooks/payments/test", raw=body.encode(),
                       content_type="application/json",
                       headers={"X-Test-Signature": signature})
    with cf.ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(send, range(30)))
    outcomes = sorted((r.status, (r.json or {}).get("outcome")) for r in answers)
    applied = sum(1 for r in answers if (r.json or {}).get("outcome") == "applied")
    servers = sorted({r.server for r in answers if r.server})
    transitions = db.int("SELECT COUNT(*) FROM system_logs WHERE action = 'order.status_changed' "
                         f"AND entity_id = {order.json['id']} AND meta->>'to' = 'paid'")
    check("30 copies of one payment notification over the replicas: applied once",
          applied == 1 and all(r.status == 200 for r in answers) and transitions == 1,
          f"applied {applied}, paid transitions {transitions}, served by {servers}; "
          f"{dict((o, outcomes.count(o)) for o in set(outcomes))}")


def logout_everywhere(shop, lb, db):
    token = shop.customer("saliente@example.cl")
    before = each_replica(lambda: lb.get("/api/me", token, ip=shop.ip()))
    check("a session works on every replica", len(before) == 3 and
          all(r.status == 200 for r in before.values()), str(before))
    out = lb.post("/api/auth/logout", token, ip=shop.ip())
    after = each_replica(lambda: lb.get("/api/me", token, ip=shop.ip()))
    check("a logout through one replica is refused by all three at once",
          out.status == 204 and len(after) == 3 and all(r.status == 401 for r in after.values()),
          f"logout {out.status} via {out.server}; then {sorted((s, r.status) for s, r in after.items())}")


def per_ip_limit(shop, lb, db):
    client = "10.250.0.7"
    # Sent at once, so that the budget cannot refill meanwhile (one a second): every connection
    # is open before a barrier releases the requests.
    gate = threading.Barrier(61)
    sent = []
    host = urllib.parse.urlsplit(lb.base)

    def attempt(i):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        conn.connect()
        body = json.dumps({"email": f"nadie{i}@example.cl", "password": "nope12345"})
        gate.wait()
        sent.append(time.time())
        conn.request("POST", "/api/auth/login", body=body, headers={
            "Content-Type": "application/json", "X-Forwarded-For": client})
        r = conn.getresponse()
        out = Resp(r.status, r.headers, r.read())
        conn.close()
        return out
    with cf.ThreadPoolExecutor(61) as pool:
        answers = list(pool.map(attempt, range(61)))
    span = max(sent) - min(sent)
    counts = {s: sum(1 for r in answers if r.status == s) for s in {r.status for r in answers}}
    servers = sorted({r.server for r in answers if r.status == 401})
    # GCRA at 60 a minute: a burst of 60, then one more each second — sent within a second, the
    # 61st is refused (a slower send, rare, earns one more per second it took).
    passed, refused = counts.get(401, 0), counts.get(429, 0)
    most = 60 + int(span + 0.1)
    check("61 credential attempts from one IP at once over three replicas: 60 let through, 1 is 429",
          60 <= passed <= most and passed + refused == 61 and (span >= 0.9 or refused == 1)
          and len(servers) == 3,
          f"{counts}, the 401s from {servers}, sent within {span * 1000:.0f} ms")
    other = lb.post("/api/auth/login", body={"email": "nadie@example.cl", "password": "x1234567"},
                    ip="10.250.0.8")
    check("another IP is not limited", other.status == 401, repr(other))


def files_anywhere(shop, lb, db, s3, bucket):
    ctype, body = multipart([("file", ("foto.png", PNG))])
    up = lb.call("POST", "/api/uploads/image", shop.admin, raw=body, content_type=ctype,
                 ip=shop.ip())
    assert up.status == 201, up
    url = up.json["url"]
    served = each_replica(lambda: lb.get(url, ip=shop.ip()))
    same = all(r.status == 200 and r.body == PNG and r.headers.get("ETag") ==
               f'"{up.json["sha256"]}"' for r in served.values())
    check("an image uploaded through one replica is served by all three, same bytes and ETag",
          len(served) == 3 and same, f"uploaded via {up.server}; served by {sorted(served)}")

    owner = shop.customer("receta-drill@example.cl")
    other = shop.customer("otra-drill@example.cl")
    pdf = b"%PDF-1.4\n% receta drill\n%%EOF\n"
    ctype, body = multipart([("docType", "receta"), ("acceptHealthDataProcessing", "true"),
                             ("file", ("receta.pdf", pdf))])
    doc = lb.call("POST", "/api/medicinal/me/docs", owner, raw=body, content_type=ctype,
                  ip=shop.ip())
    assert doc.status == 201, doc
    path = f"/api/files/{doc.json['fileId']}"
    mine = each_replica(lambda: lb.get(path, owner, ip=shop.ip()))
    check("a prescription uploaded through one replica is read by its owner through all three",
          len(mine) == 3 and all(r.status == 200 and r.body == pdf for r in mine.values()),
          f"uploaded via {doc.server}; read via {sorted(mine)}")
    theirs = each_replica(lambda: lb.get(path, other, ip=shop.ip()))
    anonymous = each_replica(lambda: lb.get(path, ip=shop.ip()))
    check("and by no other customer, nor anonymously, on any replica",
          all(r.status == 404 for r in list(theirs.values()) + list(anonymous.values())),
          f"other {sorted(r.status for r in theirs.values())}, "
          f"anonymous {sorted(r.status for r in anonymous.values())}")
    key = db.value(f"SELECT storage_key FROM files WHERE id = {doc.json['fileId']}")
    direct = urllib.request.Request(f"{s3}/{bucket}/shop/private/{key}")
    try:
        with urllib.request.urlopen(direct, timeout=10) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    check("the bucket does not serve it without credentials", status == 403, str(status))


def periodic_once(shop, lb, db, seconds):
    kind = "housekeeping.purge"
    start = time.time()
    first = db.int(f"SELECT COUNT(*) FROM jobs WHERE kind = '{kind}'")
    time.sleep(seconds)
    slots = db.int(f"SELECT COUNT(*) FROM jobs WHERE kind = '{kind}'")
    twice = db.int(f"SELECT COUNT(*) FROM jobs WHERE kind = '{kind}' AND attempts > 1")
    done_before = db.int(f"SELECT COUNT(*) FROM jobs WHERE kind = '{kind}' AND state = 'done'")
    metrics = each_replica(lambda: lb.get("/metrics"))
    done_after = db.int(f"SELECT COUNT(*) FROM jobs WHERE kind = '{kind}' AND state = 'done'")
    runs = {}
    for server, r in metrics.items():
        for line in r.body.decode().splitlines():
            if line.startswith("job_duration_seconds_count") and f'kind="{kind}"' in line:
                runs[server] = runs.get(server, 0) + int(float(line.split()[-1]))
    total = sum(runs.values())
    elapsed = time.time() - start
    expected = elapsed / 2  # SWEEP_INTERVAL_SECONDS=2
    check("periodic work ran once per interval across the three replicas",
          len(metrics) == 3 and done_before <= total <= done_after and twice == 0
          and slots - first >= expected - 2,
          f"{slots} slots in the database ({slots - first} in {elapsed:.0f} s at one per 2 s), "
          f"runs per replica {runs} = {total}, none run twice: {twice == 0}")


class HAProxy:
    """The balancer's admin socket: server states, and taking Redis or the S3 server away."""

    def __init__(self, path):
        self.path = path

    def command(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.path)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def status(self, backend, server):
        for line in self.command("show stat").splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == backend and f[1] == server:
                return f[17]
        return None

    def wait_for(self, backend, server, state, seconds):
        start = time.time()
        while time.time() - start < seconds:
            if (self.status(backend, server) or "").startswith(state):
                return time.time() - start
            time.sleep(0.05)
        return None

    def take_away(self, backend, server):
        self.command(f"set server {backend}/{server} state maint")
        self.command(f"shutdown sessions server {backend}/{server}")

    def bring_back(self, backend, server):
        self.command(f"set server {backend}/{server} state ready")


class Load:
    """Steady checkouts of one unit each by `workers` customers, every one with a fresh
    Idempotency-Key, retried with the same key (wherever the balancer sends it) until it gets a
    definite answer: 201, or a refusal that is final (409 out of stock, 429, 4xx)."""

    def __init__(self, shop, variant, workers):
        self.shop = shop
        self.variant = variant
        self.tokens = shop.customers("carga", workers)
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.requests = collections.Counter()  # per phase: HTTP status -> count
        self.phase = "warm-up"
        self.keys = {}  # key -> order ids its answers named
        self.threads = []

    def count(self, status):
        with self.lock:
            self.requests[(self.phase, status)] += 1

    def worker(self, i):
        token, client = self.tokens[i], ip(60000 + i)
        while not self.stop_flag.is_set():
            key = uuid.uuid4().hex
            for _ in range(200):
                started = time.time()
                r = self.shop.checkout(token, self.variant, key, client)
                if time.time() - started > 25:
                    r.status = -1  # hung: no answer within 25 s
                if r.status == 503 and not r.headers.get("Retry-After"):
                    self.count(-2)  # a 503 that does not say when to retry is not clean
                else:
                    self.count(r.status)
                if r.status == 201:
                    with self.lock:
                        self.keys.setdefault(key, set()).add(r.json["id"])
                    break
                detail = json.dumps((r.json or {}).get("error", {}).get("details", []))
                in_progress = r.status == 409 and "in_progress" in detail
                if r.status in (0, 502, 503, 504, -1) or in_progress or r.status >= 500:
                    wait = float(r.headers.get("Retry-After", "0.5") or 0.5) if r.headers else 0.5
                    if self.stop_flag.is_set() and not in_progress and r.status not in (0, 502):
                        break
                    time.sleep(min(wait, 3))
                    continue
                break  # a final refusal
            time.sleep(0.02)

    def start(self):
        for i in range(len(self.tokens)):
            t = threading.Thread(target=self.worker, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(120)

    def tally(self, phase=None):
        c = collections.Counter()
        for (p, status), n in self.requests.items():
            if phase is None or p == phase:
                c[status] += n
        return c


def run_phase(load, name, seconds, action=None):
    load.phase = name
    result = action() if action else None
    time.sleep(seconds)
    return result


def kill_a_replica(load, hp, args, seconds):
    pid_file = os.path.join(args.workdir, "r2", "pid")
    pid = int(open(pid_file).read())

    def kill():
        os.kill(pid, signal.SIGKILL)
        return hp.wait_for("replicas", "r2", "DOWN", 10)
    down = run_phase(load, "kill -9 a replica", seconds, kill)
    check("the balancer stopped routing to the killed replica within its health checks",
          down is not None and down < 2.5, f"r2 DOWN after {down if down is None else round(down, 2)} s "
          "(checks every 0.5 s, down after 2 failures)")
    # Back to three: the same binary and environment, as an orchestrator would restart it.
    port = args.port_base + 2
    env = dict(os.environ, APP_ADDR=f"127.0.0.1:{port}",
               UPLOAD_DIR=os.path.join(args.workdir, "r2", "uploads"),
               MAIL_DIR=os.path.join(args.workdir, "r2", "mail"))
    log = open(os.path.join(args.workdir, "r2", "server.log"), "a")
    p = subprocess.Popen([args.binary, "serve"], env=env, stdout=log, stderr=log,
                         start_new_session=True)
    open(pid_file, "w").write(str(p.pid))
    up = hp.wait_for("replicas", "r2", "UP", 60)
    check("the restarted replica is back in rotation", up is not None, f"after {up} s")


def restart_postgres(load, lb, seconds):
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    version, name = next((f[0], f[1]) for f in map(str.split, clusters.splitlines())
                         if len(f) > 2 and f[2] == "5432")
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            started = time.time()
            r = lb.get("/readyz")
            seen.append((started, r.status, time.time() - started))
            time.sleep(0.1)
    w = threading.Thread(target=watch, daemon=True)
    load.phase = "restart PostgreSQL"
    w.start()
    # Stopped, held down three seconds (a restart long enough for the health checks to see it),
    # then started again.
    began = time.time()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "stop"],
                   check=True)
    time.sleep(3)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
                   check=True)
    restarted = time.time() - began
    recovered = None
    deadline = time.time() + 60
    while time.time() < deadline:
        if lb.get("/readyz").status == 200 and lb.get("/api/products").status == 200:
            recovered = time.time() - began
            break
        time.sleep(0.2)
    time.sleep(seconds)
    stop.set()
    w.join(5)
    unready = [t - began for t, status, _ in seen if status == 503]
    slowest = max((d for _, _, d in seen), default=0)
    check("PostgreSQL restarted: /readyz turned 503 within seconds, then 200 again by itself",
          bool(unready) and unready[0] < 5 and recovered is not None,
          f"down and up again in {restarted:.1f} s; first 503 after "
          f"{round(unready[0], 2) if unready else None} s, "
          f"recovered after {recovered if recovered is None else round(recovered, 1)} s; "
          f"slowest /readyz {slowest:.1f} s")


def rate_limit_backends(lb, want, seconds, probe_ip):
    """Waits until all three replicas' /readyz name `want` as their limits' backend (each notices
    a Redis change at its next limited request: one is sent each round); the last states seen."""
    deadline = time.time() + seconds
    states = {}
    while time.time() < deadline:
        lb.post("/api/auth/login", body={"email": "nadie@example.cl", "password": "x1234567"},
                ip=probe_ip)
        states = {s: ((r.json or {}).get("rateLimits") or {}).get("backend")
                  for s, r in each_replica(lambda: lb.get("/readyz")).items()}
        if len(states) == 3 and all(v == want for v in states.values()):
            break
        time.sleep(0.2)
    return states


def lose_redis(load, lb, hp, seconds):
    def away():
        hp.take_away("redis", "redis")
        return rate_limit_backends(lb, "memory_fallback", 15, "10.251.0.1")
    states = run_phase(load, "Redis unreachable", seconds, away)
    # Each replica keeps its own budget of 60 a minute: more than 60 pass in all, at most three
    # budgets (and what they refill meanwhile, one a second each), and the rest are refused.
    began = time.time()
    with cf.ThreadPoolExecutor(8) as pool:
        limited = list(pool.map(lambda i: lb.post(
            "/api/auth/login", body={"email": f"z{i}@example.cl", "password": "x1234567"},
            ip="10.251.0.2").status, range(200)))
    took = time.time() - began
    passed, refused = limited.count(401), limited.count(429)
    check("Redis unreachable: served, each replica limits in process and says so",
          all(v == "memory_fallback" for v in states.values()) and len(states) == 3
          and 60 < passed <= 180 + 3 * (took + 1) and refused > 0
          and passed + refused == len(limited),
          f"{states}; 200 logins from one IP in {took:.1f} s: {passed} let through, "
          f"{refused} refused")
    hp.bring_back("redis", "redis")
    states = rate_limit_backends(lb, "redis", 20, "10.251.0.3")
    back = states if len(states) == 3 and all(v == "redis" for v in states.values()) else None
    check("Redis back: every replica shares the limit in Redis again", back is not None, str(back))


def lose_s3(load, lb, hp, shop, seconds):
    ctype, body = multipart([("file", ("foto.png", PNG))])
    before = lb.call("POST", "/api/uploads/image", shop.admin, raw=body, content_type=ctype,
                     ip=shop.ip())
    assert before.status == 201, before
    url = before.json["url"]
    load.phase = "S3 unreachable"
    hp.take_away("s3", "moto")
    up = lb.call("POST", "/api/uploads/image", shop.admin, raw=body, content_type=ctype,
                 ip=shop.ip())
    down = lb.get(url, ip=shop.ip())
    products = lb.get("/api/products", ip=shop.ip())
    ready = lb.get("/readyz")
    time.sleep(seconds)
    check("S3 unreachable: uploads and downloads 503 with Retry-After; the catalogue and /readyz 200",
          up.status == 503 and up.headers.get("Retry-After") and down.status == 503
          and down.headers.get("Retry-After") and products.status == 200 and ready.status == 200,
          f"upload {up.status} (Retry-After {up.headers.get('Retry-After')}), download "
          f"{down.status}, products {products.status}, readyz {ready.status}")
    hp.bring_back("s3", "moto")
    up = lb.call("POST", "/api/uploads/image", shop.admin, raw=body, content_type=ctype,
                 ip=shop.ip())
    down = lb.get(url, ip=shop.ip())
    check("S3 back: uploads and downloads work again", up.status == 201 and down.status == 200
          and down.body == PNG, f"upload {up.status}, download {down.status}")


def fault_drills(shop, lb, db, args):
    hp = HAProxy(args.haproxy_socket)
    stock = 1_000_000
    variant = shop.product("DRILL-LOAD", stock)
    load = Load(shop, variant, args.load_workers)
    load.start()
    run_phase(load, "steady", args.load_seconds)
    kill_a_replica(load, hp, args, args.load_seconds)
    restart_postgres(load, lb, args.load_seconds)
    lose_redis(load, lb, hp, args.load_seconds)
    lose_s3(load, lb, hp, shop, args.load_seconds)
    load.phase = "after"
    time.sleep(2)
    load.stop()
    # Reservations outlive no TTL (20 s here): wait for one sweep past the last ones' expiry.
    time.sleep(float(args.reservation_ttl) + 5)

    ids = set().union(*load.keys.values()) if load.keys else set()
    duplicates = sum(len(v) - 1 for v in load.keys.values())
    orders = db.int(f"SELECT COUNT(DISTINCT o.id) FROM orders o JOIN order_items i ON "
                    f"i.order_id = o.id WHERE i.variant_id = {variant}")
    unknown = orders - len(ids)
    left = db.int(f"SELECT stock FROM product_variants WHERE id = {variant}")
    reserved = db.int(f"SELECT COALESCE(SUM(quantity), 0) FROM stock_reservations WHERE "
                      f"variant_id = {variant} AND state = 'active'")
    oversold = max(0, -left) + max(0, reserved - left)
    # A reservation holds stock while it is active and unexpired (what availability subtracts):
    # once the TTL has passed since the load stopped, none of the load's may hold any.
    leaked = db.int(f"SELECT COUNT(*) FROM stock_reservations WHERE variant_id = {variant} AND "
                    "state = 'active' AND expires_at > NOW()")
    half = db.int("SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_items i "
                  "WHERE i.order_id = o.id)")
    # Work that must happen: none dead, none held past its lease. A periodic slot (max_attempts 1)
    # that died with the killed replica is dead by design; the next slot does its work.
    stuck = db.int("SELECT COUNT(*) FROM jobs WHERE (state = 'dead' AND max_attempts > 1) OR "
                   "(state = 'running' AND locked_until < NOW() - INTERVAL '5 seconds')")
    lost_slots = db.value("SELECT string_agg(kind || ' ' || COALESCE(last_error, ''), '; ') FROM "
                          "jobs WHERE state = 'dead' AND max_attempts = 1") or "none"
    later = db.int("SELECT COUNT(*) FROM jobs d JOIN jobs l ON l.kind = d.kind AND "
                   "l.state = 'done' AND l.run_at > d.run_at WHERE d.state = 'dead' AND "
                   "d.max_attempts = 1")
    dead_slots = db.int("SELECT COUNT(*) FROM jobs WHERE state = 'dead' AND max_attempts = 1")

    phases = ["steady", "kill -9 a replica", "restart PostgreSQL", "Redis unreachable",
              "S3 unreachable", "after"]
    rows = []
    other5xx_total = 0
    for ph in phases + [None]:
        t = load.tally(ph)
        total = sum(t.values())
        clean = sum(n for s, n in t.items() if s in (503, 409, 429))
        lost = sum(n for s, n in t.items() if s in (0, 502))
        other = (sum(n for s, n in t.items() if s >= 500 and s not in (502, 503))
                 + t.get(-1, 0) + t.get(-2, 0))
        if ph is None:
            other5xx_total = other
        rows.append((ph or "all", total, t.get(201, 0), clean, lost, other))
    print()
    print(f"{'phase':<22}{'requests':>9}{'completed':>10}{'clean failures':>15}"
          f"{'lost in flight':>15}{'other 5xx':>10}")
    print(f"{'':<22}{'':>9}{'(201)':>10}{'(503/409/429)':>15}{'(502, retried)':>15}{'or hung':>10}")
    print("(a 503 counts as clean only with Retry-After; 409 here is in_progress on a key whose "
          "first request died)")
    for r in rows:
        print(f"{r[0]:<22}{r[1]:>9}{r[2]:>10}{r[3]:>15}{r[4]:>15}{r[5]:>10}")
    print()
    print(f"orders {orders} (answered to their clients: {len(ids)}, keys {len(load.keys)}), "
          f"oversold {oversold}, duplicate orders {duplicates + max(0, unknown)}, "
          f"leaked reservations {leaked}, half-written orders {half}, stuck jobs {stuck}")
    print()
    check("no other 5xx and no hung request under the drills", other5xx_total == 0,
          str(other5xx_total))
    check("every order placed was answered to its client, once per key",
          duplicates == 0 and unknown == 0 and orders > 0,
          f"{orders} orders, {len(ids)} answered, {duplicates} keys with two orders")
    check("nothing oversold", oversold == 0, f"stock {left}, reserved {reserved}")
    check("no reservation outlived its TTL, no half-written order", leaked == 0 and half == 0,
          f"leaked {leaked}, half-written {half}")
    check("every job finished or is running under a live lease (none dead)", stuck == 0,
          str(stuck))
    check("periodic work went on after the kill", dead_slots == 0 or later > 0,
          f"periodic runs lost with the killed replica: {lost_slots}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--balancer", required=True)
    p.add_argument("--database", required=True)
    p.add_argument("--s3", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--periodic-seconds", type=float, default=8)
    p.add_argument("--haproxy-socket", required=True)
    p.add_argument("--binary", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--port-base", type=int, required=True)
    p.add_argument("--load-workers", type=int, default=6)
    p.add_argument("--load-seconds", type=float, default=4,
                   help="how long each phase of the fault drills keeps the load on")
    p.add_argument("--reservation-ttl", type=float, default=20)
    p.add_argument("--skip-faults", action="store_true")
    args = p.parse_args()
    lb = Balancer(args.balancer)
    db = Database(args.database)
    shop = Shop(lb, db)
    started = time.time()
    race_for_stock(shop, lb, db)
    duplicate_notifications(shop, lb, db)
    logout_everywhere(shop, lb, db)
    per_ip_limit(shop, lb, db)
    files_anywhere(shop, lb, db, args.s3, args.bucket)
    periodic_once(shop, lb, db, args.periodic_seconds)
    if not args.skip_faults:
        fault_drills(shop, lb, db, args)
    print(f"== {len(FAILED)} failed check(s) in {time.time() - started:.0f} s")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

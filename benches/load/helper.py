#!/usr/bin/env python3
"""Helper of benches/load.sh (standard library only).

  helper.py count BASE                   benchmark products anonymous readers see (category `load-bench`)
  helper.py import BASE                  sign in as the admin, create the category, import what is missing
  helper.py cache-supported BASE         exit 0 when /metrics shows a response cache
  helper.py prepare BASE OUTDIR          write request bodies and OUTDIR/scenarios.tsv (+ notes.txt)
  helper.py counters BASE                statements and requests so far, from /metrics
  helper.py table RESULTS NOTES CONTEXT  the table: median of the runs of each scenario
"""

import json
import os
import re
import statistics
import sys
import urllib.error
import urllib.parse
import urllib.request

CATEGORY = "load-bench"
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "1000"))
VARIANTS = 3
SKU_PREFIX = "LB-"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPS = os.path.join(ROOT, "src", "rest", "operations")


def die(msg):
    print(f"load.sh: {msg}", file=sys.stderr)
    sys.exit(1)


def request(base, method, path, body=None, headers=None, token=None):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    h = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        else:
            data = body.encode() if isinstance(body, str) else body
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, OSError) as e:
        die(f"{method} {base}{path}: {e}")


def get_json(base, path, token=None):
    status, _, body = request(base, "GET", path, token=token)
    if status != 200:
        die(f"GET {path} answered {status}: {body[:500]!r}")
    return json.loads(body)


def bench_page(base, page=1, page_size=1):
    return get_json(base, f"/api/products?category={CATEGORY}&isActive=true&pageSize={page_size}&page={page}")


def count(base):
    status, _, body = request(base, "GET", f"/api/products?category={CATEGORY}&isActive=true&pageSize=1")
    if status == 200:
        return json.loads(body)["total"]
    if status in (400, 404):  # no such category yet
        return 0
    die(f"counting benchmark products: {status} {body[:300]!r}")


def name_of(i):
    return f"Load Bench {i:04d}"


def import_catalogue(base):
    email = os.environ.get("BENCH_ADMIN_EMAIL", "admin@dispensario.local")
    password = os.environ.get("BENCH_ADMIN_PASSWORD", "Admin12345!")
    status, _, body = request(base, "POST", "/api/auth/login", {"email": email, "password": password})
    if status != 200:
        die(f"admin login as {email} failed ({status}): {body[:300]!r}")
    token = json.loads(body)["accessToken"]

    cats = get_json(base, "/api/categories?pageSize=100", token)["items"]
    cat = next((c for c in cats if c["slug"] == CATEGORY), None)
    if cat is None:
        status, _, body = request(base, "POST", "/api/categories", {
            "name": "Load bench", "slug": CATEGORY, "isMedicinal": False,
            "description": "Catálogo de la prueba de carga (benches/load.sh)"}, token=token)
        if status != 201:
            die(f"creating category {CATEGORY} failed ({status}): {body[:300]!r}")
    elif cat["isMedicinal"] or not cat["isActive"]:
        die(f"category {CATEGORY} exists but is medicinal or inactive; anonymous readers would not see it")

    # Names already there (an earlier, smaller run): import only the missing ones.
    have = set()
    page = 1
    while True:
        data = get_json(base, f"/api/products?category={CATEGORY}&pageSize=100&page={page}", token)
        have.update(p["name"] for p in data["items"])
        if page * 100 >= data["total"]:
            break
        page += 1
    missing = [i for i in range(1, PRODUCTS + 1) if name_of(i) not in have]
    if not missing:
        return
    lines = ["name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock"]
    for i in missing:
        for v, label in enumerate(["1g", "5g", "10g"][:VARIANTS]):
            lines.append(",".join([
                name_of(i), CATEGORY,
                f"Producto {i} de la prueba de carga: semillas feminizadas de floración rápida",
                "", "true", f"{SKU_PREFIX}{i:04d}-{v + 1}", label,
                str(1990 + 1000 * ((i * 7 + v * 13) % 90)), "1000"]))
    csv = "\n".join(lines) + "\n"
    status, _, body = request(base, "POST", "/api/products/import", csv,
                              {"Content-Type": "text/csv; charset=utf-8"}, token)
    if status != 200:
        die(f"import refused ({status}): {body[:2000].decode(errors='replace')}")
    report = json.loads(body)
    errors = report.get("errors") or []
    want_variants = len(missing) * VARIANTS
    if errors or report.get("rows") != want_variants or report.get("variantsCreated") != want_variants:
        die(f"import report does not add up (expected {want_variants} rows and variants): {json.dumps(report)[:2000]}")
    print(f"imported {report['productsCreated']} products, {report['variantsCreated']} variants "
          f"({len(lines) - 1} CSV rows, {len(csv)} bytes)")


def fragments():
    out = {}
    d = os.path.join(OPS, "fragments")
    for f in sorted(os.listdir(d)):
        text = open(os.path.join(d, f)).read()
        for m in re.finditer(r"^fragment (\w+) on ", text, re.M):
            depth, i = 0, text.index("{", m.end())
            for j in range(i, len(text)):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    out[m.group(1)] = text[m.start():j + 1]
                    break
    return out


def document(op_file):
    """The REST route's operation plus the fragments it spreads (transitively), as the bridge sends it."""
    op = open(os.path.join(OPS, op_file)).read().strip()
    frags, used, todo = fragments(), [], re.findall(r"\.\.\.(\w+)", op)
    while todo:
        name = todo.pop(0)
        if name not in used:
            used.append(name)
            todo += re.findall(r"\.\.\.(\w+)", frags[name])
    return "\n".join([op] + [frags[n] for n in used]) + "\n"


def prepare(base, outdir):
    first = bench_page(base)
    if not first["items"]:
        die("no benchmark product visible anonymously")
    pid = first["items"][0]["id"]
    products = document("catalog/products.graphql")
    product = document("catalog/product.graphql")
    json_h = "Content-Type: application/json"
    rows = []  # id, label, method, path, body, headers

    def gql(id_, label, doc, op, variables):
        body = os.path.join(outdir, f"{id_}.json")
        with open(body, "w") as f:
            json.dump({"query": doc, "operationName": op, "variables": variables}, f)
        rows.append((id_, label, "POST", "/graphql", body, json_h))

    gql("gql-list-20", "GraphQL products(pageSize:20)", products, "Products", {"pageSize": 20})
    rows.append(("rest-list-20", "REST GET /api/products?pageSize=20", "GET", "/api/products?pageSize=20", "", ""))
    gql("gql-list-100", "GraphQL products(pageSize:100)", products, "Products", {"pageSize": 100})
    rows.append(("rest-list-100", "REST GET /api/products?pageSize=100", "GET", "/api/products?pageSize=100", "", ""))
    gql("gql-product", "GraphQL product(id)", product, "Product", {"id": pid})
    rows.append(("rest-product", "REST GET /api/products/{id}", "GET", f"/api/products/{pid}", "", ""))

    # Revalidation: measured only when the server answers If-None-Match with 304.
    notes = []
    gql_get = "/graphql?" + urllib.parse.urlencode({
        "query": products, "operationName": "Products", "variables": json.dumps({"pageSize": 20})})
    for id_, label, path in [("rest-list-20-304", "REST list 20, If-None-Match → 304", "/api/products?pageSize=20"),
                             ("gql-get-list-20-304", "GraphQL GET list 20, If-None-Match → 304", gql_get)]:
        status, headers, _ = request(base, "GET", path)
        etag = headers.get("ETag") if status == 200 else None
        if etag:
            status, _, _ = request(base, "GET", path, headers={"If-None-Match": etag})
        if etag and status == 304:
            rows.append((id_, label, "GET", path, "", f"If-None-Match: {etag}"))
        elif not notes:
            notes.append("Not measured: 304 revalidation — catalogue responses carry no ETag, so If-None-Match "
                         "still gets a full 200 (issue 13, a later slice).")

    # Every scenario must answer 2xx/304 before it is timed.
    for id_, label, method, path, body, hdrs in rows:
        h = dict(l.split(": ", 1) for l in hdrs.split("\n") if l)
        status, _, resp = request(base, method, path, open(body, "rb").read() if body else None, h)
        if status not in (200, 304) or (path == "/graphql" and b'"errors"' in resp):
            die(f"scenario {id_} does not answer cleanly ({status}): {resp[:500]!r}")
    with open(os.path.join(outdir, "scenarios.tsv"), "w") as f:
        # Empty fields are "-": bash's `read` folds consecutive tabs (whitespace) into one.
        for r in rows:
            f.write("\t".join(x or "-" for x in r).replace("\n", "\\n") + "\n")
    with open(os.path.join(outdir, "notes.txt"), "a") as f:
        for n in notes:
            f.write(n + "\n")


def counters(base):
    """db_statements_total and http_requests_total (both summed over their labels; the scrapes of /metrics and
    /readyz left out), so SQL per request counts what the server finished, whatever wrk cut off at its end."""
    status, _, body = request(base, "GET", "/metrics")
    if status != 200:
        die(f"/metrics answered {status}")
    statements, requests, found = 0.0, 0.0, False
    for line in body.decode().splitlines():
        m = re.match(r"^db_statements_total(\{[^}]*\})?\s+(\S+)", line)
        if m:
            statements += float(m.group(2))
            found = True
        m = re.match(r"^http_requests_total(\{.*\})?\s+(\S+)$", line)
        if m and not re.search(r'route="/(metrics|readyz)"', m.group(1) or ""):
            requests += float(m.group(2))
    if not found:
        die("/metrics has no db_statements_total")
    print(int(statements), int(requests))


def table(results, notes, context):
    runs = {}
    order = []
    for line in open(results):
        r = json.loads(line)
        key = (r["mode"], r["id"])
        if key not in runs:
            runs[key] = []
            order.append(key)
        runs[key].append(r)
    print(context)
    print()
    print("| scenario | conns | req/s | p50 | p99 | errors | SQL/req | RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for key in order:
        rs = runs[key]
        label = rs[0]["label"] + ("" if rs[0]["mode"] == "default" else f" · cache {rs[0]['mode']}")
        rps = statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in rs)
        p50 = statistics.median(r["p50_us"] for r in rs) / 1000
        p99 = statistics.median(r["p99_us"] for r in rs) / 1000
        errors = sum(r["status_errors"] + r["connect_errors"] + r["read_errors"] + r["write_errors"]
                     + r["timeouts"] for r in rs)
        sql = sum(r["statements"] for r in rs) / max(1, sum(r["served"] for r in rs))
        rss = rs[-1]["rss_kb"] / 1024
        print(f"| {label} | {rs[0]['conns']} | {rps:,.0f} | {p50:.1f} ms | {p99:.1f} ms | {errors} | "
              f"{sql:.2f} | {rss:.0f} |")
    print()
    print(f"req/s, p50, p99: median of {len(runs[order[0]])} runs; errors: non-2xx/3xx responses plus socket "
          "errors, all runs; SQL/req: db_statements_total delta / http_requests_total delta, all runs; "
          "RSS: server VmRSS after the scenario.")
    if os.path.exists(notes):
        for n in open(notes):
            if n.strip():
                print(n.strip())


def main():
    if len(sys.argv) < 3:
        die(__doc__)
    cmd, base = sys.argv[1], sys.argv[2]
    if cmd == "count":
        print(count(base))
    elif cmd == "import":
        import_catalogue(base)
    elif cmd == "cache-supported":
        _, _, body = request(base, "GET", "/metrics")
        sys.exit(0 if b"response_cache_hits_total" in body else 1)
    elif cmd == "prepare":
        prepare(base, sys.argv[3])
    elif cmd == "counters":
        counters(base)
    elif cmd == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        die(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

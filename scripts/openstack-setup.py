"""Identity, catalog and Swift account setup for scripts/openstack-up.sh.

Python standard library only (urllib against the REST APIs), idempotent: every
object is looked up before it is created. Configuration comes from GOSTREE_OS_*
environment variables set by openstack-up.sh; secrets are never printed.

  identity  projects demo/service, users demo/glance/swift(/heat), roles, catalog
            (image, object-store, and with GOSTREE_OS_HEAT_URL set orchestration
            and cloudformation, Heat's stack-user domain "heat" and its admin
            heat_domain_admin); prints "demo_project_id=… admin_project_id=…"
  swift     sets the TempURL key on the demo account
  heat-ready URL TIMEOUT PIDFILE
            waits (bounded) until heat-api answers an authenticated stack list,
            which travels api -> fake RPC -> engine; fails early when the
            process in PIDFILE exits
  sqlite-autoincrement DB
            gives every table of DB with an integer "id" primary key
            AUTOINCREMENT, so sqlite never hands out a deleted row's id again
            (MySQL and PostgreSQL never do; Heat relies on it)
  smoke     checks Keystone, Glance, Swift (TempURLs, public reads) and, when
            the catalog has it, Heat (a DeployedServer stack) as the user of the
            sourced openrc (scripts/openstack-smoke.sh)
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

E = os.environ
KS = E.get("GOSTREE_OS_KS_URL", "")  # http://127.0.0.1:PORT/v3 (smoke: from OS_AUTH_URL)


def call(method, url, token=None, body=None, headers=None, ok=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            status, hdrs = r.status, r.headers
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), e.headers
    if status not in ok:
        sys.exit("%s %s: HTTP %d: %s" % (method, url.split("?")[0], status, raw[:300].decode(errors="replace")))
    return (json.loads(raw) if raw and raw[:1] in b"{[" else None), hdrs


def token(user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    doc, hdrs = call("POST", KS + "/auth/tokens", body=body)
    return hdrs["X-Subject-Token"], doc["token"]


def password_works(user, password, domain="default"):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": domain}, "password": password}}}}}
    _, hdrs = call("POST", KS + "/auth/tokens", body=body, ok=(201, 401))
    return bool(hdrs.get("X-Subject-Token"))


def find(tok, kind, key, name, extra=""):
    doc, _ = call("GET", "%s/%s?name=%s%s" % (KS, kind, urllib.parse.quote(name), extra), tok)
    items = doc[kind]
    return items[0] if items else None


def ensure(tok, kind, key, name, attrs):
    found = find(tok, kind, key, name)
    if found:
        return found
    body = {key: dict(attrs, name=name)}
    doc, _ = call("POST", "%s/%s" % (KS, kind), tok, body)
    return doc[key]


def identity():
    tok, _ = token("admin", E["GOSTREE_OS_ADMIN_PASSWORD"], "admin")
    heat = bool(E.get("GOSTREE_OS_HEAT_URL"))
    names = ["admin", "member", "reader", "swiftoperator", "ResellerAdmin"]
    if heat:
        names += ["heat_stack_owner", "heat_stack_user"]
    roles = {r: ensure(tok, "roles", "role", r, {})["id"] for r in names}
    projects = {p: ensure(tok, "projects", "project", p, {"domain_id": "default"})["id"]
                for p in ("admin", "service", "demo")}

    def user(name, password, project, domain="default"):
        u = find(tok, "users", "user", name, "&domain_id=" + domain)
        if u:
            if not password_works(name, password, domain):
                # Only when needed: a password change revokes the user's tokens, including
                # (second granularity) ones issued in the same second right after it.
                call("PATCH", "%s/users/%s" % (KS, u["id"]), tok, {"user": {"password": password}})
        else:
            attrs = {"name": name, "password": password, "domain_id": domain}
            if project:
                attrs["default_project_id"] = projects[project]
            u, _ = call("POST", KS + "/users", tok, {"user": attrs})
            u = u["user"]
        return u["id"]

    def grant(role, uid, project):
        call("PUT", "%s/projects/%s/users/%s/roles/%s" % (KS, projects[project], uid, roles[role]), tok)

    for svc in ("glance", "swift") + (("heat",) if heat else ()):
        grant("admin", user(svc, E["GOSTREE_OS_SERVICE_PASSWORD"], "service"), "service")
    demo = user("demo", E["GOSTREE_OS_DEMO_PASSWORD"], "demo")
    grant("member", demo, "demo")
    grant("reader", demo, "demo")
    admin = find(tok, "users", "user", "admin", "&domain_id=default")["id"]
    grant("admin", admin, "demo")

    catalog = {"image": ("glance", E["GOSTREE_OS_IMAGE_URL"]),
               "object-store": ("swift", E["GOSTREE_OS_SWIFT_URL"])}
    if heat:
        grant("heat_stack_owner", demo, "demo")
        # Heat's stack-user domain: Heat creates a user (and a project) there for every
        # DeployedServer/Server that polls with POLL_SERVER_HEAT or signals with HEAT_SIGNAL,
        # through heat_domain_admin, which administers that domain only.
        dom = find(tok, "domains", "domain", "heat", "")
        if not dom:
            dom, _ = call("POST", KS + "/domains", tok, {"domain": {
                "name": "heat", "description": "Users and projects Heat creates for stacks"}})
            dom = dom["domain"]
        hda = user("heat_domain_admin", E["GOSTREE_OS_SERVICE_PASSWORD"], None, dom["id"])
        call("PUT", "%s/domains/%s/users/%s/roles/%s" % (KS, dom["id"], hda, roles["admin"]), tok)
        catalog["orchestration"] = ("heat", E["GOSTREE_OS_HEAT_URL"])
        catalog["cloudformation"] = ("heat-cfn", E["GOSTREE_OS_HEAT_CFN_URL"])
    for stype, (sname, url) in catalog.items():
        doc, _ = call("GET", "%s/services?type=%s" % (KS, stype), tok)
        if doc["services"]:
            sid = doc["services"][0]["id"]
        else:
            d, _ = call("POST", KS + "/services", tok, {"service": {"name": sname, "type": stype, "enabled": True}})
            sid = d["service"]["id"]
        for iface in ("public", "internal", "admin"):
            doc, _ = call("GET", "%s/endpoints?service_id=%s&interface=%s" % (KS, sid, iface), tok)
            eps = doc["endpoints"]
            if eps and eps[0]["url"] != url:
                call("PATCH", "%s/endpoints/%s" % (KS, eps[0]["id"]), tok, {"endpoint": {"url": url}})
            elif not eps:
                call("POST", KS + "/endpoints", tok, {"endpoint": {
                    "service_id": sid, "interface": iface, "url": url, "region_id": "RegionOne"}})
    print("demo_project_id=%s admin_project_id=%s" % (projects["demo"], projects["admin"]))


def swift():
    tok, doc = token("demo", E["GOSTREE_OS_DEMO_PASSWORD"], "demo")
    url = E["GOSTREE_OS_SWIFT_URL"].replace("%(project_id)s", doc["project"]["id"])
    call("POST", url, tok, headers={"X-Account-Meta-Temp-URL-Key": E["GOSTREE_OS_TEMPURL_KEY"]})


def sqlite_autoincrement():
    """Rebuilds the tables whose primary key is an integer "id" with AUTOINCREMENT.

    Without it sqlite reuses the id of the last row deleted. Heat deletes
    resource_properties_data rows by ids it remembers; with the convergence engine a stale id
    then deleted the properties of a resource updated a moment before, whose new row had been
    given the same id (the stack answered 404 from then on)."""
    import re
    import sqlite3
    db = sqlite3.connect(sys.argv[2], isolation_level=None)
    db.execute("PRAGMA foreign_keys=OFF")
    db.execute("BEGIN IMMEDIATE")
    tables = db.execute("SELECT name, sql FROM sqlite_master WHERE type='table'").fetchall()
    for name, sql in tables:
        if "AUTOINCREMENT" in sql or not re.search(r'\bid INTEGER NOT NULL', sql) or "PRIMARY KEY (id)" not in sql:
            continue
        new = sql.replace("id INTEGER NOT NULL", "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL", 1)
        new = re.sub(r',\s*PRIMARY KEY \(id\)', '', new, count=1)
        new = re.sub(r'^CREATE TABLE "?%s"?' % re.escape(name), 'CREATE TABLE "%s__autoinc"' % name, new, count=1)
        indexes = [r[0] for r in db.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL", (name,))]
        db.execute(new)
        db.execute('INSERT INTO "%s__autoinc" SELECT * FROM "%s"' % (name, name))
        db.execute('DROP TABLE "%s"' % name)
        db.execute('ALTER TABLE "%s__autoinc" RENAME TO "%s"' % (name, name))
        for ix in indexes:
            db.execute(ix)
    db.execute("COMMIT")
    bad = db.execute("PRAGMA integrity_check").fetchone()[0]
    if bad != "ok":
        sys.exit("%s: integrity check after the rebuild: %s" % (sys.argv[2], bad))


def heat_ready():
    """heat-ready URL TIMEOUT PIDFILE: until GET URL/<admin project>/stacks answers 200."""
    import time
    url, timeout, pidfile = sys.argv[2], float(sys.argv[3]), sys.argv[4]
    tok, doc = token("admin", E["GOSTREE_OS_ADMIN_PASSWORD"], "admin")
    stacks = "%s/%s/stacks" % (url.rstrip("/"), doc["project"]["id"])
    pid = int(open(pidfile).read().strip())
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(stacks, headers={"X-Auth-Token": tok})
            with urllib.request.urlopen(req, timeout=10) as r:
                if r.status == 200:
                    return
                last = "HTTP %d" % r.status
        except urllib.error.HTTPError as e:
            last = "HTTP %d" % e.code
        except OSError as e:
            last = str(e)
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("heat-all (pid %d) exited" % pid)
        time.sleep(0.25)
    sys.exit("no stack list from %s after %gs (last: %s)" % (stacks, timeout, last))


HEAT_SMOKE_TEMPLATE = {
    "heat_template_version": "2018-08-31",
    "parameters": {"greeting": {"type": "string", "default": "hello"}},
    "resources": {
        "server": {"type": "OS::Heat::DeployedServer",
                   "properties": {"software_config_transport": "POLL_TEMP_URL"}},
        "config": {"type": "OS::Heat::SoftwareConfig",
                   "properties": {"group": "smoke", "inputs": [{"name": "greeting"}]}},
        "deployment": {"type": "OS::Heat::SoftwareDeployment",
                       "properties": {"config": {"get_resource": "config"}, "server": {"get_resource": "server"},
                                      "signal_transport": "NO_SIGNAL",
                                      "input_values": {"greeting": {"get_param": "greeting"}}}}},
}


def heat_smoke(check, tok, cat):
    """A DeployedServer stack with a software deployment: create, metadata over the REST API
    and the POLL_TEMP_URL Swift copy, update, delete."""
    import time
    orch = cat["orchestration"].rstrip("/")

    def wait(loc, want):
        for _ in range(240):  # 60 s
            doc, _ = call("GET", loc, tok, ok=(200, 404))
            st = doc["stack"]["stack_status"] if doc and "stack" in doc else "GONE"
            if st == want or st.endswith("_FAILED"):
                return st, (doc or {}).get("stack", {}).get("stack_status_reason", "")
            time.sleep(0.25)
        return st, "timeout"

    def greetings(doc):
        return [i["value"] for d in doc.get("deployments", []) for i in d["inputs"] if i["name"] == "greeting"]

    name = "gostree-smoke-%d" % os.getpid()
    st, _ = call("POST", orch + "/stacks", tok, {"stack_name": name, "template": HEAT_SMOKE_TEMPLATE,
                                                 "timeout_mins": 5})
    loc = "%s/stacks/%s/%s" % (orch, name, st["stack"]["id"])
    status, reason = wait(loc, "CREATE_COMPLETE")
    check("heat: DeployedServer stack %s %s" % (status, reason), status == "CREATE_COMPLETE")
    md, _ = call("GET", loc + "/resources/server/metadata", tok)
    md = md["metadata"]
    url = md.get("os-collect-config", {}).get("request", {}).get("metadata_url", "")
    check("heat: server metadata has the deployment and a POLL_TEMP_URL metadata_url",
          greetings(md) == ["hello"] and url.startswith(cat["object-store"].split("/v1/")[0]))
    call("PATCH", loc, tok, {"parameters": {"greeting": "bonjour"}}, ok=(202,))
    status, reason = wait(loc, "UPDATE_COMPLETE")
    with urllib.request.urlopen(url, timeout=60) as r:
        swift_copy = json.loads(r.read())
    check("heat: stack update %s; the Swift copy shows the new input" % status,
          status == "UPDATE_COMPLETE" and greetings(swift_copy) == ["bonjour"])
    call("DELETE", loc, tok)
    status, _ = wait(loc, "DELETE_COMPLETE")
    check("heat: stack delete %s" % status, status in ("DELETE_COMPLETE", "GONE"))
    # Heat 19 leaves a POLL_TEMP_URL server's container behind (server_base._delete_temp_url
    # looks the object-store service up with type and name swapped).
    acct = cat["object-store"]
    left, _ = call("GET", "%s?format=json&prefix=%s" % (acct, name), tok)
    for c in left or []:
        objs, _ = call("GET", "%s/%s?format=json" % (acct, c["name"]), tok)
        for o in objs or []:
            call("DELETE", "%s/%s/%s" % (acct, c["name"], urllib.parse.quote(o["name"])), tok, ok=(204, 404))
        call("DELETE", "%s/%s" % (acct, c["name"]), tok, ok=(204, 404))


def smoke():
    """Checks every service as the demo user from openrc (OS_* variables)."""
    import hashlib
    import hmac
    import time

    def check(what, cond):
        print("%s %s" % ("ok  " if cond else "FAIL", what))
        if not cond:
            sys.exit(1)

    global KS
    KS = E["OS_AUTH_URL"].rstrip("/")
    tok, doc = token(E["OS_USERNAME"], E["OS_PASSWORD"], E["OS_PROJECT_NAME"])
    check("keystone: token for %s" % E["OS_USERNAME"], bool(tok))
    cat = {s["type"]: [e["url"] for e in s["endpoints"] if e["interface"] == "public"][0]
           for s in doc["catalog"]}
    check("catalog has image and object-store", "image" in cat and "object-store" in cat)

    img = cat["image"].rstrip("/") + "/v2/images"
    im, _ = call("POST", img, tok, {"name": "gostree-smoke", "disk_format": "raw",
                                     "container_format": "bare", "smoke": "yes"})
    payload = os.urandom(1 << 20)
    req = urllib.request.Request("%s/%s/file" % (img, im["id"]), data=payload, method="PUT",
                                 headers={"X-Auth-Token": tok, "Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req, timeout=60).read()
    req = urllib.request.Request("%s/%s/file" % (img, im["id"]), headers={"X-Auth-Token": tok})
    got = urllib.request.urlopen(req, timeout=60).read()
    meta, _ = call("GET", "%s/%s" % (img, im["id"]), tok)
    check("glance: upload + download 1 MiB, status %s, property smoke=%s" % (meta["status"], meta.get("smoke")),
          got == payload and meta["status"] == "active" and meta.get("smoke") == "yes")
    call("DELETE", "%s/%s" % (img, im["id"]), tok)

    acct = cat["object-store"]
    c = "%s/gostree-smoke" % acct
    call("PUT", c, tok)
    req = urllib.request.Request(c + "/dir/obj", data=b"hello swift", method="PUT", headers={"X-Auth-Token": tok})
    urllib.request.urlopen(req, timeout=60).read()

    def get(url, headers=None):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    check("swift: GET with token", get(c + "/dir/obj", {"X-Auth-Token": tok}) == (200, b"hello swift"))
    check("swift: anonymous GET of a private object is 401", get(c + "/dir/obj")[0] == 401)
    path = urllib.parse.urlparse(c + "/dir/obj").path
    exp = int(time.time()) + 300
    key = E["OS_SWIFT_TEMPURL_KEY"].encode()
    for algo, want in (("sha256", 200), ("sha512", 200), ("sha1", 401)):
        sig = hmac.new(key, ("GET\n%d\n%s" % (exp, path)).encode(), getattr(hashlib, algo)).hexdigest()
        st, _ = get("%s?temp_url_sig=%s&temp_url_expires=%d" % (c + "/dir/obj", sig, exp))
        check("swift: %s TempURL answers %d" % (algo, want), st == want)
    call("POST", c, tok, headers={"X-Container-Read": ".r:*,.rlistings"})
    check("swift: anonymous GET from a public-read container", get(c + "/dir/obj") == (200, b"hello swift"))
    info = json.loads(get(acct.split("/v1/")[0] + "/info")[1])
    check("swift: /info allows only sha256/sha512 TempURLs and has staticweb",
          info["tempurl"]["allowed_digests"] == ["sha256", "sha512"] and "staticweb" in info)
    call("DELETE", c + "/dir/obj", tok)
    call("DELETE", c, tok)
    if "orchestration" in cat:
        heat_smoke(check, tok, cat)
    else:
        print("skip heat: no orchestration endpoint in the catalog")
    print("openstack smoke: all checks passed")


if __name__ == "__main__":
    {"identity": identity, "swift": swift, "heat-ready": heat_ready, "sqlite-autoincrement": sqlite_autoincrement,
     "smoke": smoke}[sys.argv[1]]()

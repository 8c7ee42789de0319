"""Identity, catalog and Swift account setup for scripts/openstack-up.sh.

Python standard library only (urllib against the REST APIs), idempotent: every
object is looked up before it is created. Configuration comes from GOSTREE_OS_*
environment variables set by openstack-up.sh; secrets are never printed.

  identity  projects demo/service, users demo/glance/swift, roles, catalog
            (image, object-store); prints "demo_project_id=… admin_project_id=…"
  swift     sets the TempURL key on the demo account
  smoke     checks Keystone, Glance and Swift (TempURLs, public reads) as the
            user of the sourced openrc (scripts/openstack-smoke.sh)
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


def password_works(user, password):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}}
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
    roles = {r: ensure(tok, "roles", "role", r, {})["id"]
             for r in ("admin", "member", "reader", "swiftoperator", "ResellerAdmin")}
    projects = {p: ensure(tok, "projects", "project", p, {"domain_id": "default"})["id"]
                for p in ("admin", "service", "demo")}

    def user(name, password, project):
        u = find(tok, "users", "user", name)
        if u:
            if not password_works(name, password):
                # Only when needed: a password change revokes the user's tokens, including
                # (second granularity) ones issued in the same second right after it.
                call("PATCH", "%s/users/%s" % (KS, u["id"]), tok, {"user": {"password": password}})
        else:
            u, _ = call("POST", KS + "/users", tok, {"user": {
                "name": name, "password": password, "domain_id": "default",
                "default_project_id": projects[project]}})
            u = u["user"]
        return u["id"]

    def grant(role, uid, project):
        call("PUT", "%s/projects/%s/users/%s/roles/%s" % (KS, projects[project], uid, roles[role]), tok)

    for svc in ("glance", "swift"):
        grant("admin", user(svc, E["GOSTREE_OS_SERVICE_PASSWORD"], "service"), "service")
    demo = user("demo", E["GOSTREE_OS_DEMO_PASSWORD"], "demo")
    grant("member", demo, "demo")
    grant("reader", demo, "demo")
    admin = find(tok, "users", "user", "admin")["id"]
    grant("admin", admin, "demo")

    catalog = {"image": ("glance", E["GOSTREE_OS_IMAGE_URL"]),
               "object-store": ("swift", E["GOSTREE_OS_SWIFT_URL"])}
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
    print("openstack smoke: all checks passed")


if __name__ == "__main__":
    {"identity": identity, "swift": swift, "smoke": smoke}[sys.argv[1]]()

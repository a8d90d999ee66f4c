# Regenerates the seed inputs of fuzz/corpus/ from the test fixtures and deploy examples (python3 with
# cryptography and PyYAML; JWK seeds are fresh random keys). Run from anywhere: python3 fuzz/seeds.py
import base64, glob, hashlib, json, os, yaml
from cryptography.hazmat.primitives.asymmetric import rsa, ec
from cryptography import x509
from cryptography.hazmat.primitives import serialization

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
corpus = f"{root}/fuzz/corpus"
def put(target, data, name=None):
    if isinstance(data, str): data = data.encode()
    os.makedirs(f"{corpus}/{target}", exist_ok=True)
    name = name or "seed-" + hashlib.sha1(data).hexdigest()[:12]
    open(f"{corpus}/{target}/{name}", "wb").write(data)

b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def intb(i): return i.to_bytes((i.bit_length() + 7) // 8, "big")

# driver payloads
fixtures = {}
for p in sorted(glob.glob(f"{root}/tests/fixtures/driver/*.json")):
    d = json.load(open(p)); fixtures[os.path.basename(p)] = d
    put("plan", "\0".join([d["attributes"], d["secrets"] if d["secrets"] is not None else "null", d["permission"]]))
    attrs = json.loads(d["attributes"])
    put("objects_yaml", attrs["objects"])
    tok = attrs.get("csi.storage.k8s.io/serviceAccount.tokens")
    secrets = json.loads(d["secrets"]) if d["secrets"] not in (None, "null", "") else {}
    tok = tok or secrets.get("csi.storage.k8s.io/serviceAccount.tokens")
    if tok:
        put("token_map", tok)
        for aud, e in json.loads(tok).items():
            put("jwt_claims", e["token"])
            put("jwt_claims", base64.urlsafe_b64decode(e["token"].split(".")[1] + "=="))
put("plan", '{"keyvaultName":"kv"}\0null\0420')
put("plan", '{}\0{"clientid":"x","clientsecret":"y"}\0511')
put("token_map", '{"api://AzureADTokenExchange":{"token":" ","expirationTimestamp":"not a time"}}')
put("token_map", '{"other":{"token":"x"}}')

# objects YAML: the examples' and handcrafted edge cases
for p in sorted(glob.glob(f"{root}/deploy/examples/*.yaml") + glob.glob(f"{root}/tests/fixtures/check/*.yaml")):
    text = open(p).read()
    put("check", text)
    try:
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "SecretProviderClass":
                o = (doc.get("spec") or {}).get("parameters", {}).get("objects")
                if o: put("objects_yaml", o)
    except Exception:
        pass
for items in [
    ["objectName: s\nobjectType: secret\nobjectAlias: dir/sub/file\nfilePermission: \"0600\""],
    ["objectName: s\nobjectType: secret\nobjectVersionHistory: \"3\"\nobjectVersion: abc"],
    ["objectName: s\nobjectType: secret\njsonPointer: /a~1b/c~0d\noptional: \"true\""],
    ["objectName: c\nobjectType: cert", "objectName: c\nobjectType: key\nobjectAlias: c"],
    ["objectName: s\nobjectType: secret\nobjectAlias: ../escape"],
    ["objectName: s\nobjectType: secret\nobjectEncoding: base64\nobjectFormat: pfx\nunknownField: 1"],
]:
    put("objects_yaml", "array:\n" + "".join("  - |\n" + "".join(f"    {l}\n" for l in i.splitlines()) for i in items))
put("objects_yaml", "array: &a [*a]\n")
put("objects_yaml", "a: &x [1,2]\nb: *x\narray:\n  - 'objectName: s\n\n    objectType: secret'\n")

# PFX bundles and certificates
for p in sorted(glob.glob(f"{root}/tests/fixtures/pfx/*.pfx.b64")):
    der = base64.b64decode(open(p).read())
    put("render_pkcs12", der)
for p in sorted(glob.glob(f"{root}/tests/fixtures/pfx/*-expected.pem")) + [f"{root}/tests/fixtures/tls/test-ca.pem"]:
    for c in x509.load_pem_x509_certificates(open(p, "rb").read()):
        der = c.public_bytes(serialization.Encoding.DER)
        put("render_cert", der)
        put("keyvault_json", json.dumps({"id": "https://kv.vault.azure.net/certificates/c/0123", "cer": base64.b64encode(der).decode(), "attributes": {"enabled": True, "created": 1700000000}}))

# JWKs (public halves, as Key Vault returns them)
jwks = []
k = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
jwks.append({"kid": "https://kv.vault.azure.net/keys/rsa/0123", "kty": "RSA", "n": b64u(intb(k.n)), "e": b64u(intb(k.e)), "key_ops": ["verify"]})
for crv, curve, size in [("P-256", ec.SECP256R1(), 32), ("P-384", ec.SECP384R1(), 48), ("P-521", ec.SECP521R1(), 66)]:
    n = ec.generate_private_key(curve).public_key().public_numbers()
    jwks.append({"kid": f"https://kv.vault.azure.net/keys/{crv}/0123", "kty": "EC-HSM" if crv == "P-384" else "EC", "crv": crv, "x": b64u(n.x.to_bytes(size, "big")), "y": b64u(n.y.to_bytes(size, "big"))})
for j in jwks:
    put("render_jwk", json.dumps(j))
    put("keyvault_json", json.dumps({"key": j, "attributes": {"enabled": True, "created": 1700000000}}))
put("render_jwk", '{"kty":"oct","k":"AAAA"}')

# secrets: flags byte, value NUL contentType NUL kid NUL jsonPointer
pem_bundle = open(f"{root}/tests/fixtures/pfx/rsa-expected.pem").read()
pfx_b64 = open(f"{root}/tests/fixtures/pfx/ec-aes.pfx.b64").read().strip()
kid = "https://kv.vault.azure.net/keys/tls/0123"
for flags, fields in [
    (0, ["s3cr3t", "", "", ""]),
    (1, ["48656c6c6f", "", "", ""]),
    (2, ["SGVs\nbG8=", "", "", ""]),
    (64, ['{"db":{"password":"p~w"}}', "application/json", "", "/db/password"]),
    (64 | 2, ['{"k":"aGk="}', "", "", "/k"]),
    (32 | 16 | 8, [pem_bundle, "application/x-pem-file", kid, ""]),
    (32 | 8, [pfx_b64, "application/x-pkcs12", kid, ""]),
    (32 | 4 | 2, [pfx_b64, "application/x-pkcs12", kid, ""]),
    (32, ["x", "text/plain", kid, ""]),
    (128, ["v", "", "", ""]),
]:
    put("render_secret", bytes([flags]) + "\0".join(fields).encode())
    if flags & 32:
        put("keyvault_json", json.dumps({"id": "https://kv.vault.azure.net/secrets/tls/0123", "value": fields[0], "contentType": fields[1], "kid": kid, "managed": True}))
put("keyvault_json", json.dumps({"id": "https://kv.vault.azure.net/secrets/s/0123", "value": "s3cr3t", "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000001}, "tags": {"a": "b"}}))
put("keyvault_json", json.dumps({"value": [
    {"id": "https://kv.vault.azure.net/secrets/s/a", "attributes": {"enabled": True, "created": 1700000000}},
    {"id": "https://kv.vault.azure.net/secrets/s/b", "attributes": {"enabled": False, "created": 1700000100}},
    {"kid": "https://kv.vault.azure.net/keys/k/c", "attributes": {"created": 1700000200}},
], "nextLink": None}))

# Azure Stack environment files
put("env_file", '{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.stack.local/adfs/","keyVaultEndpoint":"https://vault.stack.local/","keyVaultDNSSuffix":"vault.stack.local","resourceManagerEndpoint":"https://management.stack.local/"}')
put("env_file", '{"activeDirectoryEndpoint":"https://login.stack.local","keyVaultDNSSuffix":".vault.stack.local"}')
put("env_file", '{"activeDirectoryEndpoint":"http://x","keyVaultDNSSuffix":"v"}')

"""Runs KMIP steps against shedu with PyKMIP's ProxyKmipClient and prints one JSON result per step.

Usage: python pykmip_steps.py HOST PORT CERT KEY CA VERSION STEPS_JSON

VERSION is "1.2" (PyKMIP's default) or "2.0". STEPS_JSON is a list of [operation, args...]; an argument
"$N" is the result of step N. Each printed result is {"ok": value} or {"error": {"reason": name,
"message": text}}, or {"connect_error": text} when the TLS connection itself fails.
"""
import json
import sys

from kmip import enums
from kmip.core import exceptions as core_exceptions
from kmip.pie import client, exceptions, objects

host, port, cert, key, ca, version, steps = sys.argv[1:8]
kmip_version = {"1.2": enums.KMIPVersion.KMIP_1_2, "2.0": enums.KMIPVersion.KMIP_2_0}[version]
steps = json.loads(steps)


def plain(value):
    """JSON form of what PyKMIP returns."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "name") and hasattr(value, "value") and not callable(value.value):
        return value.name
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def attributes(result):
    uid, attrs = result
    out = {}
    for a in attrs:
        v = a.attribute_value
        if hasattr(v, "name_value"):  # a Name structure: its text
            v = v.name_value
        out[a.attribute_name.value] = plain(v.value if hasattr(v, "value") else v)
    return out


def run(c, op, args):
    if op == "create":
        masks = [getattr(enums.CryptographicUsageMask, m) for m in args[3]] if len(args) > 3 else None
        return c.create(getattr(enums.CryptographicAlgorithm, args[0]), args[1], name=args[2] if len(args) > 2 else None,
                        cryptographic_usage_mask=masks)
    if op == "create_key_pair":
        pub, priv = c.create_key_pair(getattr(enums.CryptographicAlgorithm, args[0]), args[1])
        return [pub, priv]
    if op == "register_symmetric":  # [hex, name, usage mask names?]
        masks = [getattr(enums.CryptographicUsageMask, m) for m in args[2]] if len(args) > 2 else None
        return c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, len(bytes.fromhex(args[0])) * 8, bytes.fromhex(args[0]), masks=masks, name=args[1]))
    if op == "register_secret":
        return c.register(objects.SecretData(bytes.fromhex(args[0]), enums.SecretDataType.PASSWORD, name=args[1]))
    if op == "register_opaque":
        return c.register(objects.OpaqueObject(bytes.fromhex(args[0]), enums.OpaqueDataType.NONE, name=args[1]))
    if op == "get":
        return c.get(args[0]).value
    if op == "get_wrapped":  # [uid, wrapping key uid, block cipher mode, encoding option] -> wrapped bytes
        return c.get(args[0], key_wrapping_specification={
            "wrapping_method": enums.WrappingMethod.ENCRYPT,
            "encryption_key_information": {
                "unique_identifier": args[1],
                "cryptographic_parameters": {"block_cipher_mode": getattr(enums.BlockCipherMode, args[2])}},
            "encoding_option": getattr(enums.EncodingOption, args[3])}).value
    if op == "aes_key_unwrap":  # [kek hex, wrapped hex, padded] -> the key, by pyca/cryptography (no server)
        from cryptography.hazmat.primitives import keywrap
        unwrap = keywrap.aes_key_unwrap_with_padding if args[2] else keywrap.aes_key_unwrap
        return unwrap(bytes.fromhex(args[0]), bytes.fromhex(args[1]))
    if op == "get_attributes":
        return attributes(c.get_attributes(args[0], args[1]))
    if op == "get_attribute_list":
        return sorted(c.get_attribute_list(args[0]))
    if op == "activate":
        return c.activate(args[0])
    if op == "revoke":
        return c.revoke(getattr(enums.RevocationReasonCode, args[0]), args[1])
    if op == "destroy":
        return c.destroy(args[0])
    if op == "locate":
        attrs = []
        if args and args[0]:
            from kmip.core.factories import attributes as factory
            attrs.append(factory.AttributeFactory().create_attribute(enums.AttributeType.NAME, args[0]))
        return c.locate(attributes=attrs)
    if op == "encrypt":
        data, iv = c.encrypt(bytes.fromhex(args[1]), uid=args[0], cryptographic_parameters=args[2])
        return [data, iv]
    if op == "decrypt":
        return c.decrypt(bytes.fromhex(args[1]), uid=args[0], cryptographic_parameters=args[2], iv_counter_nonce=bytes.fromhex(args[3]) if len(args) > 3 and args[3] else None)
    if op == "sign":
        return c.sign(bytes.fromhex(args[1]), uid=args[0], cryptographic_parameters=args[2])
    if op == "signature_verify":
        return c.signature_verify(bytes.fromhex(args[1]), bytes.fromhex(args[2]), uid=args[0], cryptographic_parameters=args[3])
    if op == "mac":
        uid, data = c.mac(bytes.fromhex(args[1]), uid=args[0], algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
        return data
    if op == "rekey":
        return c.rekey(uid=args[0], offset=args[1] if len(args) > 1 else None)
    if op == "modify_name":  # KMIP 1.x: [uid, new name, index] -> [uid, name, index, value]
        from kmip.core.factories import attributes as factory
        a = factory.AttributeFactory().create_attribute(enums.AttributeType.NAME, args[1], index=args[2])
        uid, attr = c.modify_attribute(unique_identifier=args[0], attribute=a)
        return [uid, attr.attribute_name.value, attr.attribute_index.value, attr.attribute_value.name_value.value]
    if op == "delete_attribute":  # KMIP 1.x: [uid, name, index] -> [uid, name, index]
        uid, attr = c.delete_attribute(unique_identifier=args[0], attribute_name=args[1], attribute_index=args[2])
        return [uid, attr.attribute_name.value, attr.attribute_index.value]
    if op == "set_attribute":  # KMIP 2.0: [uid, name, value]
        return c.set_attribute(unique_identifier=args[0], attribute_name=args[1], attribute_value=args[2])
    raise ValueError("unknown step " + op)


def resolve(value, results):
    if isinstance(value, str) and value.startswith("$"):
        ref = value[1:]
        index, _, part = ref.partition(".")
        got = results[int(index)]["ok"]
        return got[int(part)] if part else got
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    return value


def params(value):
    """Cryptographic parameters: enum names to enums."""
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        enum = {"block_cipher_mode": enums.BlockCipherMode, "padding_method": enums.PaddingMethod,
                "hashing_algorithm": enums.HashingAlgorithm, "cryptographic_algorithm": enums.CryptographicAlgorithm,
                "digital_signature_algorithm": enums.DigitalSignatureAlgorithm}.get(k)
        out[k] = getattr(enum, v) if enum and isinstance(v, str) else v
    return out


results = []
try:
    c = client.ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                               config_file="/dev/null", kmip_version=kmip_version)
    c.open()
except Exception as e:  # the handshake or the connection failed
    print(json.dumps({"connect_error": repr(e)}))
    sys.exit(0)
for step in steps:
    op, args = step[0], [params(resolve(a, results)) for a in step[1:]]
    try:
        results.append({"ok": plain(run(c, op, args))})
    except exceptions.KmipOperationFailure as e:
        results.append({"error": {"reason": e.reason.name if e.reason else None, "message": e.message}})
    except core_exceptions.OperationFailure as e:  # what send_request_payload raises (attribute changes)
        results.append({"error": {"reason": e.reason.name if e.reason else None, "message": str(e)}})
    except Exception as e:  # a connection dropped mid-way, a decode failure: the test shows it
        results.append({"error": {"reason": "CLIENT_" + type(e).__name__, "message": repr(e)}})
    print(json.dumps(results[-1]), flush=True)
c.close()

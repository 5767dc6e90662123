/*
 * test_net_tls.h — for tests of the node link's TLS: a throw-away self-signed P-256
 * certificate (CA:TRUE, names localhost and 127.0.0.1) written as PEM files.
 */
#ifndef IG_TEST_NET_TLS_H
#define IG_TEST_NET_TLS_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>

static inline bool test_net_make_cert(const char *cert_path, const char *key_path)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    if (!pkey)
        return false;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    bool ok = X509_sign(x, pkey, EVP_sha256()) > 0;
    FILE *f = fopen(cert_path, "w");
    ok = ok && f && PEM_write_X509(f, x);
    if (f)
        fclose(f);
    f = fopen(key_path, "w");
    ok = ok && f && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ok;
}

#endif /* IG_TEST_NET_TLS_H */

/*
 * tls.c — OpenSSL contexts for the node link's optional TLS (TLS 1.2 or newer).
 */
#include "net.h"

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static void ssl_reason(char *out, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, cap);
    else
        snprintf(out, cap, "unknown error");
    ERR_clear_error();
}

SSL_CTX *ig_net_tls_server_ctx(const char *cert_file, const char *key_file, ig_err *err)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ig_err_set(err, IG_ERR_NOMEM, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        ssl_reason(why, sizeof why);
        ig_err_set(err, IG_ERR_IO, "TLS certificate %s: %s", cert_file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(why, sizeof why);
        ig_err_set(err, IG_ERR_IO, "TLS key %s: %s", key_file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *ig_net_tls_client_ctx(const char *ca_file, bool verify, ig_err *err)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ig_err_set(err, IG_ERR_NOMEM, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (verify) {
        int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            ssl_reason(why, sizeof why);
            ig_err_set(err, IG_ERR_IO, "TLS trust store %s: %s", ca_file ? ca_file : "(system)",
                       why);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

void ig_net_tls_free(SSL_CTX *ctx) { SSL_CTX_free(ctx); }

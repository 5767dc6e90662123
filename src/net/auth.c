/*
 * auth.c — node identity: ed25519 key pairs (libsodium), their key file, hex, and the
 * challenge/response signature over IG_NET_AUTH_CONTEXT || nonce || node_key.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ig_code ig_net_crypto_init(ig_err *err)
{
    if (sodium_init() < 0)
        return ig_err_set(err, IG_ERR_INTERNAL, "libsodium failed to initialise");
    return IG_OK;
}

void ig_net_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ig_net_hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

ig_code ig_net_keypair_generate(ig_net_keypair *kp, ig_err *err)
{
    if (ig_net_crypto_init(err))
        return IG_ERR_INTERNAL;
    crypto_sign_keypair(kp->pk, kp->sk);
    return IG_OK;
}

ig_code ig_net_keypair_save(const ig_net_keypair *kp, const char *path, ig_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ig_err_set(err, IG_ERR_INVALID, "key path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ig_err_set(err, IG_ERR_IO, "creating %s: %s", tmp, strerror(errno));
    uint8_t seed[crypto_sign_SEEDBYTES];
    crypto_sign_ed25519_sk_to_seed(seed, kp->sk);
    char line[2 * crypto_sign_SEEDBYTES + 2];
    ig_net_hex_encode(seed, sizeof seed, line);
    sodium_memzero(seed, sizeof seed);
    line[2 * crypto_sign_SEEDBYTES] = '\n';
    ssize_t w = write(fd, line, sizeof line - 1);
    sodium_memzero(line, sizeof line);
    /* The umask might have widened nothing, but be explicit: owner read/write only. */
    if (w != (ssize_t)(sizeof line - 1) || fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return ig_err_set(err, IG_ERR_IO, "writing %s: %s", tmp, strerror(e ? e : EIO));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ig_err_set(err, IG_ERR_IO, "renaming %s to %s: %s", tmp, path, strerror(e));
    }
    return IG_OK;
}

ig_code ig_net_keypair_load(const char *path, ig_net_keypair *kp, ig_err *err)
{
    if (ig_net_crypto_init(err))
        return IG_ERR_INTERNAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ig_err_set(err, errno == ENOENT ? IG_ERR_NOT_FOUND : IG_ERR_IO, "opening %s: %s",
                          path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ig_err_set(err, IG_ERR_IO, "stat %s: %s", path, strerror(e));
    }
    if (st.st_mode & 077) {
        close(fd);
        return ig_err_set(err, IG_ERR_AUTH,
                          "key file %s is accessible by group or others (mode %04o); "
                          "it must be 0600",
                          path, (unsigned)(st.st_mode & 07777));
    }
    char buf[2 * crypto_sign_SEEDBYTES + 8];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return ig_err_set(err, IG_ERR_IO, "reading %s: %s", path, strerror(errno));
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    uint8_t seed[crypto_sign_SEEDBYTES];
    if (!ig_net_hex_decode(buf, seed, sizeof seed)) {
        sodium_memzero(buf, sizeof buf);
        return ig_err_set(err, IG_ERR_FORMAT, "key file %s: expected %d hex digits", path,
                          2 * crypto_sign_SEEDBYTES);
    }
    sodium_memzero(buf, sizeof buf);
    crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
    sodium_memzero(seed, sizeof seed);
    return IG_OK;
}

ig_code ig_net_keypair_load_or_create(const char *dir, ig_net_keypair *kp, bool *created,
                                      ig_err *err)
{
    *created = false;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/node.key", dir) >= (int)sizeof path)
        return ig_err_set(err, IG_ERR_INVALID, "data directory path too long: %s", dir);
    ig_code rc = ig_net_keypair_load(path, kp, err);
    if (rc != IG_ERR_NOT_FOUND)
        return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ig_err_set(err, IG_ERR_IO, "creating %s: %s", dir, strerror(errno));
    if ((rc = ig_net_keypair_generate(kp, err)))
        return rc;
    if ((rc = ig_net_keypair_save(kp, path, err)))
        return rc;
    *created = true;
    return IG_OK;
}

void ig_net_random_nonce(uint8_t nonce[IG_NET_NONCE_BYTES])
{
    if (sodium_init() < 0)
        abort();
    randombytes_buf(nonce, IG_NET_NONCE_BYTES);
}

#define AUTH_CONTEXT_LEN (sizeof IG_NET_AUTH_CONTEXT - 1)
#define AUTH_MSG_LEN (AUTH_CONTEXT_LEN + IG_NET_NONCE_BYTES + IG_NET_KEY_BYTES)

static void auth_message(const uint8_t nonce[IG_NET_NONCE_BYTES],
                         const uint8_t key[IG_NET_KEY_BYTES], uint8_t out[AUTH_MSG_LEN])
{
    memcpy(out, IG_NET_AUTH_CONTEXT, AUTH_CONTEXT_LEN);
    memcpy(out + AUTH_CONTEXT_LEN, nonce, IG_NET_NONCE_BYTES);
    memcpy(out + AUTH_CONTEXT_LEN + IG_NET_NONCE_BYTES, key, IG_NET_KEY_BYTES);
}

void ig_net_auth_sign(const ig_net_keypair *kp, const uint8_t nonce[IG_NET_NONCE_BYTES],
                      uint8_t sig[IG_NET_SIG_BYTES])
{
    uint8_t m[AUTH_MSG_LEN];
    auth_message(nonce, kp->pk, m);
    crypto_sign_detached(sig, NULL, m, sizeof m, kp->sk);
}

bool ig_net_auth_verify(const uint8_t node_key[IG_NET_KEY_BYTES],
                        const uint8_t nonce[IG_NET_NONCE_BYTES],
                        const uint8_t sig[IG_NET_SIG_BYTES])
{
    if (sodium_init() < 0)
        return false;
    uint8_t m[AUTH_MSG_LEN];
    auth_message(nonce, node_key, m);
    return crypto_sign_verify_detached(sig, m, sizeof m, node_key) == 0;
}

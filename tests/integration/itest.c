/* itest.c: raw wire client, OpenSSL verification and the service check
 * shared by the integration drivers (see itest.h). */
#include "itest.h"

#include <ctype.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

void it_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	ERR_print_errors_fp(stderr);
	exit(1);
}

void it_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* ---- raw socket ---- */

int it_raw_connect(const char *sock)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path))
		it_fail("socket path too long: %s", sock);
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		it_fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		it_fail("connect %s: %s", sock, strerror(errno));
	return fd;
}

bool it_raw_send(int fd, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, (const uint8_t *)buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return false;
		if (n <= 0)
			it_fail("send: %s", strerror(errno));
		off += (size_t)n;
	}
	return true;
}

bool it_raw_send_frame(int fd, const void *payload, size_t len)
{
	uint8_t hdr[PROTO_HDR_LEN];

	proto_frame_hdr(len, hdr);
	return it_raw_send(fd, hdr, sizeof(hdr)) && it_raw_send(fd, payload, len);
}

/* Reads exactly len bytes: 1 done, 0 closed before the first byte, fails
 * the test on a timeout or a close in the middle when mid_ok is false. */
static int it_read_exact(int fd, uint8_t *buf, size_t len, bool *closed_mid)
{
	size_t off = 0;

	while (off < len) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;
		int pr = poll(&pfd, 1, IT_WAIT_MS);

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			it_fail("no data from keyholdd within %d s (it neither answered nor closed)", IT_WAIT_MS / 1000);
		n = recv(fd, buf + off, len - off, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			if (off > 0)
				*closed_mid = true;
			return 0;
		}
		if (n < 0)
			it_fail("recv: %s", strerror(errno));
		off += (size_t)n;
	}
	return 1;
}

bool it_raw_recv(int fd, struct kh_test_resp *out)
{
	uint8_t hdr[PROTO_HDR_LEN], *buf;
	size_t len = 0;
	bool mid = false;

	if (it_read_exact(fd, hdr, sizeof(hdr), &mid) == 0) {
		if (mid)
			it_fail("keyholdd closed in the middle of a frame header");
		return false;
	}
	if (proto_frame_len(hdr, PROTO_FRAME_MAX_LIMIT, &len) != KH_OK)
		it_fail("keyholdd sent a bad frame length");
	buf = malloc(len);
	if (buf == NULL)
		it_fail("out of memory");
	if (it_read_exact(fd, buf, len, &mid) == 0)
		it_fail("keyholdd closed in the middle of a frame");
	if (!kh_test_resp_decode(buf, len, out))
		it_fail("keyholdd sent an undecodable response");
	free(buf);
	return true;
}

void it_expect_closed(int fd, const char *what)
{
	struct kh_test_resp r;

	if (it_raw_recv(fd, &r)) {
		it_log("%s: unexpected answer id %llu %s: %s", what, (unsigned long long)r.id, kh_err_name(r.status.code),
		       r.status.msg);
		kh_test_resp_clear(&r);
		it_fail("%s: keyholdd answered instead of closing the connection", what);
	}
	it_log("ok: %s: connection closed", what);
}

uint8_t *it_frame(uint64_t id, enum proto_method m, const ProtobufCMessage *body, size_t *len)
{
	uint8_t *f = kh_test_req_frame(id, 0, m, body, len);

	if (f == NULL)
		it_fail("cannot encode a %s request", proto_method_name(m) != NULL ? proto_method_name(m) : "?");
	return f;
}

Keyhold__V1__SignResponse *it_sign_response(const struct kh_test_resp *r, const char *what)
{
	Keyhold__V1__SignResponse *s = keyhold__v1__sign_response__unpack(NULL, r->body_len, r->body);

	if (s == NULL)
		it_fail("%s: undecodable Sign answer", what);
	return s;
}

void it_raw_call(int fd, uint64_t id, enum proto_method m, const ProtobufCMessage *body, enum kh_err want,
		 struct kh_test_resp *out, const char *what)
{
	uint8_t *frame = NULL;
	size_t len = 0;

	frame = kh_test_req_frame(id, 0, m, body, &len);
	if (frame == NULL)
		it_fail("%s: cannot encode", what);
	if (!it_raw_send(fd, frame, len))
		it_fail("%s: keyholdd closed the connection", what);
	free(frame);
	if (!it_raw_recv(fd, out))
		it_fail("%s: keyholdd closed the connection instead of answering", what);
	if (out->id != id)
		it_fail("%s: answer id %llu, expected %llu", what, (unsigned long long)out->id, (unsigned long long)id);
	if (out->status.code != want)
		it_fail("%s: %s (%s), expected %s", what, kh_err_name(out->status.code), out->status.msg,
			kh_err_name(want));
	if (want != KH_OK && out->status.msg[0] == '\0')
		it_fail("%s: error without a message", what);
	it_log("ok: %s: %s%s%s", what, kh_err_name(want), want != KH_OK ? ": " : "", out->status.msg);
}

/* ---- keys and signatures ---- */

EVP_PKEY *it_public_key(const char *sock, const char *key, enum kh_key_type *type)
{
	kh_client *c = NULL;
	kh_msg *q = NULL, *a = NULL, *ki = NULL;
	const uint8_t *spki, *p;
	size_t spki_len, i;
	char tn[16];
	const char *t;
	EVP_PKEY *pk;

	if (kh_client_connect_unix(sock, &c) != KH_OK)
		it_fail("connect to %s failed", sock);
	if (kh_request_new("GetPublicKey", &q) != KH_OK || kh_msg_set_str(q, "name", key) != KH_OK)
		it_fail("GetPublicKey request: %s", kh_msg_error_message(q));
	if (kh_call(c, q, &a) != KH_OK)
		it_fail("GetPublicKey %s: %s: %s", key, kh_err_name(kh_client_error_code(c)), kh_client_error_message(c));
	if (kh_msg_item(a, "key", 0, &ki) != KH_OK || kh_msg_get_bytes(ki, "spki", &spki, &spki_len) != KH_OK)
		it_fail("GetPublicKey %s: no key in the answer", key);
	p = spki;
	pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
	if (pk == NULL || p != spki + spki_len)
		it_fail("the SPKI of %s does not parse", key);
	if (type != NULL) {
		t = kh_msg_get_enum(ki, "type");
		for (i = 0; t[i] != '\0' && i + 1 < sizeof(tn); i++)
			tn[i] = (char)tolower((unsigned char)t[i]);
		tn[i] = '\0';
		*type = kh_key_type_from_name(tn);
	}
	kh_msg_free(a);
	kh_msg_free(q);
	kh_client_free(c);
	return pk;
}

const char *it_digest_arg(enum kh_digest d)
{
	return d == KH_DIGEST_DEFAULT ? NULL : kh_digest_name(d);
}

const char *it_padding_arg(enum kh_padding p)
{
	return p == KH_PAD_PSS ? "PSS" : p == KH_PAD_PKCS1 ? "PKCS1" : NULL;
}

static const EVP_MD *it_md(enum kh_digest d)
{
	switch (d) {
	case KH_DIGEST_DEFAULT:
	case KH_DIGEST_SHA256: return EVP_sha256();
	case KH_DIGEST_SHA384: return EVP_sha384();
	case KH_DIGEST_SHA512: return EVP_sha512();
	default: it_fail("digest %d not used by these tests", (int)d);
	}
}

size_t it_digest(enum kh_digest d, const uint8_t *msg, size_t len, uint8_t out[64])
{
	unsigned n = 0;

	if (EVP_Digest(msg, len, out, &n, it_md(d), NULL) != 1)
		it_fail("EVP_Digest");
	return n;
}

bool it_verify(EVP_PKEY *pk, enum kh_digest d, enum kh_padding pad, const uint8_t *msg, size_t len,
	       const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool eddsa = EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519;
	int ok;

	if (ctx == NULL)
		it_fail("out of memory");
	if (EVP_DigestVerifyInit(ctx, &pctx, eddsa ? NULL : it_md(d), NULL, pk) != 1)
		it_fail("EVP_DigestVerifyInit");
	if (pad == KH_PAD_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		it_fail("PSS parameters");
	ok = EVP_DigestVerify(ctx, sig, sig_len, msg, len);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok == 1;
}

void it_check_service(const char *sock, const char *key, EVP_PKEY *pk, const char *after)
{
	kh_client *c = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	uint8_t msg[48];

	if (kh_client_connect_unix(sock, &c) != KH_OK)
		it_fail("after %s: a new client cannot connect", after);
	if (RAND_bytes(msg, sizeof(msg)) != 1)
		it_fail("RAND_bytes");
	if (kh_sign(c, key, NULL, NULL, false, msg, sizeof(msg), &sig, &sig_len) != KH_OK)
		it_fail("after %s: a well-behaved client cannot sign: %s: %s", after,
			kh_err_name(kh_client_error_code(c)), kh_client_error_message(c));
	if (!it_verify(pk, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, msg, sizeof(msg), sig, sig_len))
		it_fail("after %s: the signature does not verify", after);
	msg[0] ^= 1; /* and the check is not vacuous */
	if (it_verify(pk, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, msg, sizeof(msg), sig, sig_len))
		it_fail("after %s: the signature verifies over another message", after);
	kh_free(sig);
	kh_client_free(c);
}

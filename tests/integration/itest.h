/* itest.h: helpers for the C drivers of the integration scripts: a raw
 * Unix-socket client that speaks (or abuses) the wire protocol, signature
 * verification with OpenSSL, and the "does keyholdd still serve a
 * well-behaved client" check run after every abuse. */
#ifndef ITEST_H
#define ITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keyhold/keyhold.h"
#include "keyhold.pb-c.h"
#include "kh_test_wire.h"
#include "kh_types.h"
#include "proto.h"

/* A safety net so that a broken server fails the test instead of hanging
 * it; never an assertion about speed. */
#define IT_WAIT_MS 60000

void it_fail(const char *fmt, ...) KH_PRINTF(1, 2) __attribute__((noreturn));
void it_log(const char *fmt, ...) KH_PRINTF(1, 2);

/* ---- raw socket ---- */

int it_raw_connect(const char *sock);
/* Writes all of buf; returns false if the peer has closed (EPIPE/ECONNRESET). */
bool it_raw_send(int fd, const void *buf, size_t len);
/* A whole frame for payload (header added). */
bool it_raw_send_frame(int fd, const void *payload, size_t len);
/* Reads one response frame. Returns true with *out filled (free with
 * kh_test_resp_clear), false when the peer closed the connection; fails
 * the test on a timeout or a frame the client cannot decode. */
bool it_raw_recv(int fd, struct kh_test_resp *out);
/* Expects the peer to close without sending anything more. */
void it_expect_closed(int fd, const char *what);
/* A whole request frame for method m with body (a generated message of
 * m's request type; NULL: empty); malloc'd; fails the test when it cannot
 * be built. */
uint8_t *it_frame(uint64_t id, enum proto_method m, const ProtobufCMessage *body, size_t *len);
/* Sends one request (it_frame) and expects the answer with the same id
 * and code want; returns the answer (caller clears). */
void it_raw_call(int fd, uint64_t id, enum proto_method m, const ProtobufCMessage *body, enum kh_err want,
		 struct kh_test_resp *out, const char *what);
/* The SignResponse in an OK answer's body (free with
 * keyhold__v1__sign_response__free_unpacked); fails the test, naming
 * what, when it does not decode. */
Keyhold__V1__SignResponse *it_sign_response(const struct kh_test_resp *r, const char *what);

/* ---- keys and signatures ---- */

/* The SubjectPublicKeyInfo of key through libkeyhold's GetPublicKey. */
EVP_PKEY *it_public_key(const char *sock, const char *key, enum kh_key_type *type);
/* Digest of msg with d (DEFAULT: SHA-256) into out; returns its length. */
/* The digest and padding names the typed calls take (NULL: default). */
const char *it_digest_arg(enum kh_digest d);
const char *it_padding_arg(enum kh_padding p);
size_t it_digest(enum kh_digest d, const uint8_t *msg, size_t len, uint8_t out[64]);
/* True when sig is a valid signature over msg by pk, as keyhold's Sign
 * defines it (DER ECDSA, PKCS#1 v1.5 or PSS with salt = digest length,
 * PureEdDSA). */
bool it_verify(EVP_PKEY *pk, enum kh_digest d, enum kh_padding pad, const uint8_t *msg, size_t len,
	       const uint8_t *sig, size_t sig_len);
/* Connects a fresh client, signs a fresh message with key, and checks the
 * signature verifies (and not over another message): the service is
 * still serving. */
void it_check_service(const char *sock, const char *key, EVP_PKEY *pk, const char *after);

#endif

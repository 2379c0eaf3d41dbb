/* kh_burst.c: 64-request pipelined bursts on ONE connection through
 * libkeyhold (kh_sign_send x64, then kh_sign_recv until all are answered):
 * 64 answers, ids distinct and matching their requests, every signature
 * verified with EVP_DigestVerify against the key's SPKI. One burst per
 * key, then a mixed burst (RSA and EC keys, digests, PSS, prehashed, and a
 * few requests that must fail) where every answer is checked against the
 * request its id names.
 *   kh_burst SOCKET KEY...     (RSA, EC or Ed25519 keys that exist;
 *                               KH_NO_PSS=1 when the token lacks PSS) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "itest.h"

#define BURST 64

struct key {
	const char *name;
	enum kh_key_type type;
	EVP_PKEY *pk;
};

/* One Sign request's arguments. */
struct sign_args {
	const char *key;
	enum kh_digest digest;
	enum kh_padding padding;
	bool prehashed;
	uint8_t *data;
	size_t len;
};

struct req {
	uint64_t id;
	const struct key *k;       /* NULL: a key that does not exist */
	struct sign_args q;
	uint8_t msg[80];
	size_t msg_len;
	enum kh_err want;
	bool answered;
};

static bool is_rsa(enum kh_key_type t)
{
	return t == KH_KEY_RSA2048 || t == KH_KEY_RSA3072 || t == KH_KEY_RSA4096;
}

static void make_req(struct req *r, const struct key *k, unsigned i, enum kh_digest d, enum kh_padding pad,
		     bool prehashed, enum kh_err want)
{
	const char *name = k != NULL ? k->name : "no-such-key";
	uint8_t dg[64];

	memset(r, 0, sizeof(*r));
	r->k = k;
	r->want = want;
	r->msg_len = 16 + i % 64;
	if (RAND_bytes(r->msg, (int)r->msg_len) != 1)
		it_fail("RAND_bytes");
	snprintf((char *)r->msg, 16, "req%04u", i % 10000); /* distinct even if RAND repeats */
	r->q.key = name;
	r->q.digest = d;
	r->q.padding = pad;
	r->q.prehashed = prehashed;
	if (prehashed) {
		size_t n = it_digest(d, r->msg, r->msg_len, dg);

		r->q.data = malloc(n);
		if (r->q.data == NULL)
			it_fail("out of memory");
		memcpy(r->q.data, dg, n);
		r->q.len = n;
	} else {
		r->q.data = r->msg;
		r->q.len = r->msg_len;
	}
}

static void free_req(struct req *r)
{
	if (r->q.prehashed)
		free(r->q.data);
}

/* Sends every request on c, then takes answers until all are in; checks
 * each against the request its id names. */
static void run_burst(kh_client *c, struct req *reqs, size_t n, const char *what)
{
	size_t i, got = 0, out_of_order = 0, ok = 0;
	uint64_t last = 0;

	for (i = 0; i < n; i++) {
		const struct sign_args *q = &reqs[i].q;

		if (kh_sign_send(c, q->key, it_digest_arg(q->digest), it_padding_arg(q->padding), q->prehashed, q->data,
				 q->len, &reqs[i].id) != KH_OK)
			it_fail("%s: send %zu: %s", what, i, kh_client_error_message(c));
		for (size_t j = 0; j < i; j++)
			if (reqs[j].id == reqs[i].id)
				it_fail("%s: libkeyhold gave two requests id %llu", what, (unsigned long long)reqs[i].id);
	}
	if (kh_client_pending(c) != n)
		it_fail("%s: %u pending after %zu sends", what, kh_client_pending(c), n);
	while (got < n) {
		enum kh_err st = KH_OK;
		uint8_t sig[1024];
		size_t sig_len = 0;
		uint64_t id = 0;
		struct req *r = NULL;

		if (kh_sign_recv(c, &id, &st, sig, sizeof(sig), &sig_len) != KH_OK)
			it_fail("%s: after %zu answers: %s: %s", what, got, kh_err_name(kh_client_error_code(c)),
				kh_client_error_message(c));
		for (i = 0; i < n; i++)
			if (reqs[i].id == id)
				r = &reqs[i];
		if (r == NULL)
			it_fail("%s: answer with id %llu that no request had", what, (unsigned long long)id);
		if (r->answered)
			it_fail("%s: id %llu answered twice", what, (unsigned long long)id);
		r->answered = true;
		got++;
		if (id < last)
			out_of_order++;
		last = id;
		if (st != r->want)
			it_fail("%s: id %llu (%s): %s (%s), expected %s", what, (unsigned long long)id, r->q.key,
				kh_err_name(st), kh_client_error_message(c), kh_err_name(r->want));
		if (st == KH_OK) {
			const struct key *k = r->k;

			if (!it_verify(k->pk, r->q.digest, r->q.padding, r->msg, r->msg_len, sig, sig_len))
				it_fail("%s: id %llu: the signature by %s does not verify over its request's message", what,
					(unsigned long long)id, k->name);
			/* Matched to the right request: not over a neighbour's message. */
			{
				const struct req *other = &reqs[(size_t)(r - reqs + 1) % n];

				if (it_verify(k->pk, r->q.digest, r->q.padding, other->msg, other->msg_len, sig,
					      sig_len))
					it_fail("%s: id %llu: signature also verifies over another request's message",
						what, (unsigned long long)id);
			}
			ok++;
		}
	}
	if (kh_client_pending(c) != 0)
		it_fail("%s: %u requests still pending", what, kh_client_pending(c));
	it_log("ok: %s: %zu answers (%zu signatures verified), ids distinct and matched; %zu arrived out of order",
	       what, got, ok, out_of_order);
}

int main(int argc, char **argv)
{
	struct key keys[8];
	struct req *reqs;
	kh_client *c = NULL;
	size_t nk, i, k;
	char what[96];
	bool have_rsa = false, have_ec = false;
	/* Tokens without CKM_RSA_PKCS_PSS (the script asks GetCapabilities). */
	bool pss = getenv("KH_NO_PSS") == NULL;

	if (argc < 3 || argc - 2 > 8) {
		fprintf(stderr, "usage: kh_burst SOCKET KEY...\n");
		return 2;
	}
	nk = (size_t)argc - 2;
	for (k = 0; k < nk; k++) {
		keys[k].name = argv[k + 2];
		keys[k].pk = it_public_key(argv[1], keys[k].name, &keys[k].type);
		have_rsa |= is_rsa(keys[k].type);
		have_ec |= keys[k].type == KH_KEY_P256 || keys[k].type == KH_KEY_P384 || keys[k].type == KH_KEY_P521;
	}
	reqs = calloc(BURST, sizeof(*reqs));
	if (reqs == NULL)
		it_fail("out of memory");
	if (kh_client_connect_unix(argv[1], &c) != KH_OK)
		it_fail("connect to %s failed", argv[1]);

	/* One burst per key, all on the same connection. */
	for (k = 0; k < nk; k++) {
		bool ed = keys[k].type == KH_KEY_ED25519;

		for (i = 0; i < BURST; i++)
			make_req(&reqs[i], &keys[k], (unsigned)i, ed ? KH_DIGEST_DEFAULT : KH_DIGEST_SHA256, KH_PAD_DEFAULT,
				 false, KH_OK);
		snprintf(what, sizeof(what), "%d-request burst on %s", BURST, keys[k].name);
		run_burst(c, reqs, BURST, what);
		for (i = 0; i < BURST; i++)
			free_req(&reqs[i]);
	}

	/* The mixed burst: every key, three digests, PSS for RSA, prehashed
	 * inputs, and requests that must fail in between. */
	for (i = 0; i < BURST; i++) {
		const struct key *kk = &keys[i % nk];
		static const enum kh_digest ds[] = { KH_DIGEST_SHA256, KH_DIGEST_SHA384, KH_DIGEST_SHA512 };
		enum kh_digest d = ds[(i / nk) % 3];
		bool ed = kk->type == KH_KEY_ED25519;

		if (i % 16 == 7) {
			make_req(&reqs[i], NULL, (unsigned)i, d, KH_PAD_DEFAULT, false, KH_E_NOT_FOUND);
		} else if (i % 16 == 11 && !is_rsa(kk->type) && !ed) {
			make_req(&reqs[i], kk, (unsigned)i, d, KH_PAD_PSS, false, KH_E_INVALID_ARGUMENT);
		} else if (ed) {
			make_req(&reqs[i], kk, (unsigned)i, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, false, KH_OK);
		} else {
			enum kh_padding pad = pss && is_rsa(kk->type) && i % 3 == 0 ? KH_PAD_PSS : KH_PAD_DEFAULT;

			make_req(&reqs[i], kk, (unsigned)i, d, pad, i % 4 == 1, KH_OK);
		}
	}
	snprintf(what, sizeof(what), "mixed %d-request burst over %zu keys%s%s", BURST, nk,
		 have_rsa ? " (RSA" : " (", have_ec ? " EC)" : ")");
	run_burst(c, reqs, BURST, what);
	for (i = 0; i < BURST; i++)
		free_req(&reqs[i]);

	/* The connection is still good for a plain call afterwards. */
	{
		kh_msg *q = NULL, *st = NULL;

		if (kh_request_new("GetStatus", &q) != KH_OK)
			it_fail("out of memory");
		if (kh_call(c, q, &st) != KH_OK)
			it_fail("GetStatus after the bursts: %s", kh_client_error_message(c));
		kh_msg_free(st);
		kh_msg_free(q);
	}
	kh_client_free(c);
	for (k = 0; k < nk; k++)
		EVP_PKEY_free(keys[k].pk);
	free(reqs);
	it_log("kh_burst: all checks passed");
	return 0;
}

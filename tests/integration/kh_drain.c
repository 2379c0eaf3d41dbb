/* kh_drain.c: graceful SIGTERM under load. 64 Sign requests go out in one
 * write (so keyholdd reads and accepts all of them in one go); after the
 * first answer keyholdd gets SIGTERM; 16 more requests follow. Every
 * accepted request must be answered (OK with a verifiable signature, or
 * UNAVAILABLE), the answered ids must be a prefix of what was sent (the
 * server reads in order), and then the connection closes. The script
 * checks the exit status and that the socket file is gone.
 *   kh_drain SOCKET KEY KEYHOLDD_PID */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "itest.h"

#define FIRST 64
#define SECOND 16
#define SECOND_BASE 1001

struct sent {
	uint8_t msg[48];
	bool answered;
};

static struct sent first[FIRST], second[SECOND];

/* Appends a Sign request for id over s->msg to buf. */
static size_t add_sign(uint8_t *buf, size_t cap, uint64_t id, const char *key, struct sent *s)
{
	Keyhold__V1__SignRequest b;
	uint8_t *f = NULL;
	size_t len = 0;

	if (RAND_bytes(s->msg, sizeof(s->msg)) != 1)
		it_fail("RAND_bytes");
	keyhold__v1__sign_request__init(&b);
	b.key = (char *)(uintptr_t)key;
	b.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
	b.message.data = s->msg;
	b.message.len = sizeof(s->msg);
	f = kh_test_req_frame(id, 0, PROTO_M_SIGN, &b.base, &len);
	if (f == NULL || len > cap)
		it_fail("encode");
	memcpy(buf, f, len);
	free(f);
	return len;
}

/* Checks one answer; returns true when it was OK. */
static bool take(const struct kh_test_resp *r, EVP_PKEY *pk, unsigned *unavailable)
{
	struct sent *s;
	Keyhold__V1__SignResponse *b;

	if (r->id >= 1 && r->id <= FIRST)
		s = &first[r->id - 1];
	else if (r->id >= SECOND_BASE && r->id < SECOND_BASE + SECOND)
		s = &second[r->id - SECOND_BASE];
	else
		it_fail("answer with id %llu that no request had", (unsigned long long)r->id);
	if (s->answered)
		it_fail("id %llu answered twice", (unsigned long long)r->id);
	s->answered = true;
	if (r->status.code == KH_E_UNAVAILABLE) {
		(*unavailable)++;
		return false;
	}
	if (r->status.code != KH_OK)
		it_fail("id %llu: %s (%s), expected OK or UNAVAILABLE", (unsigned long long)r->id,
			kh_err_name(r->status.code), r->status.msg);
	b = keyhold__v1__sign_response__unpack(NULL, r->body_len, r->body);
	if (b == NULL)
		it_fail("id %llu: undecodable answer: malformed SignResponse", (unsigned long long)r->id);
	if (!it_verify(pk, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, s->msg, sizeof(s->msg), b->signature.data,
		       b->signature.len))
		it_fail("id %llu: the signature does not verify", (unsigned long long)r->id);
	keyhold__v1__sign_response__free_unpacked(b, NULL);
	return true;
}

int main(int argc, char **argv)
{
	static uint8_t buf[FIRST * 256];
	struct kh_test_resp r;
	EVP_PKEY *pk;
	size_t off = 0, i;
	unsigned ok = 0, unavailable = 0, after = 0, second_answered = 0;
	bool gap = false;
	pid_t pid;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: kh_drain SOCKET KEY KEYHOLDD_PID\n");
		return 2;
	}
	pid = (pid_t)strtol(argv[3], NULL, 10);
	if (pid <= 1)
		it_fail("bad pid %s", argv[3]);
	pk = it_public_key(argv[1], argv[2], NULL);
	fd = it_raw_connect(argv[1]);

	for (i = 0; i < FIRST; i++)
		off += add_sign(buf + off, sizeof(buf) - off, i + 1, argv[2], &first[i]);
	if (!it_raw_send(fd, buf, off))
		it_fail("keyholdd closed before the burst was written");
	if (!it_raw_recv(fd, &r))
		it_fail("closed before the first answer");
	ok += take(&r, pk, &unavailable);
	kh_test_resp_clear(&r);

	/* Mid-burst: the first answer is in, the rest are being worked on. */
	if (kill(pid, SIGTERM) != 0)
		it_fail("kill %d: cannot signal keyholdd", (int)pid);
	it_log("SIGTERM sent after the first answer (id %llu)", (unsigned long long)r.id);

	/* Requests after the signal: keyholdd may have stopped reading. */
	off = 0;
	for (i = 0; i < SECOND; i++)
		off += add_sign(buf + off, sizeof(buf) - off, SECOND_BASE + i, argv[2], &second[i]);
	if (!it_raw_send(fd, buf, off))
		it_log("the second batch could not be written: keyholdd already closed the connection");

	while (it_raw_recv(fd, &r)) {
		ok += take(&r, pk, &unavailable);
		after++;
		kh_test_resp_clear(&r);
	}
	close(fd);

	for (i = 0; i < FIRST; i++)
		if (!first[i].answered)
			it_fail("request %zu of the burst was accepted but never answered", i + 1);
	/* The server reads in order: answered ids of the second batch form a
	 * prefix (nothing accepted after something it never read). */
	for (i = 0; i < SECOND; i++) {
		if (second[i].answered && gap)
			it_fail("request %zu of the second batch answered after an earlier one was not", SECOND_BASE + i);
		if (!second[i].answered)
			gap = true;
		else
			second_answered++;
	}
	it_log("ok: all %d accepted requests answered (%u OK and verified, %u UNAVAILABLE; %u answers after SIGTERM); "
	       "%u of %d requests sent after SIGTERM were taken; then the connection closed",
	       FIRST, ok, unavailable, after, second_answered, SECOND);
	EVP_PKEY_free(pk);
	return 0;
}

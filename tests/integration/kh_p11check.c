/* kh_p11check: drives libkeyhold-pkcs11.so through its function list
 * where pkcs11-tool cannot (test_pkcs11.sh):
 *   kh_p11check MODULE rules LABEL OUT   C_Initialize arguments,
 *       C_GetAttributeValue's rules on LABEL's private key, CKR codes of
 *       what is not offered, multi-part signing, threads, fork (OUT.multi.sig,
 *       OUT.thread.sig, OUT.fork.sig for OpenSSL to verify: SHA-256 PKCS#1
 *       of "the quick brown fox\n"; LABEL must be an RSA key), C_Finalize
 *       and a second C_Initialize.
 *   kh_p11check MODULE loop LABEL STOPFILE   signs every 20 ms in one
 *       process until STOPFILE exists; prints each change of result;
 *       exits 0 when signing worked, failed, then worked again.
 * Exit 0 on success, 1 with a message on stderr. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *f;
static const char msg[] = "the quick brown fox\n";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("kh_p11check: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static const char *rv_name(CK_RV rv)
{
	static char buf[32];

	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
	case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
	case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
	case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
	default:
		snprintf(buf, sizeof(buf), "CKR_0x%lx", rv);
		return buf;
	}
}

#define EXPECT(call, want)                                                                            \
	do {                                                                                          \
		CK_RV rv_ = (call);                                                                   \
		if (rv_ != (want))                                                                    \
			die("%s:%d: %s returned %s, expected %s", __FILE__, __LINE__, #call, rv_name(rv_), \
			    rv_name(want));                                                           \
	} while (0)

static void load(const char *module)
{
	CK_C_GetFunctionList gfl;
	void *dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);

	if (dl == NULL)
		die("%s", dlerror());
	*(void **)&gfl = dlsym(dl, "C_GetFunctionList");
	if (gfl == NULL || gfl(&f) != CKR_OK)
		die("%s: no function list", module);
}

static void init(void)
{
	CK_C_INITIALIZE_ARGS a;

	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	EXPECT(f->C_Initialize(&a), CKR_OK);
}

static CK_SESSION_HANDLE open_session(void)
{
	CK_SLOT_ID slot;
	CK_ULONG n = 1;
	CK_SESSION_HANDLE s;

	EXPECT(f->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
	if (n != 1)
		die("%lu slots with a token", n);
	EXPECT(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
	return s;
}

static CK_OBJECT_HANDLE find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) },
	};
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0;

	EXPECT(f->C_FindObjectsInit(s, t, 2), CKR_OK);
	EXPECT(f->C_FindObjects(s, h, 2, &n), CKR_OK);
	EXPECT(f->C_FindObjectsFinal(s), CKR_OK);
	if (n != 1)
		die("%lu objects of class %lu labelled %s", n, cls, label);
	return h[0];
}

static void write_file(const char *out, const char *suffix, const CK_BYTE *b, CK_ULONG n)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s.%s", out, suffix);
	if ((fp = fopen(path, "wb")) == NULL || fwrite(b, 1, n, fp) != n || fclose(fp) != 0)
		die("cannot write %s", path);
}

/* One-shot SHA256_RSA_PKCS (RSA) or ECDSA_SHA256 (EC) signature. */
static CK_RV sign_once(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE m, CK_BYTE *sig, CK_ULONG *len)
{
	CK_MECHANISM mech = { m, NULL, 0 };
	CK_RV rv = f->C_SignInit(s, &mech, key);

	if (rv != CKR_OK)
		return rv;
	return f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)msg, sizeof(msg) - 1, sig, len);
}

struct thr {
	const char *label;
	CK_BYTE sig[512];
	CK_ULONG len;
	int failed;
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	CK_SESSION_HANDLE s = open_session();
	CK_OBJECT_HANDLE k = find(s, CKO_PRIVATE_KEY, t->label);
	int i;

	for (i = 0; i < 25; i++) {
		t->len = sizeof(t->sig);
		if (sign_once(s, k, CKM_SHA256_RSA_PKCS, t->sig, &t->len) != CKR_OK)
			t->failed++;
	}
	f->C_CloseSession(s);
	return NULL;
}

static int cmd_rules(const char *label, const char *out)
{
	CK_C_INITIALIZE_ARGS bad;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE priv, pub;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BBOOL sens = 0, extr = 1, sign = 0;
	CK_BYTE small[1], sig[512];
	CK_ULONG len;
	CK_MECHANISM hmac = { CKM_SHA256_HMAC, NULL, 0 }, ecdsa = { CKM_ECDSA, NULL, 0 };
	CK_MECHANISM sha = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_MECHANISM_TYPE mechs[64];
	struct thr th[8];
	pthread_t tid[8];
	pid_t child;
	int i, st;

	/* Application locks without CKF_OS_LOCKING_OK: the module cannot use
	 * them (v2.40 5.4). */
	memset(&bad, 0, sizeof(bad));
	bad.CreateMutex = (CK_CREATEMUTEX)(uintptr_t)1;
	bad.DestroyMutex = (CK_DESTROYMUTEX)(uintptr_t)1;
	bad.LockMutex = (CK_LOCKMUTEX)(uintptr_t)1;
	bad.UnlockMutex = (CK_UNLOCKMUTEX)(uintptr_t)1;
	EXPECT(f->C_Initialize(&bad), CKR_CANT_LOCK);
	EXPECT(f->C_GetSlotList(CK_TRUE, NULL, &len), CKR_CRYPTOKI_NOT_INITIALIZED);
	init();
	EXPECT(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	s = open_session();
	priv = find(s, CKO_PRIVATE_KEY, label);
	pub = find(s, CKO_PUBLIC_KEY, label);

	/* C_GetAttributeValue (v2.40 5.7). */
	{
		CK_ATTRIBUTE t[] = {
			{ CKA_VALUE, NULL, 0 },
			{ CKA_LABEL, NULL, 0 },
			{ 0x8000abcdUL, NULL, 0 },
		};
		CK_RV rv = f->C_GetAttributeValue(s, priv, t, 3);

		if (rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID)
			die("mixed template: %s", rv_name(rv));
		if (t[0].ulValueLen != CK_UNAVAILABLE_INFORMATION || t[1].ulValueLen != strlen(label) ||
		    t[2].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			die("mixed template: lengths %lx %lx %lx", t[0].ulValueLen, t[1].ulValueLen, t[2].ulValueLen);
	}
	{
		CK_ATTRIBUTE t[] = { { CKA_PRIVATE_EXPONENT, NULL, 0 } };

		EXPECT(f->C_GetAttributeValue(s, priv, t, 1), CKR_ATTRIBUTE_SENSITIVE);
		t[0].type = 0x8000abcdUL;
		EXPECT(f->C_GetAttributeValue(s, priv, t, 1), CKR_ATTRIBUTE_TYPE_INVALID);
		t[0].type = CKA_LABEL;
		t[0].pValue = small;
		t[0].ulValueLen = sizeof(small);
		EXPECT(f->C_GetAttributeValue(s, priv, t, 1), CKR_BUFFER_TOO_SMALL);
		if (t[0].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			die("CKR_BUFFER_TOO_SMALL without CK_UNAVAILABLE_INFORMATION");
		/* A public key's CKA_VALUE is not a secret: it does not exist. */
		t[0].type = CKA_VALUE;
		t[0].pValue = NULL;
		EXPECT(f->C_GetAttributeValue(s, pub, t, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	}
	{
		CK_ATTRIBUTE t[] = {
			{ CKA_SENSITIVE, &sens, sizeof(sens) },
			{ CKA_EXTRACTABLE, &extr, sizeof(extr) },
			{ CKA_SIGN, &sign, sizeof(sign) },
			{ CKA_CLASS, &cls, sizeof(cls) },
		};

		EXPECT(f->C_GetAttributeValue(s, priv, t, 4), CKR_OK);
		if (!sens || extr || !sign || cls != CKO_PRIVATE_KEY)
			die("private key flags: sensitive %d extractable %d sign %d", sens, extr, sign);
	}
	EXPECT(f->C_GetAttributeValue(s, 0xdeadUL, NULL, 0), CKR_OBJECT_HANDLE_INVALID);

	/* What is not offered. */
	len = 64;
	EXPECT(f->C_GetMechanismList(1, mechs, &len), CKR_OK);
	EXPECT(f->C_EncryptInit(s, &sha, priv), CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT(f->C_DecryptInit(s, &sha, priv), CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT(f->C_GenerateKeyPair(s, &sha, NULL, 0, NULL, 0, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT(f->C_DestroyObject(s, priv), CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT(f->C_SignInit(s, &hmac, priv), CKR_MECHANISM_INVALID);
	EXPECT(f->C_SignInit(s, &ecdsa, priv), CKR_KEY_TYPE_INCONSISTENT);
	EXPECT(f->C_SignInit(s, &sha, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
	EXPECT(f->C_SignInit(s, &sha, 0xdeadUL), CKR_KEY_HANDLE_INVALID);
	EXPECT(f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)msg, 3, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT(f->C_Sign(0xdeadUL, (CK_BYTE_PTR)(uintptr_t)msg, 3, sig, &len), CKR_SESSION_HANDLE_INVALID);

	/* Multi-part, with the length query and a short buffer kept active
	 * (v2.40 5.2). */
	EXPECT(f->C_SignInit(s, &sha, priv), CKR_OK);
	EXPECT(f->C_SignInit(s, &sha, priv), CKR_OPERATION_ACTIVE);
	EXPECT(f->C_SignUpdate(s, (CK_BYTE_PTR)(uintptr_t)msg, 10), CKR_OK);
	EXPECT(f->C_SignUpdate(s, (CK_BYTE_PTR)(uintptr_t)msg + 10, sizeof(msg) - 11), CKR_OK);
	EXPECT(f->C_SignFinal(s, NULL, &len), CKR_OK);
	if (len != 256)
		die("RSA-2048 signature length %lu", len);
	len = 10;
	EXPECT(f->C_SignFinal(s, sig, &len), CKR_BUFFER_TOO_SMALL);
	if (len != 256)
		die("CKR_BUFFER_TOO_SMALL length %lu", len);
	EXPECT(f->C_SignFinal(s, sig, &len), CKR_OK);
	write_file(out, "multi.sig", sig, len);
	EXPECT(f->C_SignFinal(s, sig, &len), CKR_OPERATION_NOT_INITIALIZED);

	/* Threads, a session each. */
	for (i = 0; i < 8; i++) {
		memset(&th[i], 0, sizeof(th[i]));
		th[i].label = label;
		if (pthread_create(&tid[i], NULL, thread_main, &th[i]) != 0)
			die("pthread_create");
	}
	for (i = 0; i < 8; i++) {
		pthread_join(tid[i], NULL);
		if (th[i].failed)
			die("thread %d: %d signatures failed", i, th[i].failed);
	}
	write_file(out, "thread.sig", th[7].sig, th[7].len);

	/* A forked child signs on its own connection; the parent still can. */
	child = fork();
	if (child == 0) {
		len = sizeof(sig);
		if (sign_once(s, priv, CKM_SHA256_RSA_PKCS, sig, &len) != CKR_OK)
			_exit(1);
		write_file(out, "fork.sig", sig, len);
		_exit(0);
	}
	if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("the forked child could not sign");
	len = sizeof(sig);
	EXPECT(sign_once(s, priv, CKM_SHA256_RSA_PKCS, sig, &len), CKR_OK);

	EXPECT(f->C_CloseSession(s), CKR_OK);
	EXPECT(f->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);
	EXPECT(f->C_Finalize(NULL), CKR_OK);
	EXPECT(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_CRYPTOKI_NOT_INITIALIZED);
	/* Again, with sessions left open for C_Finalize to free. */
	init();
	s = open_session();
	(void)find(s, CKO_PRIVATE_KEY, label);
	(void)open_session();
	EXPECT(f->C_Finalize(NULL), CKR_OK);
	return 0;
}

static int cmd_loop(const char *label, const char *stop)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE k;
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE t = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	CK_BYTE sig[512];
	CK_ULONG len;
	CK_RV last = ~(CK_RV)0;
	int phase = 0; /* 0: no success yet, 1: worked, 2: then failed, 3: then worked */

	init();
	s = open_session();
	k = find(s, CKO_PRIVATE_KEY, label);
	EXPECT(f->C_GetAttributeValue(s, k, &t, 1), CKR_OK);
	while (access(stop, F_OK) != 0) {
		CK_RV rv;

		len = sizeof(sig);
		rv = sign_once(s, k, kt == CKK_RSA ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256, sig, &len);
		if (rv != last) {
			printf("%s\n", rv_name(rv));
			fflush(stdout);
			last = rv;
		}
		if (rv == CKR_OK && (phase == 0 || phase == 2))
			phase++;
		else if (rv != CKR_OK && phase == 1)
			phase = 2;
		usleep(20000);
	}
	EXPECT(f->C_Finalize(NULL), CKR_OK);
	return phase == 3 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		die("usage: kh_p11check MODULE rules LABEL OUT | MODULE loop LABEL STOPFILE");
	load(argv[1]);
	if (strcmp(argv[2], "rules") == 0 && argc == 5)
		return cmd_rules(argv[3], argv[4]);
	if (strcmp(argv[2], "loop") == 0 && argc == 5)
		return cmd_loop(argv[3], argv[4]);
	die("unknown command %s", argv[2]);
}
